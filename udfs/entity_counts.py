"""Entity counts of parts of a corpus, for comparing it before and after refinement.

Counting a subset from the statistics stage's entities/ (by record key) avoids tagging the corpus again;
only records the stages made (synthetic ones) are tagged, by the same udfs as the statistics.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from udfs.artifacts import Counts, read_dictionary
from udfs.entities import extract_entities
from udfs.records import parse_raw
from udfs.sources import read_raw


def count_batches(batches: Iterable[pa.RecordBatch], perspectives: tuple[str, ...]) -> Counts:
    """Records containing each entity (an entity counts once per record, as in the statistics)."""
    counts: Counts = {p: Counter() for p in perspectives}
    for batch in batches:
        for p in perspectives:
            flat = pc.list_flatten(batch.column(p))
            if len(flat):
                vc = pc.value_counts(flat)
                counts[p].update(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())))
    return counts


def dictionary_counts(stats_dir: str, perspectives: tuple[str, ...]) -> Counts:
    return {p: Counter(c) for p, c in read_dictionary(stats_dir, perspectives, "count").items()}


def counts_of_files(urls: Iterable[str], perspectives: tuple[str, ...], nlp: str | None,
                    processes: int | None = None) -> tuple[Counts, int]:
    """(entity counts, valid records) of record files, tagged as the statistics stage tags;
    streamed a batch at a time, tagged on `processes` worker processes (default: one per core)."""
    import multiprocessing
    import os

    processes = processes or os.cpu_count() or 1

    def valid_batches():
        for url in urls:
            for raw in read_raw(url, batch_size=1024):
                parsed = parse_raw(raw)
                valid = parsed.filter(parsed.column("reason").is_null())
                if valid.num_rows:
                    yield valid.select(["key", "record"])

    counts: Counts = {p: Counter() for p in perspectives}
    records = 0
    parts: Iterable[tuple[Counts, int]]
    if processes == 1:
        parts = (_count_batch(b, perspectives, nlp) for b in valid_batches())
        pool = None
    else:
        # spawn: a clean interpreter per worker, whatever threads (or JVM gateway) this one has
        pool = multiprocessing.get_context("spawn").Pool(processes)
        parts = pool.imap(functools.partial(_count_batch, perspectives=perspectives, nlp=nlp), valid_batches())
    try:
        for part, n in parts:
            records += n
            for p in perspectives:
                counts[p].update(part[p])
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return counts, records


def _count_batch(batch: pa.RecordBatch, perspectives: tuple[str, ...], nlp: str | None) -> tuple[Counts, int]:
    return count_batches([extract_entities(batch, perspectives, nlp)], perspectives), batch.num_rows
