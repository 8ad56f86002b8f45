"""The final pick and every output of the stage, written by the engine in parallel shards.

- synthetic/part-*.jsonl: per method, the candidates of smallest draw up to its target. The
  driver names the boundary (bin, how many of it) from the rounds' bin counts; the engine finds
  the exact cutoff among that one bin's candidates. Records go to shards by bin ranges, sorted
  inside, so the shards concatenate to the same bytes whatever their number.
- refined/: one fragment per kept file (input order) then one per synthetic shard; for
  llava-json the fragments are joined into one array by a byte copy (refined_writers).
- failed/part-*.jsonl: every round's failures, in order of their draw.
- entity_counts/part-*.parquet: (perspective, entity, count) of the synthetic records, tagged as
  the statistics tag, summed by the engine.
- tallies: records written, synonym sources, records counted, for the summary.
"""

from __future__ import annotations

import json
import zlib

import apache_beam as beam
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions

from adr.synthesis import BINS, METHODS, bin_of, planned
from pipelines.outputs import join
from pipelines.synthesize.offers import read_offer_counts
from pipelines.synthesize.refined_writers import FRAGMENT_WRITERS, kept_lines
from pipelines.synthesize.rounds import write_tallies
from pipelines.synthesize.steps import split_candidate
from udfs.artifacts import COUNTS_SCHEMA

FRAGMENT_SUFFIX = {"llava-json": ".json", "jsonl": ".jsonl", "parquet": ".parquet"}


def part_name(index: int, width: int, suffix: str) -> str:
    return f"part-{index:0{width}d}{suffix}"


class Pick:
    """Per method, (b, k): the candidates of bins below b and the k smallest of bin b."""

    def __init__(self, limits: dict[str, tuple[int, int]]):
        self.limits = limits

    def in_range(self, c) -> bool:
        b, k = self.limits.get(c[0], (0, 0))
        x = bin_of(c[1])
        return x < b or (x == b and k > 0)

    def on_boundary(self, c) -> bool:
        b, k = self.limits.get(c[0], (0, 0))
        return k > 0 and bin_of(c[1]) == b

    def cutoff(self, kv):
        method, places = kv
        return method, sorted(places)[self.limits[method][1] - 1]

    def keep(self, c, cutoffs: dict) -> bool:
        b, _ = self.limits[c[0]]
        return bin_of(c[1]) < b or (c[1], c[2], c[3]) <= tuple(cutoffs[c[0]])

    def reach(self, method: str, cutoffs: dict) -> float:
        """The largest order the method's pick took: how far along the plan it went."""
        b, k = self.limits.get(method, (0, 0))
        if k:
            return cutoffs[method][0]
        return min(1.0, b / BINS)


def with_markers(keyed, shards: int, label: str):
    """Group by shard, with every shard present: an empty shard is still written, as an empty file."""
    markers = keyed.pipeline | f"{label}Shards" >> beam.Create([(i, None) for i in range(shards)])
    return ((keyed, markers) | f"{label}WithMarkers" >> beam.Flatten()
            | f"Group{label}" >> beam.GroupByKey())


class WriteSyntheticShard(beam.DoFn):
    """synthetic/ shard i and refined/ fragment n_kept + i, from one sort of the shard's records."""

    def __init__(self, output: str, fmt: str, n_kept: int, width: int):
        self.output, self.fmt, self.n_kept, self.width = output, fmt, n_kept, width

    def process(self, kv):
        shard, items = kv
        items = sorted(x for x in items if x is not None)
        lines = [record for *_, record in items]
        FRAGMENT_WRITERS["jsonl"](join(self.output, "synthetic", part_name(shard, self.width, ".jsonl")), lines)
        FRAGMENT_WRITERS[self.fmt](refined_fragment(self.output, self.fmt, self.n_kept + shard, self.width), lines)
        yield ("records",), len(lines)
        for method_index, *_, record in items:
            if METHODS[method_index] == "synonym":
                for r in json.loads(record)["adr"]["parameters"].get("replacements", []):
                    yield ("source", r["source"]), 1


def refined_fragment(output: str, fmt: str, index: int, width: int) -> str:
    folder = join(output, "refined", "_fragments") if fmt == "llava-json" else join(output, "refined")
    return join(folder, part_name(index, width, FRAGMENT_SUFFIX[fmt]))


def write_kept_fragment(item, output: str, fmt: str, width: int):
    index, url = item
    FRAGMENT_WRITERS[fmt](refined_fragment(output, fmt, index, width), kept_lines(url))


def entity_occurrences(c):
    """((perspective, entity), 1) for each entity of a picked candidate, and ("counted",) once: its
    entities were found in the round by the statistics' udf, so the sums equal a recount."""
    yield ("counted",), 1
    for p, found in c[4].items():
        for entity in found:
            yield ("entity", p, entity), 1


def plan_row(kv, plan, reach: dict):
    """One row of plan/: an entity a method planned for, what the plan gave it, what was made."""
    (method, perspective, entity), grouped = kv
    offers, made = sum(grouped["offers"]), sum(grouped["made"])
    ctx = plan.context
    room = ctx.room(perspective, entity)
    planned_n = planned(offers, room, reach.get(method, 0.0))
    yield {"method": method, "perspective": perspective, "entity": entity,
           "count": ctx.counts.get(perspective, {}).get(entity, 0), "ceiling": ctx.ceilings[perspective],
           "room": room, "offers": offers, "planned": planned_n, "made": made}


def write_entity_counts(kv, output: str, width: int):
    shard, rows = kv
    rows = sorted(r for r in rows if r is not None)
    table = pa.Table.from_pylist([{"perspective": p, "entity": e, "count": n} for p, e, n in rows],
                                 schema=COUNTS_SCHEMA)
    with fsspec.open(join(output, "entity_counts", part_name(shard, width, ".parquet")), "wb", auto_mkdir=True) as f:
        pq.write_table(table, f)


PLAN_SCHEMA = pa.schema([("method", pa.string()), ("perspective", pa.string()), ("entity", pa.string()),
                         ("count", pa.int64()), ("ceiling", pa.int64()), ("room", pa.int64()),
                         ("offers", pa.int64()), ("planned", pa.int64()), ("made", pa.int64())])


def write_plan(kv, output: str, width: int):
    shard, rows = kv
    rows = sorted((r for r in rows if r is not None), key=lambda r: (r["method"], r["perspective"], r["entity"]))
    with fsspec.open(join(output, "plan", part_name(shard, width, ".parquet")), "wb", auto_mkdir=True) as f:
        pq.write_table(pa.Table.from_pylist(rows, schema=PLAN_SCHEMA), f)


def failed_shard(line: str, shards: int):
    """Failures by draw, so the shards concatenate to one order whatever their number."""
    f = json.loads(line)
    return (bin_of(f["order"]) * shards // BINS,
            (f["order"], METHODS.index(f["method"]), f["seed_key"], f.get("made_for", []), line))


def write_lines(kv, folder: str, width: int):
    shard, items = kv
    FRAGMENT_WRITERS["jsonl"](join(folder, part_name(shard, width, ".jsonl")),
                              [item[-1] for item in sorted(x for x in items if x is not None)])


def stable_shard(text: str, shards: int) -> int:
    return zlib.crc32(text.encode("utf-8")) % shards


class Publish(beam.PTransform):
    """{"candidates": the rounds' candidate lines, "failed": their failure lines, "offer_counts":
    ((method, perspective, entity), offers), "kept": (index, kept file)} -> the stage's outputs
    under --output, each shard sorted as it is written so that its bytes do not depend on the
    runner; returns the tallies, (key, n). `limits` and `shard_of` are the driver's cut."""

    def __init__(self, plan, limits: dict[str, tuple[int, int]], shard_of: dict[tuple[str, int], int],
                 shards: int, n_kept: int):
        super().__init__()
        self.plan, self.pick, self.shard_of, self.shards, self.n_kept = plan, Pick(limits), shard_of, shards, n_kept

    def expand(self, inputs):
        plan, pick, shard_of, shards = self.plan, self.pick, self.shard_of, self.shards
        output, fmt = plan.args.output, plan.output_format
        width = max(5, len(str(self.n_kept + shards - 1)))
        candidates = (inputs["candidates"] | "SplitCandidates" >> beam.Map(split_candidate)
                      | "InRange" >> beam.Filter(pick.in_range))
        cutoffs = (candidates | "OnBoundary" >> beam.Filter(pick.on_boundary)
                   | "BoundaryDraws" >> beam.Map(lambda c: (c[0], (c[1], c[2], c[3])))
                   | "GroupBoundary" >> beam.GroupByKey()
                   | "Cutoff" >> beam.Map(pick.cutoff))
        picked = candidates | "Pick" >> beam.Filter(pick.keep, beam.pvalue.AsDict(cutoffs))

        keyed = picked | "ToShard" >> beam.Map(
            lambda c: (shard_of[(c[0], bin_of(c[1]))], (METHODS.index(c[0]), c[1], c[2], c[3], c[5])))
        tallies = [with_markers(keyed, shards, "Synthetic")
                   | "WriteSynthetic" >> beam.ParDo(WriteSyntheticShard(output, fmt, self.n_kept, width))]

        _ = inputs["kept"] | "WriteKeptFragments" >> beam.Map(write_kept_fragment, output, fmt, width)

        counted = (picked | "EntityOccurrences" >> beam.FlatMap(entity_occurrences)
                   | "SumEntityCounts" >> beam.CombinePerKey(sum))
        tallies.append(counted | "Counted" >> beam.Filter(lambda kv: kv[0] == ("counted",)))
        rows = (counted | "Entities" >> beam.Filter(lambda kv: kv[0][0] == "entity")
                | "EntityRow" >> beam.Map(lambda kv: (stable_shard(f"{kv[0][1]}\x1f{kv[0][2]}", shards),
                                                      (kv[0][1], kv[0][2], kv[1]))))
        _ = (with_markers(rows, shards, "EntityCounts")
             | "WriteEntityCounts" >> beam.Map(write_entity_counts, output, width))

        cut = beam.pvalue.AsDict(cutoffs)
        made = (picked | "MadeFor" >> beam.Map(lambda c: ((c[0], *c[3].split("\x1f", 1)), 1))
                | "SumMadeFor" >> beam.CombinePerKey(sum))
        plan_rows = ({"offers": inputs["offer_counts"], "made": made}
                     | "JoinPlan" >> beam.CoGroupByKey()
                     | "PlanRow" >> beam.FlatMap(lambda kv, cut: plan_row(kv, plan, {
                         m: pick.reach(m, cut) for m in METHODS}), cut))
        tallies.append(plan_rows | "PlanTallies" >> beam.FlatMap(
            lambda r: ([(("planned_entities",), 1)] if r["planned"] else [])
            + ([(("met_entities",), 1)] if r["planned"] and r["made"] >= r["planned"] else [])))
        _ = (with_markers(plan_rows | "PlanShard" >> beam.Map(
                lambda r: (stable_shard(f"{r['method']}\x1f{r['perspective']}\x1f{r['entity']}", shards), r)),
                shards, "Plan")
             | "WritePlan" >> beam.Map(write_plan, output, width))

        failed = inputs["failed"] | "FailedToShard" >> beam.Map(failed_shard, shards)
        _ = (with_markers(failed, shards, "Failed")
             | "WriteFailed" >> beam.Map(write_lines, join(output, "failed"), width))
        return tallies | "AllTallies" >> beam.Flatten()


def publish_sources(p, plan, round_dirs: list[str], kept_files: list[str]) -> dict:
    """What publishing reads: every round's candidates and failures, the offers' counts, the kept files."""
    def lines(label: str, pattern: str):
        return (p | f"{label}Files" >> beam.Create([join(d, pattern) for d in round_dirs])
                | f"Read{label}" >> beam.io.ReadAllFromText())

    return {"candidates": lines("Candidates", "candidates*.jsonl"), "failed": lines("Failed", "failed*.jsonl"),
            "offer_counts": read_offer_counts(p, plan.work),
            "kept": p | "KeptFiles" >> beam.Create(list(enumerate(kept_files)))}


def publish(plan, beam_args, round_dirs: list[str], limits: dict[str, tuple[int, int]],
            shard_of: dict[tuple[str, int], int], shards: int, kept_files: list[str]) -> None:
    """The publishing pipeline over the rounds' files; its tallies go to --output's _tallies/publish."""
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        tallies = (publish_sources(p, plan, round_dirs, kept_files)
                   | "Publish" >> Publish(plan, limits, shard_of, shards, len(kept_files)))
        write_tallies([tallies], join(plan.args.output, "_tallies", "publish"))
