"""The statistics of the Spark job, computed in one Python process with no engine.

It is the reference the Spark job is tested against and the baseline its benchmark is
measured against: same readers, same parsing, same entity udfs, counting with EntityCounts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import pyarrow as pa

from adr.dictionary import EntityCounts
from adr.records import DEFAULT_MAX_RECORD_BYTES, EXACT_DUPLICATE, record_key
from udfs.entities import extract_entities
from udfs.records import parse_raw, valid_and_invalid
from udfs.sources import expand_inputs, read_raw


def local_stats(inputs: str | Iterable[str], perspectives: tuple[str, ...], nlp: str | None = None,
                max_bytes: int = DEFAULT_MAX_RECORD_BYTES, keep_entities: bool = True,
                drop_exact_duplicates: bool = False):
    """(counts, entities by record key, invalid reasons by (source, position), elements read)."""
    counts = EntityCounts()
    entities: dict[str, dict[str, list[str]]] = {}
    invalid: dict[tuple[str, int], str] = {}
    seen: Counter = Counter()
    elements = 0
    for url in expand_inputs(inputs):
        for raw in read_raw(url):
            valid, bad = valid_and_invalid(parse_raw(raw, max_bytes=max_bytes))
            elements += valid.num_rows + bad.num_rows
            for row in bad.to_pylist():
                invalid[(row["source"], row["position"])] = row["reason"]
            fresh = []
            for row in valid.to_pylist():
                digest = row["key"]
                row["key"] = record_key(digest, seen[digest])
                seen[digest] += 1
                if drop_exact_duplicates and row["key"] != digest:
                    invalid[(row["source"], row["position"])] = EXACT_DUPLICATE
                else:
                    fresh.append(row)
            if not fresh:
                continue
            batch = pa.RecordBatch.from_pylist([{"key": r["key"], "record": r["record"]} for r in fresh])
            for row in extract_entities(batch, perspectives, nlp).to_pylist():
                key = row.pop("key")
                counts.add(row)
                if keep_entities:
                    entities[key] = row
    return counts, entities, invalid, elements
