"""One reader per artifact the stages leave for each other, so each is parsed in one place:

- STATS/dictionary/      one row per (perspective, entity): count, p (written by `adr stats`)
- STATS/entities/        one row per record: key, id, one entity list per perspective, by split=N/
- STATS/repeats/         one row per copy or shared-image record: position, occurrence,
                         image_shared, by split=N/
- */entity_counts/       one row per (perspective, entity): count (the kept records', written by
                         `adr rebalance`; the synthetic records', written by `adr synthesize`)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from adr.errors import InputError
from udfs.entities import entities_schema

Counts = dict[str, Counter]          # perspective -> entity -> records holding it
COUNTS_SCHEMA = pa.schema([("perspective", pa.string()), ("entity", pa.string()), ("count", pa.int64())])


def read_table(url: str, columns=None) -> pa.Table:
    fs, path = fsspec.core.url_to_fs(url)
    if not fs.exists(path):
        raise InputError(f"cannot read {url!r}: no such file or directory (run `adr stats` first)")
    return pq.read_table(path, filesystem=fs, columns=columns)


def _by_perspective(table: pa.Table, perspectives: Iterable[str], column: str) -> dict[str, dict]:
    out = {}
    for p in perspectives:
        part = table.filter(pc.equal(table["perspective"], p))
        out[p] = dict(zip(part["entity"].to_pylist(), part[column].to_pylist()))
    return out


def read_dictionary(stats_dir: str, perspectives: Iterable[str], column: str) -> dict[str, dict]:
    """perspective -> entity -> the dictionary's `column` (`p` or `count`); its size follows the
    distinct entities, not the records."""
    table = read_table(f"{stats_dir.rstrip('/')}/dictionary", ["perspective", "entity", column])
    return _by_perspective(table, perspectives, column)


def dictionary_parts(stats_dir: str) -> list[str]:
    """The names of the dictionary's Parquet parts (Spark names each run's parts anew)."""
    fs, path = fsspec.core.url_to_fs(f"{stats_dir.rstrip('/')}/dictionary")
    return sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False) if p.endswith(".parquet"))


def dictionary_shape(table: pa.Table, perspectives: Iterable[str]) -> dict:
    """Per perspective, how many entities and occurrences a dictionary table holds: what the
    manifest vouches for, to check a read against."""
    out: dict[str, dict] = {"entities": {}, "occurrences": {}}
    for p in perspectives:
        counts = table.filter(pc.equal(table["perspective"], p))["count"]
        out["entities"][p] = len(counts)
        out["occurrences"][p] = pc.sum(counts).as_py() or 0
    return out


def read_checked_dictionary(stats_dir: str, perspectives: tuple[str, ...], written: dict | None) -> dict[str, dict]:
    """perspective -> entity -> p, only if what was read is the dictionary the manifest describes
    (`written`: its parts, entities and occurrences per perspective): an object store replaces a
    directory one object at a time, and a part missing, left over or half-copied would make its
    entities count as tail. Raises InputError when they differ."""
    parts = dictionary_parts(stats_dir) if written else None
    table = read_table(f"{stats_dir.rstrip('/')}/dictionary", ["perspective", "entity", "count", "p"])
    if written:
        found = {"parts": parts, **dictionary_shape(table, written["entities"])}
        wrong = [k for k in ("parts", "entities", "occurrences") if found[k] != written[k]]
        if wrong:
            raise InputError(f"{stats_dir}/dictionary is not the one its manifest describes ({', '.join(wrong)} "
                             f"differ): being replaced, or copied in part")
    return _by_perspective(table, perspectives, "p")


def read_entities(stats_dir: str, perspectives: tuple[str, ...], split: int | None = None,
                  keys: Iterable[str] | None = None) -> pa.Table:
    """Per-record entities from the statistics: one split's (entities/split=N/; empty when the
    split held no valid record), or the rows of some keys."""
    fs, path = fsspec.core.url_to_fs(f"{stats_dir.rstrip('/')}/entities"
                                     + ("" if split is None else f"/split={split}"))
    schema = entities_schema(perspectives)
    if not fs.exists(path):
        return schema.empty_table()
    where = None if keys is None else pc.field("key").isin(pa.array(sorted(set(keys)), pa.string()))
    return ds.dataset(path, filesystem=fs, format="parquet").to_table(columns=schema.names, filter=where).cast(schema)


def has_repeats(stats_dir: str) -> bool:
    """Whether the statistics found the corpus's repeats (repeats/, written since it existed)."""
    fs, path = fsspec.core.url_to_fs(f"{stats_dir.rstrip('/')}/repeats")
    return fs.exists(path)


def read_repeats(stats_dir: str, split: int) -> tuple[dict[int, int], frozenset[int]]:
    """One split's repeats as the statistics found them: position -> occurrence (>= 1) of the
    second and later byte-identical records, and the positions whose image another record uses."""
    fs, path = fsspec.core.url_to_fs(f"{stats_dir.rstrip('/')}/repeats/split={split}")
    if not fs.exists(path):
        return {}, frozenset()
    table = ds.dataset(path, filesystem=fs, format="parquet").to_table(
        columns=["position", "occurrence", "image_shared"])
    rows = zip(*(table.column(c).to_pylist() for c in ("position", "occurrence", "image_shared")))
    copies, shared = {}, set()
    for position, occurrence, image_shared in rows:
        if occurrence:
            copies[position] = occurrence
        if image_shared:
            shared.add(position)
    return copies, frozenset(shared)


def counts_rows(counts: Iterable[tuple[tuple[str, str], int]]) -> pa.Table:
    """((perspective, entity), count) pairs -> an entity_counts table."""
    pairs = list(counts)
    return pa.Table.from_arrays([pa.array([p for (p, _), _ in pairs], pa.string()),
                                 pa.array([e for (_, e), _ in pairs], pa.string()),
                                 pa.array([n for _, n in pairs], pa.int64())], schema=COUNTS_SCHEMA)


def read_counts(directory: str, perspectives: Iterable[str]) -> Counts:
    """An entity_counts/ directory of Parquet parts -> perspective -> Counter (an entity found in
    several parts is summed)."""
    fs, path = fsspec.core.url_to_fs(directory)
    if not fs.exists(path):
        raise InputError(f"cannot read {directory!r}: no such directory (run the stage that writes it)")
    table = ds.dataset(path, filesystem=fs, format="parquet", schema=COUNTS_SCHEMA).to_table()
    summed = table.group_by(["perspective", "entity"]).aggregate([("count", "sum")])
    return {p: Counter(c) for p, c in _by_perspective(summed, perspectives, "count_sum").items()}
