"""Input files cut into splits of bounded size, each read on its own by any worker.

A split starts at an element boundary and says which position its first element has, so reading
the splits of a file in any order, on any workers, gives exactly the elements (and positions) of
reading it whole. Planning reads the file once on the driver:

- JSON Lines: splits start after a newline; the lines before each start are counted.
- JSON array: each element's end is found with the C JSON scanner over the bytes decoded as
  Latin-1 (one character a byte, so character offsets are byte offsets; UTF-8 sequences are
  ordinary string characters to the scanner, so the boundaries are those of the UTF-8 text).
  At the first element it cannot parse, planning stops: the rest of the file is one split, read by
  the full reader with its handling of malformed elements.
- Parquet and compressed files are one split each (no byte offsets to seek to).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass

import fsspec
import pyarrow as pa

from adr.errors import InputError
from udfs.sources import (
    _BOM,
    _SEPARATORS,
    CHUNK_BYTES,
    MAX_ELEMENT_BYTES,
    _array_elements,
    _batches,
    json_lines,
    read_raw,
)

SPLIT_BYTES = 4 << 20       # ~3.5K LLaVA records: a progress step every ~25 s per core
MIN_SPLIT_BYTES = 256 << 10
_COMPRESSED = (".gz", ".zst", ".bz2", ".xz")


@dataclass(frozen=True)
class Split:
    url: str
    start: int = 0                # byte offset of the first element; 0 with whole: the file
    end: int | None = None        # JSON Lines: the byte offset it ends before (None: the file's end)
    first: int = 0                # the first element's position (line number / array index)
    count: int | None = None      # JSON array: how many elements (None: to the array's end)
    kind: str = "whole"           # whole | jsonl | array
    index: int = 0                # its number in the plan (entities/split=N/ of `adr stats`)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def split_bytes_for(total_bytes: int, workers: int, tasks: int = 0) -> int:
    """Split size: `tasks` splits if asked for, else at least three per worker (so work balances
    as tasks finish), never more than SPLIT_BYTES (so no task's memory or time grows with the
    corpus) nor less than MIN_SPLIT_BYTES (so tiny inputs are not cut into tiny tasks)."""
    if tasks:
        return max(1, -(-total_bytes // tasks))
    return max(MIN_SPLIT_BYTES, min(SPLIT_BYTES, -(-total_bytes // (3 * max(1, workers)))))


def plan_splits(files: list[str], split_bytes: int = SPLIT_BYTES, ramp: int = 0) -> list[Split]:
    """Splits of about `split_bytes` (at least one element each) covering every file. The first
    `ramp` splits are a quarter of that: the first tasks (one a worker) end soon after the workers
    start, so progress counted as tasks end moves early in a long run."""
    sizes = itertools.chain(itertools.repeat(max(1, split_bytes // 4), ramp), itertools.repeat(split_bytes))
    out: list[Split] = []
    for url in files:
        try:
            out.extend(_plan_file(url, split_bytes, sizes))
        except OSError as err:
            raise InputError(f"cannot read input {url!r}: {err}") from None
    return [dataclasses.replace(s, index=i) for i, s in enumerate(out)]


def _plan_file(url: str, split_bytes: int, sizes: Iterator[int]) -> list[Split]:
    fs, path = fsspec.core.url_to_fs(url)
    size = fs.size(path) or 0
    if url.endswith(".parquet") or url.endswith(_COMPRESSED) or size <= split_bytes:
        return [Split(url)]
    with fs.open(path, "rb") as f:
        head = f.read(1 << 16)
        f.seek(0)
        if head.removeprefix(_BOM).lstrip()[:1] == b"[":
            return _plan_array(url, f, sizes)
        return _plan_lines(url, f, sizes)


def _plan_lines(url: str, f, sizes: Iterator[int]) -> list[Split]:
    splits, start, first = [], 0, 1
    offset, lines = 0, 0
    target = next(sizes)
    while True:
        chunk = f.read(CHUNK_BYTES)
        if not chunk:
            break
        i = 0
        while offset + len(chunk) - start >= target:  # a boundary falls in this chunk
            cut = chunk.find(b"\n", max(i, start + target - offset))
            if cut < 0:
                break
            lines += chunk.count(b"\n", i, cut + 1)
            i = cut + 1
            splits.append(Split(url, start, offset + i, first, kind="jsonl"))
            start, first, target = offset + i, lines + 1, next(sizes)
        lines += chunk.count(b"\n", i)
        offset += len(chunk)
    splits.append(Split(url, start, None, first, kind="jsonl"))
    return splits


def _plan_array(url: str, f, sizes: Iterator[int]) -> list[Split]:
    decode = json.JSONDecoder().raw_decode
    skip = _SEPARATORS.match
    buf = f.read(CHUNK_BYTES).decode("latin-1")
    base = 0                                  # the byte offset of buf[0]
    eof = False
    opening = buf.find("[")
    pos, index = opening + 1, 0
    starts: list[tuple[int, int]] = [(0, 0)]  # (first index, byte offset) of each split; 0: the file
    target = next(sizes)
    while True:
        pos = skip(buf, pos).end()  # type: ignore[union-attr]  # matches "" too: never None
        if pos >= len(buf) - 1 and not eof:
            more = f.read(CHUNK_BYTES)
            eof = not more
            buf, base, pos = buf[pos:] + more.decode("latin-1"), base + pos, 0
            continue
        if pos >= len(buf) or buf[pos] == "]":
            break
        if base + pos - starts[-1][1] >= target and index > starts[-1][0]:
            starts.append((index, base + pos))
            target = next(sizes)
        try:
            end = decode(buf, pos)[1]
        except json.JSONDecodeError:
            if eof or len(buf) - pos > 2 * MAX_ELEMENT_BYTES:
                break  # malformed: the full reader takes the rest
            more = f.read(CHUNK_BYTES)
            eof = not more
            buf, base, pos = buf[pos:] + more.decode("latin-1"), base + pos, 0
            continue
        if end >= len(buf) - 16 and not eof:  # a number at the end of the text may go on
            more = f.read(CHUNK_BYTES)
            eof = not more
            buf, base, pos = buf[pos:] + more.decode("latin-1"), base + pos, 0
            continue
        pos, index = end, index + 1
    splits = []
    for (first, offset), nxt in zip(starts, starts[1:] + [(None, None)]):
        count = None if nxt[0] is None else nxt[0] - first
        splits.append(Split(url) if offset == 0 and count is None else
                      Split(url, offset, None, first, count, "array" if offset else "array-head"))
    return splits


def read_split(split: Split | dict, batch_size: int = 4096, *,
               max_element_bytes: int = MAX_ELEMENT_BYTES) -> Iterator[pa.RecordBatch]:
    """The raw elements of one split, in batches of RAW_SCHEMA, with their file positions."""
    split = Split(**split) if isinstance(split, dict) else split
    if split.kind == "whole":
        yield from read_raw(split.url, batch_size, max_element_bytes=max_element_bytes)
        return
    try:
        with fsspec.open(split.url, "rb") as f:
            if split.kind == "jsonl":
                rows = _lines(f, split, max_element_bytes)
            else:
                inside = split.kind == "array"
                f.seek(split.start)
                rows = _array_elements(f, b"", CHUNK_BYTES, max_element_bytes, first_index=split.first,
                                       limit=split.count, inside=inside)
            yield from _batches(split.url, rows, batch_size, split.first)
    except OSError as err:
        raise InputError(f"cannot read input {split.url!r}: {err}") from None


def _lines(f, split: Split, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    f.seek(split.start)
    remaining = None if split.end is None else split.end - split.start
    head = b""
    if split.start == 0:
        head = f.read(len(_BOM))
        if remaining is not None:
            remaining -= len(head)
        head = head.removeprefix(_BOM)
    return json_lines(f, head, max_line_bytes, first_line=split.first, remaining=remaining)
