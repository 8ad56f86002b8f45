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
import bisect
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
from pipelines.checks import ArgumentParser, at_least, stats_manifest
from pipelines.outputs import join, read_json, read_summary, remove, write_json
from udfs.rebalance import (EntityIndex, attach_entities, decide_batch, expected_kept_on_grid, load_probabilities,
                            split_entities)
from udfs.records import parse_raw
from udfs.sources import (MAX_ELEMENT_BYTES, RAW_SCHEMA, expand_inputs, fingerprint, input_format, read_raw,
                          total_bytes)
from udfs.splits import plan_splits, read_split, split_bytes_for

log = logging.getLogger("adr.rebalance")
INVALID, DROPPED, SEEDS, STATS, TAIL = "invalid", "dropped", "seeds", "stats", "tail"


def parser() -> argparse.ArgumentParser:
    """The stage's flags; `adr run` offers the same ones."""
    ap = ArgumentParser(prog="adr rebalance", description=__doc__.splitlines()[0])
    ap.add_argument("--input", nargs="+", help="files, globs, directories or URLs (a directory to watch "
                    "with --streaming)")
    ap.add_argument("--pubsub-subscription", help="read raw records from Pub/Sub (streaming)")
    ap.add_argument("--kafka-topic", help="read raw records from Kafka (streaming; a cross-language "
                    "transform: needs Java and Beam's Kafka expansion service)")
    ap.add_argument("--kafka-bootstrap", default=None, help="Kafka bootstrap servers (default localhost:9092)")
    ap.add_argument("--dictionary", required=True, help="the output directory of `adr stats`")
    ap.add_argument("--output", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--perspectives", default=None, help="default: those of the dictionary")
    ap.add_argument("--target-size", type=at_least(int, 0), default=0, help="scale all tau so ~N records are kept")
    ap.add_argument("--nlp", default=None, help="spaCy pipeline for records the stats job did not see")
    ap.add_argument("--extract-entities", action="store_true",
                    help="always extract entities, never reuse STATS_DIR/entities")
    ap.add_argument("--max-record-bytes", type=at_least(int, 1), default=DEFAULT_MAX_RECORD_BYTES)
    ap.add_argument("--drop-exact-duplicates", action="store_true",
                    help="keep only the first of byte-identical records (the copies go to invalid/)")
    ap.add_argument("--buckets", type=at_least(int, 1), default=256,
                    help="hash buckets for finding repeated records and images")
    # Streaming only (None: not given; parse_args refuses them without --streaming, then sets STREAMING_ONLY).
    ap.add_argument("--window-secs", type=at_least(float, 0, strict=True), help="streaming: output window (default 60)")
    ap.add_argument("--watch-interval-secs", type=at_least(float, 0, strict=True),
                    help="streaming: directory poll (default 10)")
    ap.add_argument("--watch-for-secs", type=at_least(float, 0),
                    help="streaming: stop watching after this long and finish (default: watch forever)")
    ap.add_argument("--dictionary-refresh-secs", type=at_least(float, 0),
                    help="streaming: reload the dictionary this often (slowly-changing side input)")
    return ap


STREAMING_ONLY = {"window_secs": 60.0, "watch_interval_secs": 10.0, "watch_for_secs": 0.0,
                  "dictionary_refresh_secs": 0.0}
WATCH_ONLY = ("watch_interval_secs", "watch_for_secs")  # of a watched --input, not of Pub/Sub or Kafka


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    args, beam_args = parser().parse_known_args(argv)
    check_flags(args, PipelineOptions(beam_args).view_as(StandardOptions).streaming)
    for dest, default in STREAMING_ONLY.items():
        if getattr(args, dest) is None:
            setattr(args, dest, default)
    args.kafka_bootstrap = args.kafka_bootstrap or "localhost:9092"
    return args, beam_args


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def check_flags(args: argparse.Namespace, streaming: bool) -> None:
    """Flags that cannot go together, refused before anything is read or started."""
    sources = [_flag(d) for d in ("input", "pubsub_subscription", "kafka_topic") if getattr(args, d)]
    if not sources:
        raise ConfigError("one of --input, --pubsub-subscription or --kafka-topic is required")
    if len(sources) > 1:
        raise ConfigError(f"{' and '.join(sources)}: give one source of records")
    if args.kafka_bootstrap is not None and not args.kafka_topic:
        raise ConfigError("--kafka-bootstrap is for --kafka-topic")
    given = [_flag(d) for d in STREAMING_ONLY if getattr(args, d) is not None]
    if not streaming:
        stream = sources[0] if args.pubsub_subscription or args.kafka_topic else None
        if stream or given:
            raise ConfigError(f"{stream or given[0]} is for a streaming job: add --streaming")
    else:
        if args.input and len(args.input) > 1:
            raise ConfigError(f"--streaming watches one --input directory or glob, got {len(args.input)}: "
                              f"{' '.join(args.input)}")
        if args.input and _is_file(args.input[0]):
            raise ConfigError(f"--streaming watches a directory or a glob for new files, and --input "
                              f"{args.input[0]} is a file: leave out --streaming to read it")
        watch = [_flag(d) for d in WATCH_ONLY if getattr(args, d) is not None]
        if watch and not args.input:
            raise ConfigError(f"{watch[0]} is for a watched --input directory, not {sources[0]}")
        if args.drop_exact_duplicates:
            raise ConfigError("--drop-exact-duplicates needs the whole corpus, and a stream has no end: "
                              "leave out --streaming, or --drop-exact-duplicates")


def _is_file(spec: str) -> bool:
    import fsspec

    if any(c in spec for c in "*?["):
        return False
    try:
        fs, path = fsspec.core.url_to_fs(spec)
        return fs.isfile(path)
    except (OSError, ValueError, ImportError):
        return False  # the read says what is wrong with it


def check_dictionary_input(args: argparse.Namespace, manifest: dict, streaming: bool) -> None:
    """The dictionary's entities/ (reused unless --extract-entities) and --target-size's estimate
    are those of the input `adr stats` read: another input is refused, not misread."""
    counted = (manifest.get("input") or {}).get("fingerprint")
    if counted and args.input and not streaming and (args.target_size or not args.extract_entities):
        given = fingerprint(expand_inputs(args.input))
        if given != counted and not args.extract_entities:
            raise ConfigError(f"--dictionary {args.dictionary} counted other input (fingerprint {counted}) than "
                              f"--input (fingerprint {given}): pass --extract-entities to extract entities afresh")
        if given != counted:
            raise ConfigError(f"--target-size is estimated over the input --dictionary {args.dictionary} counted "
                              f"(fingerprint {counted}), not --input (fingerprint {given}): leave it out, or run "
                              "`adr stats` on this input")
    if args.target_size > manifest.get("records", args.target_size):
        raise ConfigError(f"--target-size {args.target_size} is more than can be kept: --dictionary "
                          f"{args.dictionary} counted {manifest['records']} records")


class Config:
    """Everything the workers need, resolved once at launch (and pickled to them)."""

    def __init__(self, args: argparse.Namespace, streaming: bool):
        manifest = stats_manifest(args.dictionary)
        check_dictionary_input(args, manifest, streaming)
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
        self.window_secs = args.window_secs
        self.buckets = args.buckets
        self.drop_exact_duplicates = args.drop_exact_duplicates
        self.sources: dict[str, int] = {}  # input file -> its index, for kept/ file names
        self.splits: list[dict] = []        # set by run() for a bounded input
        # A bounded watch (--watch-for-secs) also ends the dictionary refresh, so the job finishes.
        self.stop_at = time.time() + args.watch_for_secs if streaming and args.watch_for_secs else None
        self.factor = 1.0  # set by run() for --target-size
        self.target_size = args.target_size
        self.input_bytes = 0  # set by run() for a bounded input; read progress is a share of it
        # The splits `adr stats` read: entities/split=N/ holds the entities of splits[N]'s records.
        self.stats_splits: list[dict] = manifest.get("splits") or []
        self.split_starts: dict[str, list[tuple[int, int]]] = {}

    def use_splits(self, splits: list[dict]) -> None:
        """Read the input by these splits; a record's split is found from its (source, position)."""
        self.splits = splits
        self.split_starts = {}
        for s in splits:
            self.split_starts.setdefault(s["url"], []).append((s["first"], s["index"]))
        for starts in self.split_starts.values():
            starts.sort()

    def split_of(self, source: str, position: int) -> int | None:
        starts = self.split_starts.get(source)
        if not starts:
            return None
        i = bisect.bisect_right(starts, (position, float("inf"))) - 1
        return starts[max(i, 0)][1]


class _Worker:
    """What a worker process loads once, shared by all its DoFn instances: the dictionary (its
    size follows the distinct entities, not the records)."""

    def __init__(self, cfg: Config):
        self.probs = load_probabilities(cfg.stats_dir, cfg.perspectives)


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
        self.extracted = beam.metrics.Metrics.counter("adr", "entities_extracted")  # not found in the statistics

    def setup(self):
        self.worker = _SHARED.acquire(lambda: _Worker(self.cfg), tag=("rebalance", id(self.cfg), self.cfg.stats_dir))
        self._index: tuple[int | None, EntityIndex | None] = (None, None)

    def index_for(self, batch: pa.RecordBatch) -> EntityIndex | None:
        """The statistics' entities of the split this batch was read from (a batch never spans
        two splits; the batches of a split come one after another, so one split is held)."""
        if not self.cfg.reuse_entities:
            return None
        split = self.cfg.split_of(batch.column("source")[0].as_py(), batch.column("position")[0].as_py())
        if split is None:
            return None
        if self._index[0] != split:
            self._index = (split, EntityIndex(split_entities(self.cfg.stats_dir, split, self.cfg.perspectives)))
        return self._index[1]

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
        index = self.index_for(batch)
        self.extracted.inc(batch.num_rows if index is None else
                           sum(key not in index.row for key in batch.column("key").to_pylist()))
        entities = attach_entities(batch, cfg.perspectives, index, cfg.nlp)
        decisions = decide_batch(entities, probs, cfg.seed, cfg.factor)
        kept_lines, dropped_lines, seeds = [], [], []
        tail_before = {p: [0, 0] for p in cfg.perspectives}
        tail_after = {p: [0, 0] for p in cfg.perspectives}
        tail_seen: set = set()  # (perspective, entity, 0: in the input / 1: in the kept records)
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
                tail_seen.update((p, e, 0) for e in tail)
            if d.keep:
                kept_lines.append(record)
                if d.tail:
                    seeds.append((key, rid, image, d.tail, record))
                    for p, tail in d.tail.items():
                        tail_after[p][0] += len(tail)
                        tail_seen.update((p, e, 1) for e in tail)
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
        if tail_seen:
            yield beam.pvalue.TaggedOutput(TAIL, sorted(tail_seen))
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


def _add_pairs(pairs) -> tuple[int, int]:
    before = after = 0
    for b, a in pairs:
        before, after = before + b, after + a
    return before, after


def distinct_tail(tail_seen):
    """Distinct tail entities per perspective, before and after, counted by the engine: the
    statistics that merge carry two numbers, not the set of every tail entity."""
    return (tail_seen
            | "TailEntities" >> beam.FlatMap(lambda seen: seen)
            | "DistinctTail" >> beam.Distinct()
            | "TailKey" >> beam.Map(lambda pew: (pew[0], (1 - pew[2], pew[2])))
            | "CountTail" >> beam.CombinePerKey(_add_pairs)
            | "TailStats" >> beam.Map(lambda kv: RebalanceStats(tail_entities={kv[0]: kv[1]})))


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
        INVALID, DROPPED, SEEDS, STATS, TAIL, main="kept")

    def write(pcoll, name):
        # Files per window per shard, as --window-secs says, not a flood of one-second files.
        extra = {"triggering_frequency": max(1, int(cfg.window_secs))} if cfg.streaming else {}
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
    stats = (parsed[STATS], decided[STATS], distinct_tail(decided[TAIL]), *extra_stats) | "AllStats" >> beam.Flatten()
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
    # Planned once: both reads (records, and the side inputs' columns) take the same splits,
    # the statistics' own when their entities are reused, so each batch's entities are one
    # split's file away.
    if inputs and cfg.reuse_entities and cfg.stats_splits:
        cfg.use_splits(cfg.stats_splits)
    elif inputs:
        cfg.reuse_entities = False  # statistics from before entities/ was split: extract afresh
        workers = options.view_as(DirectOptions).direct_num_workers or 2
        planned = plan_splits(inputs, split_bytes_for(cfg.input_bytes, workers))
        cfg.use_splits([s.to_dict() for s in planned])
    if args.target_size:
        scratch = join(args.output, "_target_size")
        cfg.factor = factor_for_target(lambda factors: expected_kept_sums(cfg, options, factors, scratch),
                                       args.target_size)
        remove(scratch)
        log.info("target size %d: tau scaled by %.6f", args.target_size, cfg.factor)
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


class _ExpectedOnGrid(beam.DoFn):
    def __init__(self, cfg: Config, factors: list[float]):
        self.cfg, self.factors = cfg, factors

    def setup(self):
        self.worker = _SHARED.acquire(lambda: _Worker(self.cfg), tag=("rebalance", id(self.cfg), self.cfg.stats_dir))

    def process(self, split: int):
        entities = split_entities(self.cfg.stats_dir, split, self.cfg.perspectives)
        yield expected_kept_on_grid(entities, self.worker.probs, self.factors)


def expected_kept_sums(cfg: Config, options: PipelineOptions, factors: list[float], scratch: str) -> list[float]:
    """The expected kept count of the statistics' corpus at each factor: a sum over its splits'
    entities, computed by the engine a split at a time (--target-size). The sums come back
    through a file under `scratch`, wherever the workers run."""
    import numpy as np

    if not cfg.stats_splits:
        raise ConfigError(f"--target-size needs statistics written by this version of `adr stats` "
                          f"(entities/ by split); run it again on {cfg.stats_dir}")
    path = join(scratch, f"expected-{uuid.uuid4().hex}.json")
    with beam.Pipeline(options=options) as p:
        (p | "Splits" >> beam.Create([s["index"] for s in cfg.stats_splits])
         | "Spread" >> beam.Reshuffle()
         | "Expected" >> beam.ParDo(_ExpectedOnGrid(cfg, list(factors)))
         | "Sum" >> beam.CombineGlobally(lambda parts: np.sum([np.zeros(len(factors)), *parts], axis=0))
         | "Write" >> beam.Map(lambda total: write_json(path, [float(v) for v in total])))
    sums = read_json(path)
    remove(path)
    return sums


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
