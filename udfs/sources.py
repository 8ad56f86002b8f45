"""Finding input files (local paths, globs, directories, any fsspec URL) and reading them as raw
elements with their source position, in Arrow batches.

A raw element is the undecoded bytes of one record: a JSON Lines line, one element of a JSON
array, or one Parquet row re-serialised as JSON. Validation happens later (udfs.records), so a
bad element is reported with its position instead of stopping the read.
"""

from __future__ import annotations

import json
import re
from typing import Iterable, Iterator

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from adr.errors import InputError

RAW_SCHEMA = pa.schema([("source", pa.string()), ("line", pa.int64()), ("raw", pa.binary())])
EXTENSIONS = (".jsonl", ".ndjson", ".json", ".parquet", ".jsonl.gz", ".json.gz", ".jsonl.zst")
_GLOB_CHARS = set("*?[")
_NEXT_ELEMENT = re.compile(r",\s*(?=\{)")


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
                found = [p for p in fs.find(path) if _is_data_file(p)]
            elif fs.isfile(path):
                found = [path]
            else:
                raise InputError(f"cannot read input {spec!r}: no such file or directory")
        except InputError:
            raise
        except (OSError, ValueError, ImportError) as err:
            raise InputError(f"cannot read input {spec!r}: {err}") from None
        if not found:
            raise InputError(f"cannot read input {spec!r}: no data files found "
                             f"(looked for {', '.join(EXTENSIONS)})")
        files.update(fs.unstrip_protocol(p) if fs.protocol not in ("file", ("file", "local")) else p
                     for p in found)
    return sorted(files)


def _is_data_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return not name.startswith((".", "_")) and name.endswith(EXTENSIONS)


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


def read_raw(url: str, batch_size: int = 4096) -> Iterator[pa.RecordBatch]:
    """Raw elements of one file, in batches of RAW_SCHEMA. Blank lines are not elements."""
    try:
        if url.endswith(".parquet"):
            rows = _parquet_rows(url)
        else:
            rows = _json_rows(url)
        yield from _batches(url, rows, batch_size)
    except (OSError, pa.ArrowInvalid) as err:
        raise InputError(f"cannot read input {url!r}: {err}") from None


def _batches(url: str, rows: Iterator[tuple[int, bytes]], size: int) -> Iterator[pa.RecordBatch]:
    lines, raws = [], []
    for line, raw in rows:
        lines.append(line)
        raws.append(raw)
        if len(raws) >= size:
            yield pa.RecordBatch.from_arrays([pa.array([url] * len(raws)), pa.array(lines, pa.int64()),
                                              pa.array(raws, pa.binary())], schema=RAW_SCHEMA)
            lines, raws = [], []
    if raws:
        yield pa.RecordBatch.from_arrays([pa.array([url] * len(raws)), pa.array(lines, pa.int64()),
                                          pa.array(raws, pa.binary())], schema=RAW_SCHEMA)


def _json_rows(url: str) -> Iterator[tuple[int, bytes]]:
    with fsspec.open(url, "rb", compression="infer") as f:
        head = f.read(1 << 16)
        if head.lstrip()[:1] == b"[":
            yield from json_array_elements(head + f.read())
            return
        pending = head
        line_no = 0
        while True:
            chunk = f.read(1 << 22)
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                line_no += 1
                if line.strip():
                    yield line_no, line.rstrip(b"\r")
            if not chunk:
                break
        if pending.strip():
            yield line_no + 1, pending.rstrip(b"\r")


def json_array_elements(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes) of each element of a top-level JSON array.

    A malformed element does not end the file: the reader resumes at the next ', {' and reports
    the skipped text as one element (which then fails validation with its line number).
    """
    text = data.decode("utf-8", "surrogateescape")
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line, counted_to = 1, 0
    end_of_text = len(text)
    while True:
        while pos < end_of_text and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= end_of_text or text[pos] == "]":
            return
        line += text.count("\n", counted_to, pos)
        counted_to = pos
        try:
            _, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            nxt = _NEXT_ELEMENT.search(text, pos + 1)
            close = text.rfind("]")
            end = nxt.start() if nxt else close if close > pos else end_of_text
        yield line, text[pos:end].encode("utf-8", "surrogateescape")
        pos = end


def _parquet_rows(url: str) -> Iterator[tuple[int, bytes]]:
    with fsspec.open(url, "rb") as f:
        row = 0
        for batch in pq.ParquetFile(f).iter_batches(batch_size=4096):
            for record in batch.to_pylist():
                row += 1
                yield row, json.dumps(record, ensure_ascii=False, default=str).encode("utf-8")
