"""The seed draw, done by the engine: pools counted per bin of u, a round's seeds selected by a
filter on their bins, and their noun lemmas joined from the statistics by key.

The driver only ever sees bin counts and bin ranges: the seed pool grows with the corpus.
"""

from __future__ import annotations

import json

import apache_beam as beam
import fsspec

from adr.synthesis import METHODS, bin_of, draw
from pipelines.outputs import join
from pipelines.synthesize.steps import Seed
from udfs.sources import url_of

TEXT_METHODS = ("synonym", "rewrite")


def pools_of(row: dict) -> tuple[str, ...]:
    """The methods a seed row can serve. Visual: the spec's tail records whose image no other
    record uses. Language methods need a tail in the text (a tail token), whatever the image."""
    out = []
    if row.get("image") and row.get("image_shared") is False:  # null: unknown (a streamed seed), not unshared
        out.append("visual")
    if row["tail_entities"].get("token"):
        out += TEXT_METHODS
    return tuple(out)


def pool_bins(line: str, seed: int):
    row = json.loads(line)
    for m in pools_of(row):
        yield (m, bin_of(draw(seed, row["key"], m))), 1


def count_pools(p, pattern: str, seed: int):
    """((method, bin), seeds): the pools' histograms of u."""
    return (p | "ReadPoolSeeds" >> beam.io.ReadFromText(pattern)
            | "PoolBins" >> beam.FlatMap(pool_bins, seed)
            | "CountPoolBins" >> beam.CombinePerKey(sum))


def drawn(line: str, ranges: dict[str, tuple[int, int]], seed: int):
    """The seed row, once for each method whose round range holds its draw, tagged by method."""
    row = json.loads(line)
    for m in pools_of(row):
        if m in ranges:
            u = draw(seed, row["key"], m)
            lo, hi = ranges[m]
            if lo <= bin_of(u) < hi:
                yield beam.pvalue.TaggedOutput(m, Seed(m, u, row["key"], row["id"], row.get("image"),
                                                       row["tail_entities"], row["record"]))


def select_seeds(p, pattern: str, ranges: dict[str, tuple[int, int]], seed: int):
    """The round's seeds of each method: a filter over the seed files, no list of keys anywhere."""
    return (p | "ReadSeeds" >> beam.io.ReadFromText(pattern)
            | "DrawSeeds" >> beam.FlatMap(drawn, ranges, seed).with_outputs(*METHODS))


def file_urls(folder: str, suffix: str) -> list[str]:
    """The files under a folder (at any depth) with this suffix, in name order: names, not rows."""
    fs, root = fsspec.core.url_to_fs(folder)
    if not fs.exists(root):
        return []
    return [url_of(fs, n) for n in sorted(fs.find(root)) if n.endswith(suffix)]


def entity_files(stats_dir: str) -> list[str]:
    """The statistics' entities/ Parquet files (entities/split=N/part-*.parquet)."""
    return file_urls(join(stats_dir, "entities"), ".parquet")


def stats_nouns_in_range(row: dict, ranges: dict[str, tuple[int, int]], seed: int):
    """(key, noun lemmas) of a statistics row whose key a text method's round range could draw:
    the join then moves only the round's share of entities/."""
    key = row["key"]
    if any(lo <= bin_of(draw(seed, key, m)) < hi for m, (lo, hi) in ranges.items()):
        yield key, tuple(row["token"] or ())


def join_stats_nouns(p, text_seeds, files: list[str], ranges: dict[str, tuple[int, int]], seed: int):
    """Text seeds with the noun lemmas the statistics tagged (CoGroupByKey by record key); a
    seed the statistics did not see keeps nouns=None and is tagged in the round."""
    text_ranges = {m: r for m, r in ranges.items() if m in TEXT_METHODS}
    if not files or not text_ranges:
        return text_seeds
    from dataclasses import replace

    nouns = (p | "EntityFiles" >> beam.Create(files)
             | "ReadStatsNouns" >> beam.io.ReadAllFromParquet(columns=["key", "token"])
             | "NounsInRange" >> beam.FlatMap(stats_nouns_in_range, text_ranges, seed))
    keyed = text_seeds | "SeedByKey" >> beam.Map(lambda s: (s.key, s))

    def attach(kv):
        _, grouped = kv
        found = grouped["nouns"]
        for s in grouped["seeds"]:
            yield replace(s, nouns=found[0]) if found else s

    return {"seeds": keyed, "nouns": nouns} | "JoinStatsNouns" >> beam.CoGroupByKey() | "Attach" >> beam.FlatMap(attach)
