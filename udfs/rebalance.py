"""Batch functions of the rebalancing stage: attach entities, decide.

`decide_batch` is the vectorised twin of adr.sampling.decide: it skips the hash for entities
with p >= 1 (U < 1 <= p always holds), which is where most of the time would go.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from adr.sampling import HEAD_ONLY, NO_ENTITIES, uniform
from udfs.entities import extract_entities

Probabilities = dict[str, dict[str, float]]


class EntityIndex:
    """Per-record entities looked up by record key: one split's, so its size is bounded."""

    def __init__(self, table: pa.Table):
        self.table = table.combine_chunks()
        self.row = {key: i for i, key in enumerate(self.table["key"].to_pylist())}


def attach_entities(records: pa.RecordBatch, perspectives: tuple[str, ...], index: EntityIndex | None,
                    nlp: str | None) -> pa.RecordBatch:
    """Entities for a batch of valid records (`key`, `record`): from the index when the stats job
    saw the record, else extracted now by the same udfs. Rows stay in the batch's order."""
    ids = records.column("key").to_pylist()
    rows = [index.row.get(key) for key in ids] if index is not None else [None] * len(ids)
    missing = [i for i, r in enumerate(rows) if r is None]
    if not missing:
        assert index is not None  # every row found: there is an index
        return index.table.take(pa.array(rows, pa.int64())).combine_chunks().to_batches()[0]
    fresh = pa.Table.from_batches([extract_entities(records.take(missing), perspectives, nlp)])
    if len(missing) == len(ids):
        return fresh.to_batches()[0]
    found = [i for i, r in enumerate(rows) if r is not None]
    assert index is not None  # some rows found: there is an index
    known = index.table.take(pa.array([rows[i] for i in found], pa.int64()))
    both = pa.concat_tables([known, fresh])
    order = {pos: k for k, pos in enumerate(found + missing)}
    return both.take(pa.array([order[i] for i in range(len(ids))], pa.int64())).combine_chunks().to_batches()[0]


@dataclass(frozen=True)
class Decision:
    keep: bool
    reason: str | None
    max_p: float
    p_keep: float
    tail: dict[str, list[str]]      # perspective -> the record's tail entities
    sizes: dict[str, int]           # perspective -> how many entities the record has


def decide_batch(entities: pa.RecordBatch, probs: Probabilities, seed: int,
                 factor: float = 1.0) -> list[Decision]:
    """One Decision per row of an entities batch (`key` + one list column per perspective); the
    draws are U = hash(seed, key, perspective, entity)."""
    perspectives = [name for name in entities.schema.names if name != "key"]
    ids = entities.column("key").to_pylist()
    lists = [(p, probs.get(p, {}), entities.column(p).to_pylist()) for p in perspectives]
    out = []
    for row, rid in enumerate(ids):
        keep, seen, max_p, miss = False, False, 0.0, 1.0
        tail: dict[str, list[str]] = {}
        sizes: dict[str, int] = {}
        for p, table, column in lists:
            values = column[row] or ()
            sizes[p] = len(values)
            for entity in values:
                seen = True
                prob = table[entity] * factor if entity in table else 1.0
                if prob > max_p:
                    max_p = prob
                if prob >= 1.0:
                    tail.setdefault(p, []).append(entity)
                    keep = True
                    miss = 0.0
                else:
                    miss *= 1.0 - prob
                    if not keep and uniform(seed, rid, p, entity) < prob:
                        keep = True
        reason = None if keep else (HEAD_ONLY if seen else NO_ENTITIES)
        out.append(Decision(keep, reason, max_p, 1.0 - miss if seen else 0.0, tail, sizes))
    return out


def expected_kept_fn(entities: pa.Table, probs: Probabilities):
    """f -> closed-form expected kept count under tau scaled by f, vectorised with numpy."""
    record_of_parts: list[np.ndarray] = []
    p_parts: list[np.ndarray] = []
    perspectives = [name for name in entities.schema.names if name != "key"]
    for p in perspectives:
        table = probs.get(p, {})
        flat = entities[p].combine_chunks()
        offsets = flat.offsets.to_numpy()
        values = flat.values.to_pylist()
        record_of_parts.append(np.repeat(np.arange(len(flat)), np.diff(offsets)))
        p_parts.append(np.array([table.get(e, np.inf) for e in values], dtype=float))
    record_of = np.concatenate(record_of_parts) if record_of_parts else np.zeros(0, int)
    ps = np.concatenate(p_parts) if p_parts else np.zeros(0)
    n = entities.num_rows
    has_entities = np.bincount(record_of, minlength=n) > 0

    def expected(factor: float) -> float:
        q = np.minimum(1.0, ps * factor)
        certain = np.bincount(record_of, weights=(q >= 1.0).astype(float), minlength=n) > 0
        log_miss = np.bincount(record_of, weights=np.log1p(-np.where(q >= 1.0, 0.0, q)), minlength=n)
        p_keep = np.where(certain, 1.0, 1.0 - np.exp(log_miss))
        return float(np.sum(p_keep[has_entities]))

    return expected


def expected_kept_on_grid(entities: pa.Table, probs: Probabilities, factors) -> np.ndarray:
    """The closed-form expected kept count of these records at each tau scale factor."""
    if not entities.num_rows:
        return np.zeros(len(factors))
    expected = expected_kept_fn(entities, probs)
    return np.array([expected(f) for f in factors])
