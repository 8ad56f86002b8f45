"""The statistics of the Spark job, computed in one Python process with no engine.

It is the reference the Spark job is tested against and the baseline its benchmark is
measured against: same readers, same parsing, same entity udfs, counting with EntityCounts.
"""

from __future__ import annotations

from typing import Iterable

import pyarrow as pa

from adr.dictionary import EntityCounts
from adr.records import DEFAULT_MAX_RECORD_BYTES, DUPLICATE_ID
from udfs.entities import extract_entities
from udfs.records import parse_raw
from udfs.sources import expand_inputs, read_raw


def local_stats(inputs: str | Iterable[str], perspectives: tuple[str, ...], nlp: str | None = None,
                max_bytes: int = DEFAULT_MAX_RECORD_BYTES, keep_entities: bool = True):
    """(counts, entities by id, invalid reasons by (source, line), lines read)."""
    counts = EntityCounts()
    entities: dict[str, dict[str, list[str]]] = {}
    invalid: dict[tuple[str, int], str] = {}
    seen: set[str] = set()
    lines = 0
    for url in expand_inputs(inputs):
        for raw in read_raw(url):
            parsed = parse_raw(raw, max_bytes=max_bytes).to_pylist()
            lines += len(parsed)
            fresh = []
            for row in parsed:
                if row["reason"] is not None:
                    invalid[(row["source"], row["line"])] = row["reason"]
                elif row["id"] in seen:
                    invalid[(row["source"], row["line"])] = DUPLICATE_ID
                else:
                    seen.add(row["id"])
                    fresh.append(row)
            if not fresh:
                continue
            batch = pa.RecordBatch.from_pylist([{"id": r["id"], "record": r["record"]} for r in fresh])
            for row in extract_entities(batch, perspectives, nlp).to_pylist():
                rid = row.pop("id")
                counts.add(row)
                if keep_entities:
                    entities[rid] = row
    return counts, entities, invalid, lines
