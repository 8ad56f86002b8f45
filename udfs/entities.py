"""Per-record entity sets of every perspective, computed a batch at a time.

Both engines call `extract_entities`: Spark through mapInArrow, Beam from a batched DoFn.
The tagger runs once per distinct turn text in the batch (instructions repeat a lot).
"""

from __future__ import annotations

import json

import pyarrow as pa

from adr.entities.registry import PERSPECTIVES, extract_record
from adr.records import turn_texts
from udfs.nlp import load_nlp, tagged_tokens


def entities_schema(perspectives: tuple[str, ...]) -> pa.Schema:
    return pa.schema([("id", pa.string())] + [(p, pa.list_(pa.string())) for p in perspectives])


def extract_entities(batch: pa.RecordBatch, perspectives: tuple[str, ...],
                     nlp: str | None = None) -> pa.RecordBatch:
    """`id` + one sorted list<string> column per perspective, from a batch with `id`, `record`."""
    records = [json.loads(r) for r in batch.column("record").to_pylist()]
    tagged = tag_records(records, nlp) if any(PERSPECTIVES[p].needs_tagger for p in perspectives) \
        else [[] for _ in records]
    columns: dict[str, list] = {p: [] for p in perspectives}
    for record, tags in zip(records, tagged):
        for p, values in extract_record(record, tags, perspectives).items():
            columns[p].append(sorted(values))
    return pa.RecordBatch.from_arrays(
        [batch.column("id")] + [pa.array(columns[p], pa.list_(pa.string())) for p in perspectives],
        schema=entities_schema(perspectives))


def tag_records(records: list[dict], nlp_name: str | None) -> list[list[tuple[str, str]]]:
    """(tag, lemma) pairs of all turns of each record."""
    nlp = load_nlp(nlp_name)
    per_record = [turn_texts(r) for r in records]
    unique = list(dict.fromkeys(t for texts in per_record for t in texts))
    tags = {text: tagged_tokens(doc) for text, doc in zip(unique, nlp.pipe(unique, batch_size=256))}
    return [[pair for t in texts for pair in tags[t]] for texts in per_record]
