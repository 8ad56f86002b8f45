"""Writers of the refined corpus: each takes the records as lines of JSON (kept records exactly as
they were read) and streams them into one file of its format. The engine writes refined/ as
fragments in parallel (FRAGMENT_WRITERS); a LLaVA array is then joined from its fragments by a
byte copy (`join_llava_json`), the same bytes one writer would write from all lines at once.

- llava-json: one JSON array, what LLaVA's `train.py --data_path` loads with `json.load`.
- jsonl: one record a line.
- parquet: `id`, `image`, `conversations` (list of {from, value}) as columns, every other field
  (the `adr` provenance of synthetic records, a source's own extras) as one JSON string, `fields`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_SCHEMA = pa.schema([
    ("id", pa.string()), ("image", pa.string()),
    ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
    ("fields", pa.string()),
])
PARQUET_ROWS = 8192


def write_jsonl(path: str, lines: Iterable[str]) -> None:
    with fsspec.open(path, "w", encoding="utf-8", auto_mkdir=True) as f:
        for line in lines:
            f.write(line + "\n")


def parquet_row(record: dict) -> dict:
    rest = {k: v for k, v in record.items() if k not in ("id", "image", "conversations")}
    return {"id": str(record["id"]), "image": record.get("image"),
            "conversations": [{"from": t["from"], "value": t["value"]} for t in record["conversations"]],
            "fields": json.dumps(rest, ensure_ascii=False) if rest else None}


def write_parquet(path: str, lines: Iterable[str]) -> None:
    with fsspec.open(path, "wb", auto_mkdir=True) as f, pq.ParquetWriter(f, PARQUET_SCHEMA) as writer:
        rows = []
        for line in lines:
            rows.append(parquet_row(json.loads(line)))
            if len(rows) == PARQUET_ROWS:
                writer.write_table(pa.Table.from_pylist(rows, schema=PARQUET_SCHEMA))
                rows = []
        if rows or writer.is_open:
            writer.write_table(pa.Table.from_pylist(rows, schema=PARQUET_SCHEMA))


def kept_lines(url: str) -> Iterator[str]:
    """A kept file's records as they were read, one line each."""
    with fsspec.open(url, "r", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield line.rstrip("\n")


def write_llava_items(path: str, lines: Iterable[str]) -> None:
    """Array items without the brackets: a fragment of a LLaVA JSON array."""
    with fsspec.open(path, "w", encoding="utf-8", auto_mkdir=True) as f:
        for n, line in enumerate(lines):
            f.write(", " + line if n else line)


def join_llava_json(fragments: Iterable[str], path: str, chunk: int = 1 << 20) -> None:
    """One JSON array from fragments in order, copied as bytes (constant memory, nothing parsed);
    an empty fragment (a kept file or shard without records) adds no separator."""
    first = True
    with fsspec.open(path, "wb", auto_mkdir=True) as out:
        out.write(b"[")
        for url in fragments:
            with fsspec.open(url, "rb") as f:
                block = f.read(chunk)
                if block and not first:
                    out.write(b", ")
                while block:
                    first = False
                    out.write(block)
                    block = f.read(chunk)
        out.write(b"]")


FRAGMENT_WRITERS = {"llava-json": write_llava_items, "jsonl": write_jsonl, "parquet": write_parquet}
