"""Per-record entity sets of every perspective, computed a batch at a time.

Both engines call `extract_entities`: Spark through mapInArrow, Beam from a batched DoFn.
The tagger runs once per distinct turn text: within a batch, and across batches through a
bounded per-process cache (instruction templates, short answers and stock questions repeat
verbatim across a whole corpus). Tagging a text does not depend on its neighbours, so the
cache changes no result.
"""

from __future__ import annotations

import json

import pyarrow as pa

from adr.entities.registry import PERSPECTIVES, extract_record
from adr.records import turn_texts
from udfs.nlp import load_nlp, tagged_nouns

# Texts this short are the ones that repeat (questions, answers, templates); long ones are
# nearly all distinct and would only churn the cache.
CACHED_TEXT_CHARS = 256
CACHE_ENTRIES = 50_000  # ~100 MB per process at LLaVA's turn lengths
_tag_cache: dict[tuple[str | None, str], tuple[tuple[str, str], ...]] = {}


def entities_schema(perspectives: tuple[str, ...]) -> pa.Schema:
    return pa.schema([("key", pa.string())] + [(p, pa.list_(pa.string())) for p in perspectives])


def extract_entities(batch: pa.RecordBatch, perspectives: tuple[str, ...],
                     nlp: str | None = None) -> pa.RecordBatch:
    """`key` + one sorted list<string> column per perspective, from a batch with `key`, `record`."""
    found = entities_of([json.loads(r) for r in batch.column("record").to_pylist()], perspectives, nlp)
    columns = {p: [f[p] for f in found] for p in perspectives}
    return pa.RecordBatch.from_arrays(
        [batch.column("key")] + [pa.array(columns[p], pa.list_(pa.string())) for p in perspectives],
        schema=entities_schema(perspectives))


def entities_of(records: list[dict], perspectives: tuple[str, ...],
                nlp: str | None = None) -> list[dict[str, list[str]]]:
    """Per parsed record, perspective -> its sorted entities: what `extract_entities` puts in its columns."""
    tagged = tag_records(records, nlp) if any(PERSPECTIVES[p].needs_tagger for p in perspectives) \
        else [[] for _ in records]
    return [{p: sorted(values) for p, values in extract_record(record, tags, perspectives).items()}
            for record, tags in zip(records, tagged)]


def tag_records(records: list[dict], nlp_name: str | None) -> list[list[tuple[str, str]]]:
    """(tag, lemma) pairs of the nouns of all turns of each record."""
    per_record = [turn_texts(r) for r in records]
    tags = tag_texts(dict.fromkeys(t for texts in per_record for t in texts), nlp_name)
    return [[pair for t in texts for pair in tags[t]] for texts in per_record]


def tag_texts(texts, nlp_name: str | None) -> dict[str, tuple[tuple[str, str], ...]]:
    """text -> (tag, lemma) pairs of its nouns, tagging only texts this process has not tagged before."""
    out, todo = {}, []
    for text in texts:
        hit = _tag_cache.get((nlp_name, text))
        if hit is None:
            todo.append(text)
        else:
            out[text] = hit
    if todo:
        nlp = load_nlp(nlp_name)
        if len(_tag_cache) > CACHE_ENTRIES:
            _tag_cache.clear()
        for text, pairs in zip(todo, tagged_nouns(nlp, todo)):
            out[text] = pairs
            if len(text) <= CACHED_TEXT_CHARS:
                _tag_cache[(nlp_name, text)] = out[text]
    return out
