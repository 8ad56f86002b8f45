"""ADR rebalancing on Apache Beam: keep every tail record, drop part of the head-only ones.

    adr rebalance --input ... --dictionary STATS_DIR --output DIR [--seed 42] [--target-size N]
                  [Beam options: --runner, --direct_num_workers, --streaming, ...]

Outputs under DIR: kept/ (LLaVA JSON Lines, records unchanged; in batch mode one file per input
batch, named by its input position, so the file names sort into input order), dropped/, invalid/,
seeds/ (the synthesis seed pool) and summary.json. Work is done a batch of records at a time; the
dictionary (and the stats job's per-record entities) load once per worker process. Records are
identified by their key (adr.records), never by `id`: repeated ids are counted, not rejected.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import uuid
import zlib
from typing import Iterable

import apache_beam as beam
from apache_beam.io import fileio
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, SetupOptions, StandardOptions
from apache_beam.transforms import window
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.utils.shared import Shared

from adr.entities.registry import resolve
from adr.errors import ConfigError
from adr.rebalance_stats import RebalanceStats
from adr.records import DEFAULT_MAX_RECORD_BYTES, EXACT_DUPLICATE, record_key
from adr.sampling import factor_for_target
from pipelines import progress
from pipelines.outputs import join, read_json, read_summary, remove, write_json
from udfs.rebalance import (EntityIndex, attach_entities, decide_batch, expected_kept_fn, read_table,
                            load_probabilities)
from udfs.records import parse_raw
from udfs.sources import (MAX_ELEMENT_BYTES, RAW_SCHEMA, expand_inputs, fingerprint, input_format, read_raw,
                          total_bytes)
from udfs.splits import plan_splits, read_split, split_bytes_for

log = logging.getLogger("adr.rebalance")
INVALID, DROPPED, SEEDS, STATS = "invalid", "dropped", "seeds", "stats"


def parser() -> argparse.ArgumentParser:
    """The stage's flags; `adr run` offers the same ones."""
    ap = argparse.ArgumentParser(prog="adr rebalance", description=__doc__.splitlines()[0])
    ap.add_argument("--input", nargs="+", help="files, globs, directories or URLs (a directory to watch "
                    "with --streaming)")
    ap.add_argument("--pubsub-subscription", help="read raw records from Pub/Sub (streaming)")
    ap.add_argument("--kafka-topic", help="read raw records from Kafka (streaming; a cross-language "
                    "transform: needs Java and Beam's Kafka expansion service)")
    ap.add_argument("--kafka-bootstrap", default="localhost:9092", help="Kafka bootstrap servers")
    ap.add_argument("--dictionary", required=True, help="the output directory of `adr stats`")
    ap.add_argument("--output", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--perspectives", default=None, help="default: those of the dictionary")
    ap.add_argument("--target-size", type=int, default=0, help="scale all tau so ~N records are kept")
    ap.add_argument("--nlp", default=None, help="spaCy pipeline for records the stats job did not see")
    ap.add_argument("--extract-entities", action="store_true",
                    help="always extract entities, never reuse STATS_DIR/entities")
    ap.add_argument("--max-record-bytes", type=int, default=DEFAULT_MAX_RECORD_BYTES)
    ap.add_argument("--drop-exact-duplicates", action="store_true",
                    help="keep only the first of byte-identical records (the copies go to invalid/)")
    ap.add_argument("--buckets", type=int, default=256, help="hash buckets for finding repeated records and images")
    ap.add_argument("--window-secs", type=float, default=60.0, help="streaming: output window")
    ap.add_argument("--watch-interval-secs", type=float, default=10.0, help="streaming: directory poll")
    ap.add_argument("--watch-for-secs", type=float, default=0.0,
                    help="streaming: stop watching after this long and finish (default: watch forever)")
    ap.add_argument("--dictionary-refresh-secs", type=float, default=0.0,
                    help="streaming: reload the dictionary this often (slowly-changing side input)")
    return ap


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    ap = parser()
    args, beam_args = ap.parse_known_args(argv)
    if not (args.input or args.pubsub_subscription or args.kafka_topic):
        ap.error("one of --input, --pubsub-subscription or --kafka-topic is required")
    return args, beam_args


class Config:
    """Everything the workers need, resolved once at launch (and pickled to them)."""

    def __init__(self, args: argparse.Namespace, streaming: bool):
        manifest = read_json(join(args.dictionary, "manifest.json"))
        self.stats_dir = args.dictionary
        self.perspectives = resolve(args.perspectives or manifest["parameters"]["perspectives"])
        unknown = set(self.perspectives) - set(manifest["parameters"]["perspectives"])
        if unknown:
            raise ConfigError(f"the dictionary in {args.dictionary} has no {', '.join(sorted(unknown))} entities")
        self.taus = {p: manifest["perspectives"][p]["tau"] for p in self.perspectives}
        self.seed = args.seed
        self.nlp = args.nlp or (manifest["parameters"]["nlp"] if manifest["parameters"]["nlp"] != "default" else None)
        self.max_bytes = args.max_record_bytes
        self.reuse_entities = not args.extract_entities and not streaming
        self.streaming = streaming
        self.buckets = args.buckets
        self.drop_exact_duplicates = args.drop_exact_duplicates
        self.sources: dict[str, int] = {}  # input file -> its index, for kept/ file names
        self.splits: list[dict] = []        # set by run() for a bounded input
        # A bounded watch (--watch-for-secs) also ends the dictionary refresh, so the job finishes.
        self.stop_at = time.time() + args.watch_for_secs if streaming and args.watch_for_secs else None
        self.factor = 1.0
        self.target_size = args.target_size
        self.input_bytes = 0  # set by run() for a bounded input; read progress is a share of it
        if args.target_size:
            entities = read_table(join(args.dictionary, "entities"), ["key", *self.perspectives])
            expected = expected_kept_fn(entities, load_probabilities(args.dictionary, self.perspectives))
            self.factor = factor_for_target(expected, args.target_size)
            log.info("target size %d: tau scaled by %.6f", args.target_size, self.factor)


class _Worker:
    """What a worker process loads once, shared by all its DoFn instances."""

    def __init__(self, cfg: Config):
        self.probs = load_probabilities(cfg.stats_dir, cfg.perspectives)
        self.index = EntityIndex(cfg.stats_dir, cfg.perspectives) if cfg.reuse_entities else None


_SHARED = Shared()


def read_raw_batches(pipeline: beam.Pipeline, args: argparse.Namespace, cfg: Config, prefix: str = ""):
    if args.pubsub_subscription or args.kafka_topic:
        if args.pubsub_subscription:
            source = args.pubsub_subscription
            messages = pipeline | "ReadPubSub" >> beam.io.ReadFromPubSub(subscription=source)
        else:
            from apache_beam.io.kafka import ReadFromKafka

            source = f"kafka://{args.kafka_bootstrap}/{args.kafka_topic}"
            messages = (pipeline
                        | "ReadKafka" >> ReadFromKafka({"bootstrap.servers": args.kafka_bootstrap}, [args.kafka_topic])
                        | "Value" >> beam.Values())
        return (messages
                | "Window" >> beam.WindowInto(window.FixedWindows(args.window_secs))
                | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=4096)
                | "ToRaw" >> beam.Map(raw_batch_from_messages, source=source))
    if cfg.streaming:
        pattern = args.input[0].rstrip("/") + "/*" if not any(c in args.input[0] for c in "*?[") else args.input[0]
        stop = {"stop_timestamp": cfg.stop_at} if cfg.stop_at else {}
        return (pipeline
                | "Watch" >> fileio.MatchContinuously(pattern, interval=args.watch_interval_secs, **stop)
                | "Path" >> beam.Map(lambda m: m.path)
                | "Window" >> beam.WindowInto(window.FixedWindows(args.window_secs))
                | "Read" >> beam.FlatMap(read_raw))
    # Splits of bounded size (udfs.splits), spread over every worker: one big file (LLaVA's mix
    # is one 1 GB array) is read, parsed and decided by all of them, a split at a time.
    max_element_bytes = max(MAX_ELEMENT_BYTES, 2 * args.max_record_bytes)
    return (pipeline
            | f"{prefix}Splits" >> beam.Create(cfg.splits)
            | f"{prefix}Spread" >> beam.Reshuffle()
            | f"{prefix}Read" >> beam.FlatMap(read_split, max_element_bytes=max_element_bytes))


def raw_batch_from_messages(messages: list[bytes], source: str) -> pa.RecordBatch:
    """A batch of raw elements from a stream of messages, one record per message."""
    return pa.RecordBatch.from_arrays(
        [pa.array([source] * len(messages)), pa.array(range(len(messages)), pa.int64()),
         pa.array(list(messages), pa.binary())], schema=RAW_SCHEMA)


class ParseBatch(beam.DoFn):
    """Raw batch -> valid records (one batch), invalid rows (tagged), and their counts."""

    def __init__(self, max_bytes: int, input_bytes: int = 0):
        self.max_bytes, self.input_bytes = max_bytes, input_bytes

    def process(self, raw: pa.RecordBatch):
        if self.input_bytes:
            # Reading is the first half of the work shown; deciding (see Decide) the second.
            progress.advance(0, 0.5 * (pc.sum(pc.binary_length(raw.column("raw"))).as_py() or 0) / self.input_bytes)
        parsed = parse_raw(raw, max_bytes=self.max_bytes)
        stats = RebalanceStats(input=parsed.num_rows)
        bad = parsed.filter(parsed.column("reason").is_valid())
        for row in bad.to_pylist():
            stats.invalid[row["reason"]] += 1
            yield beam.pvalue.TaggedOutput(INVALID, json.dumps(
                {k: row[k] for k in ("source", "position", "reason", "detail", "raw")}, ensure_ascii=False))
        good = parsed.filter(parsed.column("reason").is_null())
        if good.num_rows:
            yield good.select(["source", "position", "key", "id", "image", "record"])
        yield beam.pvalue.TaggedOutput(STATS, stats)


def bucketed(batch: pa.RecordBatch, column: str, buckets: int):
    """(bucket, [(value, (source, position)), ...]) of one column's non-null values, for finding
    repeated values a bucket at a time instead of one shuffled element per record."""
    groups: dict[int, list] = {}
    for value, source, position in zip(batch.column(column).to_pylist(), batch.column("source").to_pylist(),
                                       batch.column("position").to_pylist()):
        if value is not None:
            groups.setdefault(zlib.crc32(value.encode("utf-8", "surrogatepass")) % buckets, []).append(
                (value, (source, position)))
    return groups.items()


def _positions(bucket) -> dict[str, list]:
    _, parts = bucket
    found: dict[str, list] = {}
    for part in parts:
        for value, position in part:
            found.setdefault(value, []).append(position)
    return found


def repeated_positions(bucket) -> Iterable[tuple[str, list]]:
    """(value, its positions in input order) of every value that occurs more than once."""
    for value, positions in _positions(bucket).items():
        if len(positions) > 1:
            yield value, sorted(positions)


def repeated_values(bucket) -> Iterable[tuple[str, int]]:
    """(value, occurrences) of every value that occurs more than once."""
    for value, positions in _positions(bucket).items():
        if len(positions) > 1:
            yield value, len(positions)


def find_repeated(valid, column: str, buckets: int, with_positions: bool = False):
    name = column.title()
    return (valid
            | f"{name}Buckets" >> beam.FlatMap(bucketed, column, buckets)
            | f"Group{name}s" >> beam.GroupByKey()
            | f"Repeated{name}s" >> beam.FlatMap(repeated_positions if with_positions else repeated_values))


class Decide(beam.DoFn):
    """Valid records -> kept JSON Lines (one string per batch), dropped rows, seed candidates."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.kept = beam.metrics.Metrics.counter("adr", "kept")
        self.dropped = beam.metrics.Metrics.counter("adr", "dropped")

    def setup(self):
        self.worker = _SHARED.acquire(lambda: _Worker(self.cfg), tag=("rebalance", id(self.cfg), self.cfg.stats_dir))

    def process(self, batch: pa.RecordBatch, copies, probs=None):
        cfg = self.cfg
        stats = RebalanceStats()
        first = batch.column("position")[0].as_py()
        name = f"part-{cfg.sources.get(batch.column('source')[0].as_py(), 0):05d}-{first:012d}"
        batch, invalid_rows = self.keyed(batch, copies, stats)
        yield from invalid_rows
        if not batch.num_rows:
            yield beam.pvalue.TaggedOutput(STATS, stats)
            return
        probs = probs if probs is not None else self.worker.probs
        entities = attach_entities(batch, cfg.perspectives, self.worker.index, cfg.nlp)
        decisions = decide_batch(entities, probs, cfg.seed, cfg.factor)
        kept_lines, dropped_lines, seeds = [], [], []
        tail_before = {p: [0, 0] for p in cfg.perspectives}
        tail_after = {p: [0, 0] for p in cfg.perspectives}
        for key, rid, image, record, d in zip(entities.column("key").to_pylist(), batch.column("id").to_pylist(),
                                              batch.column("image").to_pylist(), batch.column("record").to_pylist(),
                                              decisions):
            stats.expected_kept += d.p_keep
            for p, size in d.sizes.items():
                tail_before[p][1] += size
                if d.keep:
                    tail_after[p][1] += size
            for p, tail in d.tail.items():
                tail_before[p][0] += len(tail)
                stats.tail_before.setdefault(p, set()).update(tail)
            if d.keep:
                kept_lines.append(record)
                if d.tail:
                    seeds.append((key, rid, image, d.tail, record))
                    for p, tail in d.tail.items():
                        tail_after[p][0] += len(tail)
                        stats.tail_after.setdefault(p, set()).update(tail)
            else:
                stats.dropped[d.reason] += 1
                dropped_lines.append(json.dumps({"key": key, "id": rid, "reason": d.reason, "max_p": d.max_p,
                                                 "p_keep": d.p_keep}))
        stats.mass_before = {p: tuple(v) for p, v in tail_before.items()}
        stats.mass_after = {p: tuple(v) for p, v in tail_after.items()}
        stats.kept = len(kept_lines)
        if cfg.input_bytes:
            progress.advance(batch.num_rows, 0.5 * (pc.sum(pc.binary_length(batch.column("record"))).as_py()
                                                    + batch.num_rows) / cfg.input_bytes)
        self.kept.inc(stats.kept)
        self.dropped.inc(len(dropped_lines))
        if kept_lines:
            yield name, "\n".join(kept_lines)
        if dropped_lines:
            yield beam.pvalue.TaggedOutput(DROPPED, "\n".join(dropped_lines))
        if seeds:
            yield beam.pvalue.TaggedOutput(SEEDS, seeds)
        yield beam.pvalue.TaggedOutput(STATS, stats)

    def keyed(self, batch: pa.RecordBatch, copies: dict, stats: RebalanceStats):
        """The batch with each record's final key (the occurrence number appended to the second and
        later of byte-identical records), and the dead letters of copies dropped on request."""
        digests = batch.column("key").to_pylist()
        if not copies or not any(d in copies for d in digests):
            return batch, []
        positions = list(zip(batch.column("source").to_pylist(), batch.column("position").to_pylist()))
        keys, drop, dead = [], [], []
        for i, (digest, pos) in enumerate(zip(digests, positions)):
            occurrence = copies[digest].index(pos) if digest in copies else 0
            keys.append(record_key(digest, occurrence))
            if occurrence:
                stats.exact_duplicates += 1
                if self.cfg.drop_exact_duplicates:
                    drop.append(i)
                    stats.invalid[EXACT_DUPLICATE] += 1
                    dead.append(beam.pvalue.TaggedOutput(INVALID, json.dumps({
                        "source": pos[0], "position": pos[1], "reason": EXACT_DUPLICATE,
                        "detail": f"{EXACT_DUPLICATE}: same content as the record with key {digest}",
                        "raw": batch.column("record")[i].as_py()[:4096]}, ensure_ascii=False)))
        batch = batch.set_column(batch.schema.get_field_index("key"), "key", pa.array(keys, pa.string()))
        if drop:
            batch = batch.take(sorted(set(range(batch.num_rows)) - set(drop)))
        return batch, dead


def seed_lines(seeds: list, shared_images: dict) -> Iterable[str]:
    """The batch's kept tail records as JSON Lines, each marked with whether another record uses
    its image: the unshared (and text-only) ones are the visual seed pool of the spec; language
    synthesis may use any of them."""
    lines = [f'{{"key":{json.dumps(key)},"id":{json.dumps(rid)},"image":{json.dumps(image)},'
             f'"image_shared":{json.dumps(bool(image) and image in shared_images)},'
             f'"tail_entities":{json.dumps(tail)},"record":{record}}}'
             for key, rid, image, tail, record in seeds]
    if lines:
        yield "\n".join(lines)


class WriteSummary(beam.DoFn):
    """Check the invariant and write summary.json (one per window when streaming)."""

    def __init__(self, cfg: Config, output: str, inputs: list[str] | None):
        self.cfg, self.output, self.inputs = cfg, output, inputs

    def process(self, stats: RebalanceStats, win=beam.DoFn.WindowParam):
        yield summarise(stats, self.cfg, self.output, self.inputs, win)


def summarise(stats: RebalanceStats, cfg: Config, output: str, inputs: list[str] | None, win) -> dict:
    stats.check()
    summary = stats.to_summary()
    summary.update({
        "seed": cfg.seed, "perspectives": list(cfg.perspectives), "tau": cfg.taus,
        "tau_factor": cfg.factor, "target_size": cfg.target_size or None, "dictionary": cfg.stats_dir,
        "input_fingerprint": fingerprint(inputs) if inputs else None,
        "input_format": input_format(inputs) if inputs else None,
    })
    if isinstance(win, window.GlobalWindow):
        write_json(join(output, "summary.json"), summary)
    else:
        summary["window"] = [win.start.to_utc_datetime().isoformat(), win.end.to_utc_datetime().isoformat()]
        write_json(join(output, "summary", f"window-{win.start.micros // 1_000_000:012d}.json"), summary)
    return summary


class WriteKeptBatch(beam.DoFn):
    """One kept/ file per input batch, named by the batch's input position: concatenated in name
    order the files are the kept records in input order, whatever ran where. The write is
    idempotent (same name, same content) and atomic (a temporary file renamed), so a retried
    bundle neither duplicates nor truncates a file."""

    def __init__(self, directory: str):
        self.directory = directory

    def process(self, named):
        import fsspec

        name, text = named
        fs, root = fsspec.core.url_to_fs(self.directory)
        fs.makedirs(root, exist_ok=True)
        tmp = f"{root}/.{name}.{uuid.uuid4().hex}.tmp"
        with fs.open(tmp, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        fs.mv(tmp, f"{root}/{name}.jsonl")


def index_columns(raw: pa.RecordBatch, max_bytes: int) -> Iterable[pa.RecordBatch]:
    """What finding repeated records, images and ids needs of a raw batch: no record text."""
    parsed = parse_raw(raw, max_bytes=max_bytes)
    valid = parsed.filter(parsed.column("reason").is_null())
    if valid.num_rows:
        yield valid.select(["source", "position", "key", "id", "image"])


def build(pipeline: beam.Pipeline, raw_batches, cfg: Config, output: str, inputs: list[str] | None,
          refresh_secs: float = 0.0, index_batches=None):
    """The rebalancing graph from a PCollection of raw batches; returns the summary PCollection.

    `index_batches`, a second read of the same input, feeds the corpus-wide side inputs (repeated
    records, shared images, repeated ids): deciding waits for them, and a runner holds what waits,
    so what waits is this read's few columns, not the records."""
    parsed = raw_batches | "Parse" >> beam.ParDo(ParseBatch(cfg.max_bytes, cfg.input_bytes)).with_outputs(INVALID, STATS, main="valid")
    valid = parsed.valid
    indexed = valid if index_batches is None else (
        index_batches | "ParseIndex" >> beam.FlatMap(index_columns, cfg.max_bytes))
    extra_stats = []
    if cfg.streaming:
        # A window never sees the whole corpus: byte-identical records in a stream share a key.
        copies = pipeline | "NoCopyCheck" >> beam.Create([])
        shared_images = pipeline | "NoSharedImages" >> beam.Create([])
    else:
        copies = find_repeated(indexed, "key", cfg.buckets, with_positions=True)
        shared_images = find_repeated(indexed, "image", cfg.buckets)
        extra_stats.append(find_repeated(indexed, "id", cfg.buckets)
                           | "CountRepeatedIds" >> beam.Map(lambda vn: RebalanceStats(repeated_ids=vn[1] - 1)))
    side = {}
    if refresh_secs:
        # A window with no tick yet (or after the last) uses the dictionary the worker loaded at setup.
        reloads = (pipeline
                   | "Tick" >> PeriodicImpulse(fire_interval=refresh_secs, apply_windowing=True,
                                               **({"stop_timestamp": cfg.stop_at} if cfg.stop_at else {}))
                   | "LoadDictionary" >> beam.Map(lambda _: load_probabilities(cfg.stats_dir, cfg.perspectives)))
        side["probs"] = beam.pvalue.AsSingleton(reloads, default_value=None)
    decided = valid | "Decide" >> beam.ParDo(
        Decide(cfg), copies=beam.pvalue.AsDict(copies), **side).with_outputs(
        INVALID, DROPPED, SEEDS, STATS, main="kept")

    def write(pcoll, name):
        extra = {"triggering_frequency": 1} if cfg.streaming else {}
        return pcoll | f"Write{name.title()}" >> beam.io.WriteToText(
            join(output, name, "part"), file_name_suffix=".jsonl", **extra)

    if cfg.streaming:
        write(decided.kept | "KeptText" >> beam.Values(), "kept")
    else:
        decided.kept | "WriteKept" >> beam.ParDo(WriteKeptBatch(join(output, "kept")))
    write(decided[DROPPED], "dropped")
    write((parsed[INVALID], decided[INVALID]) | "AllInvalid" >> beam.Flatten(), "invalid")
    write(decided[SEEDS] | "Seeds" >> beam.FlatMap(seed_lines, shared_images=beam.pvalue.AsDict(shared_images)),
          "seeds")
    stats = (parsed[STATS], decided[STATS], *extra_stats) | "AllStats" >> beam.Flatten()
    combine = beam.CombineGlobally(lambda parts: sum(parts, RebalanceStats()))
    if cfg.streaming:
        combine = combine.without_defaults()
    return (stats | "Total" >> combine
            | "Summary" >> beam.ParDo(WriteSummary(cfg, output, inputs)))


def run(argv=None, test_pipeline=None, raw_batches=None):
    """Run the pipeline; returns (Beam result, summary); the summary is None when streaming.

    `test_pipeline` and `raw_batches` (a PTransform producing raw batches, e.g. from a
    TestStream) let tests drive the same graph.
    """
    args, beam_args = parse_args(argv)
    options = PipelineOptions(beam_args)
    options.view_as(SetupOptions).save_main_session = False
    streaming = options.view_as(StandardOptions).streaming
    cfg = Config(args, streaming)
    inputs = expand_inputs(args.input) if args.input and not streaming else None
    cfg.input_bytes = total_bytes(inputs) if inputs else 0
    cfg.sources = {url: i for i, url in enumerate(inputs or [])}
    # Planned once: both reads (records, and the side inputs' columns) take the same splits.
    workers = options.view_as(DirectOptions).direct_num_workers or 2
    cfg.splits = [s.to_dict() for s in plan_splits(inputs, split_bytes_for(cfg.input_bytes, workers))] if inputs else []
    if inputs:
        remove(join(args.output, "kept"))  # files of an earlier run would mix with this run's
    pipeline = test_pipeline or beam.Pipeline(options=options)
    source = pipeline | "Source" >> raw_batches if raw_batches else read_raw_batches(pipeline, args, cfg)
    index = read_raw_batches(pipeline, args, cfg, prefix="Index") if inputs and not raw_batches else None
    build(pipeline, source, cfg, args.output, inputs, args.dictionary_refresh_secs if streaming else 0.0, index)
    with progress.track("rebalance"):
        result = pipeline.run()
        result.wait_until_finish()
    return result, None if streaming else read_summary(result, join(args.output, "summary.json"))


def describe(summary: dict) -> str:
    lines = [f"input {summary['input']}  kept {summary['kept']}  dropped {summary['dropped']}  "
             f"invalid {summary['invalid']}  (expected kept {summary['expected_kept']:.0f})  "
             f"budget {summary['budget']}"]
    if summary["tau_factor"] != 1.0:
        lines.append(f"tau scaled by {summary['tau_factor']:.6f} for target size {summary['target_size']}")
    for p, c in summary["tail_coverage"].items():
        lines.append(f"{p:<14} tail mass {c['tail_mass_pct_before']:5.1f}% -> {c['tail_mass_pct_after']:5.1f}%  "
                     f"tail entities {c['tail_entities_before']} -> {c['tail_entities_after']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO)
    _, summary = run(argv)
    if summary:
        print(describe(summary))
        if summary["input"] and summary["invalid"] == summary["input"]:
            print(f"adr rebalance: error: no valid records in the input ({summary['invalid']} invalid, "
                  f"see {join(parse_args(argv)[0].output, 'invalid')}/)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
