"""Entity counts of parts of a corpus, for comparing it before and after refinement.

Counting a subset from the statistics stage's entities/ (by record key) avoids tagging the corpus again;
only records the stages made (synthetic ones) are tagged, by the same udfs as the statistics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from udfs.artifacts import Counts, read_dictionary


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
