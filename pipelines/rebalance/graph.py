"""The rebalancing graph and what it is given: the launch's config, and what the reads found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import apache_beam as beam

from adr.rebalance_stats import RebalanceStats
from pipelines.outputs import join
from pipelines.rebalance.decide import COUNTS, DROPPED, INVALID, SEEDS, STATS, Decide, ParseBatch, WriteKeptBatch
from pipelines.rebalance.panes import WritePanes
from pipelines.rebalance.reads import Found
from pipelines.rebalance.summary import WriteSummary, tail_entity_stats
from pipelines.rebalance.watch import CommitWatched
from udfs.artifacts import COUNTS_SCHEMA, counts_rows


@dataclass(frozen=True)
class Config:
    """Everything the workers need, resolved once at launch (plan()) and pickled to them."""

    stats_dir: str
    perspectives: tuple[str, ...]
    taus: dict[str, int]
    seed: int
    nlp: str | None
    max_bytes: int
    reuse_entities: bool
    streaming: bool
    window_secs: float
    refresh_secs: float
    buckets: int
    drop_exact_duplicates: bool
    repeated_ids: int
    stats_splits: list[dict]      # the splits `adr stats` read: entities/split=N/ holds splits[N]'s records
    # Names this run's streaming files (panes.pane_name): a restart does not overwrite them.
    job: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    stop_at: float | None = None  # a bounded watch (--watch-for-secs) ends the stream, so the job finishes
    sources: dict[str, int] = field(default_factory=dict)  # input file -> its index, for kept/ file names
    splits: list[dict] = field(default_factory=list)       # a bounded input's splits
    input_bytes: int = 0          # a bounded input's size: read progress is a share of it
    stats_repeats: bool = False   # the statistics' repeats/split=N/ are read with their splits
    target_size: int = 0
    factor: float = 1.0           # --target-size's scale of every tau


class Rebalance(beam.PTransform):
    """The rebalancing graph: SplitBatches in, kept/, dropped/, invalid/, seeds/, entity_counts/ and
    the summary out (the summary PCollection is returned). What the reads `found` joins the sinks
    and summary; for a watch, `ledger` records each window's files once they are written."""

    def __init__(self, cfg: Config, output: str, inputs: list[str] | None = None, found: Found = Found(),
                 ledger: str | None = None):
        super().__init__()
        self.cfg, self.output, self.inputs, self.found, self.ledger = cfg, output, inputs, found, ledger

    def expand(self, batches):
        cfg, output, found = self.cfg, self.output, self.found
        parsed = batches | "Parse" >> beam.ParDo(ParseBatch(cfg.max_bytes, cfg.input_bytes)).with_outputs(
            INVALID, STATS, main="valid")
        decided = parsed.valid | "Decide" >> beam.ParDo(Decide(cfg)).with_outputs(
            INVALID, DROPPED, SEEDS, STATS, COUNTS, main="kept")
        summed = (decided[COUNTS]
                  | "EntityCounts" >> beam.FlatMap(lambda pairs: pairs)
                  | "SumCounts" >> beam.CombinePerKey(sum))

        written = []

        def write(pcoll, name):
            if cfg.streaming:  # files per window, pane and shard: late panes too (panes.py)
                written.append(pcoll | f"Write{name.title()}" >> WritePanes(join(output, name), cfg.job))
                return written[-1]
            return pcoll | f"Write{name.title()}" >> beam.io.WriteToText(join(output, name, "part"),
                                                                          file_name_suffix=".jsonl")

        if cfg.streaming:
            write(decided.kept | "KeptText" >> beam.Values(), "kept")
        else:
            decided.kept | "WriteKept" >> beam.ParDo(WriteKeptBatch(join(output, "kept")))
            (summed
             | "ByEntity" >> beam.Map(lambda kv: (kv[0][:2], kv[1]))
             | "SumByEntity" >> beam.CombinePerKey(sum)
             | "BatchCounts" >> beam.BatchElements(min_batch_size=1024, max_batch_size=65536)
             | "CountRows" >> beam.Map(counts_rows)
             | "WriteCounts" >> beam.io.parquetio.WriteToParquetBatched(join(output, "entity_counts", "part"),
                                                                         COUNTS_SCHEMA, file_name_suffix=".parquet"))
        write(decided[DROPPED], "dropped")
        write((parsed[INVALID], decided[INVALID], *found.invalid) | "AllInvalid" >> beam.Flatten(), "invalid")
        write(decided[SEEDS], "seeds")
        stats = ((parsed[STATS], decided[STATS], tail_entity_stats(summed), *found.stats)
                 | "AllStats" >> beam.Flatten())
        combine = beam.CombineGlobally(lambda parts: sum(parts, RebalanceStats()))
        if cfg.streaming:
            combine = combine.without_defaults()
        summary = (stats | "Total" >> combine
                   | "Summary" >> beam.ParDo(WriteSummary(cfg, output, self.inputs)))
        if found.watched is not None:
            (((found.watched, summary, *written) | "AllWritten" >> beam.Flatten())
             | "CommitKey" >> beam.WithKeys("commit")
             | "WindowDone" >> beam.GroupByKey()
             | "Commit" >> beam.ParDo(CommitWatched(self.ledger, cfg.job)))
        return summary
