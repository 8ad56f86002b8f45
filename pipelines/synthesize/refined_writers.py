"""Writers of the refined corpus: each takes the records as lines of JSON (kept records exactly as
they were read) and streams them into one file of its format.

- llava-json: one JSON array, what LLaVA's `train.py --data_path` loads with `json.load`.
- jsonl: one record a line.
- parquet: `id`, `image`, `conversations` (list of {from, value}) as columns, every other field
  (the `adr` provenance of synthetic records, a source's own extras) as one JSON string, `fields`.
"""

from __future__ import annotations

import json
from typing import Iterable

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_SCHEMA = pa.schema([
    ("id", pa.string()), ("image", pa.string()),
    ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
    ("fields", pa.string()),
])
PARQUET_ROWS = 8192


def write_llava_json(path: str, lines: Iterable[str]) -> None:
    with fsspec.open(path, "w", encoding="utf-8", auto_mkdir=True) as f:
        f.write("[")
        for n, line in enumerate(lines):
            f.write(", " + line if n else line)
        f.write("]")


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


WRITERS = {"llava-json": write_llava_json, "jsonl": write_jsonl, "parquet": write_parquet}
