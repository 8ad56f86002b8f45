"""Repeated records and shared images, found by the engine and sent to the splits they sit in.

Byte-identical records need an occurrence number in their key, and the synthesis seed pool needs
to know whether another record uses a record's image. Both are corpus-wide facts. The values are
grouped by hash bucket (one shuffled element per bucket, not per record); what a repeat means for
a record is then sent, keyed by split, to the read of that split. No process holds the repeats of
the corpus, and a split's notes are bounded by its records.
"""

from __future__ import annotations

import zlib
from typing import Iterable

import apache_beam as beam
import pyarrow as pa

from adr.rebalance_stats import RebalanceStats

Place = tuple[int, int]  # (split, position in its source): input order, since splits are in plan order


def bucketed(item: tuple[int, pa.RecordBatch], column: str, buckets: int):
    """(bucket, [(value, (split, position)), ...]) of one column's non-null values."""
    split, batch = item
    groups: dict[int, list] = {}
    for value, position in zip(batch.column(column).to_pylist(), batch.column("position").to_pylist()):
        if value is not None:
            groups.setdefault(zlib.crc32(value.encode("utf-8", "surrogatepass")) % buckets, []).append(
                (value, (split, position)))
    return groups.items()


def repeated(bucket) -> Iterable[tuple[str, list[Place]]]:
    """(value, its places in input order) of every value of the bucket that occurs more than once."""
    _, parts = bucket
    found: dict[str, list] = {}
    for part in parts:
        for value, place in part:
            found.setdefault(value, []).append(place)
    for value, places in found.items():
        if len(places) > 1:
            yield value, sorted(places)


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
