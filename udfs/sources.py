"""Finding input files (local paths, globs, directories, any fsspec URL) and reading them as raw
elements with their source position, in Arrow batches.

A raw element is the undecoded bytes of one record: a JSON Lines line, one element of a JSON
array, or one Parquet row re-serialised as JSON. Validation happens later (udfs.records), so a
bad element is reported with its position instead of stopping the read.

The `position` column says where an element is in its file:

- JSON Lines: the 1-based line number, as editors show it. Blank lines are counted but are
  not elements.
- JSON array: the element's 0-based index in the array, as `data[i]` in Python, so every
  element of a one-line array (LLaVA-1.5's mix665k is one ~1 GB line) has its own position.
- Parquet: the 0-based row index in the file.

A file is a JSON array when its first byte other than whitespace (and a UTF-8 byte order mark)
is `[`; otherwise it is JSON Lines. Both are read in chunks, so memory does not grow with the
file. An array is decoded incrementally: each element's end is found with the C JSON scanner,
and text already yielded is dropped, so memory is about one chunk plus the largest element.
Invalid UTF-8 is kept byte for byte (it fails validation later as not-utf8). In an array:

- a malformed element does not end the file: the reader resumes at the next `, {` and reports
  the skipped text as one element, which then fails validation with its index (indices after
  it count the skipped text as one element);
- an element is held whole while the reader looks for its end for at most `max_element_bytes`
  characters of text (characters are never more than bytes). One that goes on past that is
  not held whole: its end is found by a string-aware bracket scan and it is yielded cut to its
  first max_element_bytes + 1 characters, so it fails validation as too-long whenever the
  validator's max_bytes is at most max_element_bytes (an element that happens to lie whole in
  the text at hand is yielded whole, and fails as too-long all the same). If its brackets do
  not match, or it never closes (a missing `]` or `}` makes the rest of the file look like part
  of it), it is malformed after all: the reader reports the text up to the first `, {` after
  its start and reads on from there, re-reading that part of the file (from the start, for a
  compressed file). A stream that cannot seek back reads on after the mismatch instead, or ends
  with the bad element if it never closed;
- another array after the closing `]` (two arrays concatenated, `cat a.json b.json`) is read
  on: its elements are numbered after the first array's. Other text after the closing `]` is
  reported as one more element, so it is not dropped silently (it fails validation unless it
  is a record by itself); a missing closing `]` at the end of the file is not an error.

A file that cannot be read to its end (a truncated `.gz`, a corrupt `.zst` or Parquet file)
ends with one element that says so (the `error` column): the engines write it to invalid/ as
`unreadable-file`, with the position where reading stopped, and read the other files on.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from adr.errors import InputError
from adr.records import DEFAULT_MAX_RECORD_BYTES
from udfs.decompress import open_input

RAW_SCHEMA = pa.schema([("source", pa.string()), ("position", pa.int64()), ("raw", pa.binary()),
                        ("error", pa.string())])  # why the file could not be read on from here; null: an element
TEXT_EXTENSIONS = (".jsonl", ".ndjson", ".json")
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")  # what fsspec infers from a name, so a file input reads them too
EXTENSIONS = (*TEXT_EXTENSIONS, ".parquet", *(e + c for e in TEXT_EXTENSIONS for c in COMPRESSIONS))
# Folders that hold no input of the user's: hidden ones, and the half-written output of engines
# (Spark's and Hadoop's _temporary/, Beam's beam-temp-*), which a directory input may contain.
SKIPPED_FOLDER_PREFIXES = (".", "_", "beam-temp-")
CHUNK_BYTES = 1 << 22
MAX_ELEMENT_BYTES = 2 * DEFAULT_MAX_RECORD_BYTES


def max_element_bytes(max_record_bytes: int) -> int:
    """The largest element a reader holds before the record-size check sees it: twice the
    largest record, so that one a little too large is a dead letter with its reason, not a
    read that stops."""
    return max(MAX_ELEMENT_BYTES, 2 * max_record_bytes)

_GLOB_CHARS = set("*?[")
_BOM = codecs.BOM_UTF8
_NEXT_ELEMENT = re.compile(r",\s*(?=\{)")
_SEPARATORS = re.compile(r"[ \t\r\n,]*")
_STRUCTURE = re.compile(r'[\[\]{}",]')
_IN_STRING = re.compile(r'["\\]')
# The JSON scanner, given text that ends inside an element, fails within this many characters
# of the end (or says "Unterminated string"), and a number it reads up to there may go on.
_SLACK = 16
_MALFORMED, _TOO_LONG = -1, -2


def expand_inputs(specs: str | Iterable[str]) -> list[str]:
    """Every data file named by paths, globs or directories (recursively), as sorted URLs."""
    if isinstance(specs, str):
        specs = [specs]
    files: set[str] = set()
    for spec in specs:
        try:
            fs, path = fsspec.core.url_to_fs(spec)
            if _GLOB_CHARS & set(path):
                found = [p for p in fs.glob(path) if fs.isfile(p)]
            elif fs.isdir(path):
                root = path.rstrip("/")
                found = [p for p in fs.find(path) if is_data_file(p, p[len(root):].lstrip("/"))]
            elif fs.isfile(path):
                found = [path]
            else:
                raise InputError(f"cannot read input {spec!r}: no such file or directory")
        except InputError:
            raise
        except ImportError as err:  # fsspec: "Please install gcsfs to access Google Storage"
            raise InputError(f"cannot read input {spec!r}: {err} (pip install 'adr-refine[cloud]')") from None
        except (OSError, ValueError) as err:
            raise InputError(f"cannot read input {spec!r}: {err}") from None
        if not found:
            raise InputError(f"cannot read input {spec!r}: no data files found "
                             f"(looked for {', '.join(EXTENSIONS)})")
        files.update(url_of(fs, p) for p in found)
    return sorted(files)


def url_of(fs, path: str) -> str:
    """A path fsspec listed, as the URL that reads it again (local paths stay paths)."""
    return path if fs.protocol in ("file", ("file", "local")) else fs.unstrip_protocol(path)


def is_data_file(path: str, relative: str | None = None) -> bool:
    """A file a directory input reads: a data extension, and neither it nor any folder on its
    `relative` path (below the directory given) hidden or an engine's temporary output."""
    *folders, name = (path if relative is None else relative).split("/")
    return (not name.startswith((".", "_")) and name.endswith(EXTENSIONS)
            and not any(f.startswith(SKIPPED_FOLDER_PREFIXES) for f in (folders if relative is not None else ())))


def fingerprint(files: list[str]) -> str:
    """A digest of the inputs' identities and versions (fsspec checksums: size, mtime or etag)."""
    import hashlib

    digest = hashlib.sha256()
    for url in files:
        fs, path = fsspec.core.url_to_fs(url)
        digest.update(f"{url}\x1f{fs.checksum(path)}\n".encode())
    return digest.hexdigest()[:32]


def total_bytes(files: list[str]) -> int:
    """The inputs' size on storage: the denominator of read progress."""
    total = 0
    for url in files:
        fs, path = fsspec.core.url_to_fs(url)
        total += fs.size(path) or 0
    return total


def read_raw(url: str, batch_size: int = 4096, *, chunk_size: int = CHUNK_BYTES,
             max_element_bytes: int = MAX_ELEMENT_BYTES) -> Iterator[pa.RecordBatch]:
    """Raw elements of one file, in batches of RAW_SCHEMA, as the file is read (`chunk_size`
    bytes at a time). Blank lines are not elements. See the module docstring for `position`,
    `max_element_bytes` (callers validating with a larger max_bytes should raise it to match)
    and files that cannot be read to their end."""
    if url.endswith(".parquet"):
        rows = _parquet_rows(url)
    else:
        rows = _json_rows(url, chunk_size, max_element_bytes)
    yield from _batches(url, rows, batch_size)


# Not there or not ours to read: the user's mistake, one line. Anything else that stops a read
# is the file's content (a truncated stream, a corrupt block): a dead letter.
_MISSING = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def _batches(url: str, rows: Iterator[tuple[int, bytes]], size: int, first: int = 0) -> Iterator[pa.RecordBatch]:
    """`rows` in batches; a read that fails ends them with one row that says why, at the
    position after the last element read (`first` if none was)."""
    positions, raws, error = [], [], None
    try:
        for position, raw in rows:
            positions.append(position)
            raws.append(raw)
            if len(raws) >= size:
                yield raw_batch(url, positions, raws)
                first, positions, raws = position + 1, [], []
    except _MISSING as err:
        raise InputError(f"cannot read input {url!r}: {err}") from None
    except Exception as err:  # noqa: BLE001 - decompressors and Parquet raise their own kinds
        error = f"{type(err).__name__}: {err}"[:500]
    if error is not None:
        yield raw_batch(url, positions + [positions[-1] + 1 if positions else first], raws + [b""],
                        [None] * len(raws) + [error])
    elif raws:
        yield raw_batch(url, positions, raws)


def raw_batch(url: str, positions: list[int], raws: list[bytes], errors: list | None = None) -> pa.RecordBatch:
    """Raw elements of one source, with their positions in it (RAW_SCHEMA)."""
    columns = [pa.array([url] * len(raws), pa.string()), pa.array(positions, pa.int64()),
               pa.array(raws, pa.binary()), pa.array(errors or [None] * len(raws), pa.string())]
    return pa.RecordBatch.from_arrays(columns, schema=RAW_SCHEMA)


def _json_rows(url: str, chunk_size: int, max_element_bytes: int) -> Iterator[tuple[int, bytes]]:
    with open_input(url) as f:
        head = b""
        while True:  # up to the first byte that is not whitespace or part of a byte order mark
            chunk = f.read(chunk_size)
            head += chunk
            first = head.removeprefix(_BOM).lstrip()[:1]
            if not chunk or (first and not _BOM.startswith(head)):
                break
        if first == b"[":
            yield from _array_elements(f, head, chunk_size, max_element_bytes)
            return
        yield from json_lines(f, head.removeprefix(_BOM), max_element_bytes, chunk_size=chunk_size)


def json_lines(f: BinaryIO, head: bytes = b"", max_line_bytes: int = MAX_ELEMENT_BYTES, *, first_line: int = 1,
               remaining: int | None = None, chunk_size: int = CHUNK_BYTES) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank line of `head` and then the stream (at most
    `remaining` more bytes), the first numbered `first_line`. A line longer than max_line_bytes is
    not held: it is yielded cut to max_line_bytes + 1 bytes (it fails validation as too-long) and
    the rest of it is read past."""
    line_no, parts, held = first_line - 1, [], 0  # the line being read: its pieces, their bytes

    def chunks():
        nonlocal remaining
        if head:
            yield head
        while remaining is None or remaining > 0:
            chunk = f.read(chunk_size if remaining is None else min(chunk_size, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk

    for chunk in chunks():
        pieces = chunk.split(b"\n")
        for i, piece in enumerate(pieces):
            if held <= max_line_bytes:
                parts.append(piece[:max_line_bytes + 1 - held])
                held += len(piece)
            if i == len(pieces) - 1:
                break  # the line goes on in the next chunk
            line_no += 1
            line = parts[0] if len(parts) == 1 else b"".join(parts)
            if line.strip():
                yield line_no, line.rstrip(b"\r")
            parts, held = [], 0
    line = b"".join(parts)
    if line.strip():
        yield line_no + 1, line.rstrip(b"\r")


class _Text:
    """The text of a binary stream, decoded incrementally (invalid UTF-8 as surrogate escapes)."""

    def __init__(self, f: BinaryIO, head: bytes, chunk_size: int):
        self.f, self.head, self.chunk_size = f, head, max(1, chunk_size)
        self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.offset = 0      # the stream position after the bytes taken so far (the head included)
        self.eof = False
        try:
            self.offset = f.tell() - len(head)
        except (OSError, ValueError, AttributeError):
            pass

    def read(self) -> str:
        """The text of the next chunk ('' at the end, and for a chunk ending mid-character)."""
        data, self.head = (self.head or self.f.read(self.chunk_size)), b""
        if not data:
            self.eof = True
            return self.decoder.decode(b"", final=True)
        self.offset += len(data)
        return self.decoder.decode(data)

    def more(self, buf: str, keep_from: int, at_least: int = 1) -> str:
        """buf without its first keep_from characters, plus at least `at_least` more characters
        of text (fewer only at the end of the stream)."""
        pieces, added = [buf[keep_from:]], 0
        while added < at_least and not self.eof:
            piece = self.read()
            pieces.append(piece)
            added += len(piece)
        return "".join(pieces)

    def offset_of(self, buf: str, i: int) -> int:
        """The stream offset of buf[i], where buf ends with the last text read."""
        undecoded = len(self.decoder.getstate()[0])
        return self.offset - undecoded - len(buf[i:].encode("utf-8", "surrogateescape"))

    def rewind(self, offset: int) -> bool:
        """Read on from this stream offset; False if the stream cannot go back."""
        try:
            if not self.f.seekable():
                return False
            self.f.seek(offset)
        except (OSError, ValueError):
            return False
        self.head, self.offset, self.eof = b"", offset, False
        self.decoder.reset()
        return True


def _array_elements(f: BinaryIO, head: bytes, chunk_size: int, max_chars: int, *, first_index: int = 0,
                    limit: int | None = None, inside: bool = False) -> Iterator[tuple[int, bytes]]:
    """Elements from the stream's start (which must open the array) or, `inside`, from an element
    boundary within it: then at most `limit` of them, the first numbered `first_index`."""
    text = _Text(f, head, chunk_size)
    buf = ""
    if inside:
        buf, pos = "", 0
    else:
        while True:  # up to the opening bracket
            buf = text.more(buf, 0)
            opening = buf.removeprefix("\ufeff").lstrip(" \t\r\n")
            if opening or text.eof:
                break
        if opening[:1] != "[":
            raise ValueError("not a JSON array: the text does not start with '['")
        buf, pos = opening, 1
    decode = json.JSONDecoder().raw_decode
    skip = _SEPARATORS.match
    index = first_index
    stop = None if limit is None else first_index + limit
    while index != stop:
        pos = skip(buf, pos).end()  # type: ignore[union-attr]  # matches "" too: never None
        if pos >= len(buf):
            if text.eof:
                return
            buf, pos = text.more(buf, pos), 0
            continue
        if buf[pos] == "]":
            buf, pos = _next_array(text, buf, pos + 1)
            if pos >= 0:  # another array follows (`cat a.json b.json`): its elements count on
                continue
            trailing = _trailing(text, buf, 0, max_chars)
            if trailing:
                yield index, trailing.encode("utf-8", "surrogateescape")
            return
        start = pos
        while True:  # until the element's end is known, reading more text while it may go on
            try:
                end = decode(buf, start)[1]
            except json.JSONDecodeError as err:
                # Cut short by the end of the text read, or malformed whatever follows?
                cut_short = err.pos >= len(buf) - _SLACK or err.msg.startswith("Unterminated string")
                if text.eof or not cut_short:
                    end = _MALFORMED
                    break
                if len(buf) - start > max_chars:
                    end = _TOO_LONG
                    break
            else:
                if end <= len(buf) - _SLACK or text.eof:  # else it may be a number cut short
                    break
                if end - start > max_chars:
                    end = _TOO_LONG
                    break
            buf, start = text.more(buf, start, max(_SLACK, len(buf) - start)), 0  # twice the text
        if end >= 0:
            yield index, buf[start:end].encode("utf-8", "surrogateescape")
            pos = end
        else:
            skip_bad = _skip_malformed if end == _MALFORMED else _skip_too_long
            raw, buf, pos = skip_bad(text, buf, start, max_chars)
            yield index, raw.encode("utf-8", "surrogateescape")
            if pos < 0:
                return
        index += 1


def _skip_malformed(text: _Text, buf: str, start: int, max_chars: int) -> tuple[str, str, int]:
    """(the malformed element's text, buf, where to read on) for the element at buf[start]: the
    text up to the next ', {', else up to the last ']' of the file, else to its end."""
    kept = None  # the element's first characters, once it is too long to keep whole
    search_from = start + 1
    while True:
        found = _NEXT_ELEMENT.search(buf, search_from)
        if found:
            end = found.start()
            break
        if text.eof:
            close = buf.rfind("]", max(start, 0))
            end = close if close > start else len(buf)
            break
        search_from = _separator_at_end(buf, search_from)  # it may precede a '{' to come
        if kept is None and len(buf) - start > max_chars:
            kept = buf[start:start + max_chars + 1]
        if kept is not None:  # drop what is searched already
            buf, search_from, start = text.more(buf, search_from), 0, -1
        else:
            buf, search_from, start = text.more(buf, start), search_from - start, 0
    raw = kept if kept is not None else buf[start:end]
    return raw, buf, end


def _skip_too_long(text: _Text, buf: str, start: int, max_chars: int) -> tuple[str, str, int]:
    """(the element's text, cut to max_chars + 1 characters; buf; where to read on, -1 for
    nowhere) for the element at buf[start], which went on past max_chars characters: its end is
    found by a bracket scan, without holding it whole."""
    scan = _Scan()
    i, end = scan.feed(buf, start)
    if end == _Scan.MALFORMED:  # seen in the text at hand
        return _skip_malformed(text, buf, start, max_chars)
    kept = buf[start:start + max_chars + 1]
    if end >= 0:  # it ends in the text at hand (a number that may have gone on, or not past kept)
        return kept[:end - start], buf, end
    resume = _NEXT_ELEMENT.search(buf, start + 1)  # where a malformed element would end
    resume_at = text.offset_of(buf, resume.start()) if resume else -1
    skipped = buf[start:resume.start()][:max_chars + 1] if resume else kept
    tail = buf[_separator_at_end(buf, start + 1):]
    while end == _Scan.MORE and not text.eof:
        buf = text.more("", 0)
        i, end = scan.feed(buf, 0)
        if resume_at < 0:
            look = tail + buf
            resume = _NEXT_ELEMENT.search(look)
            resume_at = text.offset_of(look, resume.start()) if resume else -1
            tail = look[_separator_at_end(look, 0):]
    if end >= 0:
        return kept, buf, end
    # Mismatched brackets, or a missing one that made the rest of the file look like part of the
    # element: read on from the first ', {' after its start, as for a malformed element.
    if resume_at >= 0 and text.rewind(resume_at):
        return skipped, "", 0
    if end == _Scan.MALFORMED:  # no ', {' before the mismatch, or a stream that cannot go back
        _, buf, end = _skip_malformed(text, buf, i, max_chars)  # read on after the mismatch
        return kept, buf, end
    return kept, "", -1  # it never closed, and there is no going back


def _separator_at_end(buf: str, lo: int) -> int:
    """Where a ',' and whitespace (as in _NEXT_ELEMENT) that end buf[lo:] start, else len(buf)."""
    j = len(buf)
    while j > lo and buf[j - 1].isspace():
        j -= 1
    return j - 1 if j > lo and buf[j - 1] == "," else len(buf)


class _Scan:
    """A string-aware bracket scan of one JSON value, resumable across pieces of text."""
    MORE, MALFORMED = -1, -2
    _CLOSES = {"]": "[", "}": "{"}

    def __init__(self):
        self.open: list[str] = []  # the brackets open, innermost last
        self.in_string = self.escaped = False

    def feed(self, buf: str, i: int) -> tuple[int, int]:
        """(where the scan stopped, the index just past the value, or MORE, or MALFORMED for a
        bracket that closes another kind than is open)."""
        n, opened = len(buf), self.open
        while i < n:
            if self.escaped:
                i, self.escaped = i + 1, False
            elif self.in_string:
                m = _IN_STRING.search(buf, i)
                if m is None:
                    return n, self.MORE
                i = m.end()
                if m.group() == "\\":
                    self.escaped = True
                else:
                    self.in_string = False
                    if not opened:
                        return i, i
            else:
                m = _STRUCTURE.search(buf, i)
                if m is None:
                    return n, self.MORE
                c = m.group()
                if c == '"':
                    self.in_string, i = True, m.end()
                elif c in "[{":
                    opened.append(c)
                    i = m.end()
                elif not opened:  # after a scalar: a ',' or ']' ends it
                    return m.start(), m.start() if c in ",]" else self.MALFORMED
                elif c == ",":
                    i = m.end()
                elif opened.pop() != self._CLOSES[c]:
                    return m.start(), self.MALFORMED
                else:
                    i = m.end()
                    if not opened:
                        return i, i
        return i, self.MORE


def _next_array(text: _Text, buf: str, pos: int) -> tuple[str, int]:
    """(buf, the position after its '[') when the next text other than whitespace opens another
    array, else (the text from there, -1)."""
    rest = buf[pos:].lstrip(" \t\r\n")
    while not rest and not text.eof:
        rest = text.read().lstrip(" \t\r\n")
    return (rest, 1) if rest[:1] == "[" else (rest, -1)


def _trailing(text: _Text, buf: str, pos: int, max_chars: int) -> str:
    """The text after the array's closing ']' without surrounding whitespace, cut to
    max_chars + 1 characters ('' if there is none)."""
    rest = buf[pos:].lstrip(" \t\r\n")
    while not text.eof and len(rest) <= max_chars:
        rest = (rest + text.read()).lstrip(" \t\r\n")
    return rest[:max_chars + 1].rstrip(" \t\r\n")


def _parquet_rows(url: str) -> Iterator[tuple[int, bytes]]:
    with fsspec.open(url, "rb") as f:
        row = 0
        for batch in pq.ParquetFile(f).iter_batches(batch_size=4096):
            for record in batch.to_pylist():
                yield row, json.dumps(record, ensure_ascii=False, default=str).encode("utf-8")
                row += 1


def input_format(files: list[str]) -> str:
    """'json-array' when every input is one JSON array (LLaVA's own format), else the mix's
    first other kind ('jsonl' or 'parquet'): the default shape of the refined corpus."""
    for url in files:
        if url.endswith(".parquet"):
            return "parquet"
        with fsspec.open(url, "rb", compression="infer") as f:
            if f.read(1 << 12).lstrip(b"\xef\xbb\xbf \t\r\n")[:1] != b"[":
                return "jsonl"
    return "json-array"
