"""Repeated records and shared images, found by the engine and sent to the splits they sit in,
for input the statistics did not read (theirs are in STATS/repeats/, found by Spark).

Byte-identical records need an occurrence number in their key, and the synthesis seed pool needs
to know whether another record uses a record's image. Both are corpus-wide facts. The values are
grouped by hash bucket (one shuffled element per batch and bucket, 24 bytes a record: a 64-bit
hash of the value and its place); what a repeat means for a record is then sent, keyed by
split, to the read of that split. No process holds the repeats of the corpus, and a split's
notes are bounded by its records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa

from adr.rebalance_stats import RebalanceStats

Place = tuple[int, int]  # (split, position in its source): input order, since splits are in plan order
PLACES = np.dtype([("value", "<u8"), ("split", "<i8"), ("position", "<i8")])


def value_hash(value: str) -> int:
    """64 bits of the value: what is shuffled instead of the value (ids, image paths, record
    keys); a collision among a corpus's values is a 1 in 10^9 event at 200M values."""
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def bucketed(item: tuple[int, pa.RecordBatch], column: str, buckets: int):
    """(bucket, packed (value hash, split, position) rows) of one column's non-null values: 24
    bytes a record go through the shuffle, one element per batch and bucket."""
    split, batch = item
    values = batch.column(column).to_pylist()
    positions = batch.column("position").to_pylist()
    rows = np.array([(value_hash(v), split, p) for v, p in zip(values, positions) if v is not None], dtype=PLACES)
    bucket_of = rows["value"] % buckets
    return [(int(b), rows[bucket_of == b].tobytes()) for b in np.unique(bucket_of)]


def repeated(bucket) -> Iterable[tuple[int, list[Place]]]:
    """(value hash, its places in input order) of every value of the bucket that occurs more
    than once."""
    _, parts = bucket
    rows = np.concatenate([np.frombuffer(part, dtype=PLACES) for part in parts])
    rows = rows[np.lexsort((rows["position"], rows["split"], rows["value"]))]
    starts = np.flatnonzero(np.r_[True, rows["value"][1:] != rows["value"][:-1]])
    ends = np.r_[starts[1:], len(rows)]
    for start, end in zip(starts, ends):
        if end - start > 1:
            run = rows[start:end]
            yield int(run["value"][0]), list(zip(run["split"].tolist(), run["position"].tolist()))


def _by_split(notes: Iterable[tuple[int, object]], kind: str):
    per: dict[int, list] = {}
    for split, note in notes:
        per.setdefault(split, []).append(note)
    return [(split, (kind, items)) for split, items in per.items()]


def copy_notes(bucket):
    """(split, ("copies", [(position, occurrence), ...])): the second and later of byte-identical
    records, numbered in input order."""
    return _by_split(((split, (position, n)) for _, places in repeated(bucket)
                      for n, (split, position) in enumerate(places) if n), "copies")


def shared_notes(bucket):
    """(split, ("shared", [position, ...])): records whose image another record uses."""
    return _by_split(((split, position) for _, places in repeated(bucket) for split, position in places), "shared")


def repeated_id_stats(bucket):
    """Valid records whose id an earlier record has (LLaVA's mix repeats its image ids)."""
    extra = sum(len(places) - 1 for _, places in repeated(bucket))
    if extra:
        yield RebalanceStats(repeated_ids=extra)


def group_buckets(rows, column: str, buckets: int):
    name = column.title()
    return (rows
            | f"{name}Buckets" >> beam.FlatMap(bucketed, column, buckets)
            | f"Group{name}s" >> beam.GroupByKey())


def split_notes(rows, buckets: int):
    """Per split, what repeats mean for its records; and the repeated-id statistics."""
    by_key = group_buckets(rows, "key", buckets)
    by_image = group_buckets(rows, "image", buckets)
    notes = ((by_key | "CopyNotes" >> beam.FlatMap(copy_notes),
              by_image | "SharedNotes" >> beam.FlatMap(shared_notes))
             | "AllNotes" >> beam.Flatten())
    ids = group_buckets(rows, "id", buckets) | "RepeatedIds" >> beam.FlatMap(repeated_id_stats)
    return notes, ids
