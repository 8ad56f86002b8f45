"""ADR rebalancing on Apache Beam: keep every tail record, drop part of the head-only ones.

    adr rebalance --input ... --dictionary STATS_DIR --output DIR [--seed 42] [--target-size N]
                  [Beam options: --runner, --direct_num_workers, --streaming, ...]

Outputs under DIR: kept/ (LLaVA JSON Lines, records unchanged; in batch mode one file per input
batch, named by its input position, so the file names sort into input order), dropped/, invalid/,
seeds/ (the synthesis seed pool), entity_counts/ (the kept records' entities) and summary.json.
Work is done a batch of records at a time (decide.py); the dictionary loads once per worker
process, the statistics' per-record entities and repeats (copies, shared images) one split at a
time; for input the statistics did not read, repeats are found by the engine and joined to the
splits (repeats.py, reads.py). Records are identified by
their key (adr.records), never by `id`: repeated ids are counted, not rejected.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, SetupOptions, StandardOptions

from adr.entities.registry import resolve
from adr.errors import ConfigError
from adr.rebalance_stats import RebalanceStats
from adr.records import DEFAULT_MAX_RECORD_BYTES
from adr.sampling import factor_for_target
from pipelines import progress
from pipelines.checks import at_least, stats_manifest
from pipelines.outputs import clear_outputs, join, read_json, read_summary, remove, write_json
from pipelines.rebalance.decide import DROPPED, INVALID, SEEDS, loaded
from pipelines.rebalance.graph import Config, Rebalance
from pipelines.rebalance.local_watch import is_local, run_local_watch
from pipelines.rebalance.reads import Found, ledger_url, read_index, read_splits, read_stream
from pipelines.rebalance.repeats import split_notes
from pipelines.rebalance.summary import describe
from pipelines.stage import Engine, Options, Stage, StageParser, frozen
from udfs.artifacts import has_repeats, read_entities
from udfs.rebalance import expected_kept_on_grid
from udfs.sources import expand_inputs, fingerprint, total_bytes
from udfs.splits import plan_splits, split_bytes_for

log = logging.getLogger("adr.rebalance")


def parser() -> StageParser:
    ap = StageParser(prog="adr rebalance", description=__doc__.splitlines()[0])
    ap.add_argument("--input", nargs="+", help="files, globs, directories or URLs (a directory to watch "
                    "with --streaming)")
    ap.add_argument("--pubsub-subscription", help="read raw records from Pub/Sub (streaming)")
    ap.add_argument("--kafka-topic", help="read raw records from Kafka (streaming; a cross-language "
                    "transform: needs Java and Beam's Kafka expansion service)")
    ap.add_argument("--kafka-bootstrap", default=None, help="Kafka bootstrap servers (default localhost:9092)")
    ap.add_argument("--kafka-group", default=None,
                    help="Kafka consumer group whose committed offsets a restart resumes from (default adr-rebalance)")
    ap.add_argument("--pubsub-id-label", default=None,
                    help="Pub/Sub attribute holding a publisher's unique message id: Dataflow drops repeats by it")
    ap.add_argument("--dictionary", required=True, help="the output directory of `adr stats`")
    ap.add_argument("--output", required=True)
    ap.option("--seed", type=int, default=42)
    ap.option("--perspectives", default=None, help="default: those of the dictionary")
    ap.option("--target-size", type=at_least(int, 0), default=0, help="scale all tau so ~N records are kept")
    ap.option("--nlp", default=None, help="spaCy pipeline for records the stats job did not see")
    ap.option("--extract-entities", action="store_true",
                    help="always extract entities, never reuse STATS_DIR/entities")
    ap.option("--max-record-bytes", type=at_least(int, 1), default=DEFAULT_MAX_RECORD_BYTES)
    ap.option("--drop-exact-duplicates", action="store_true",
                    help="keep only the first of byte-identical records (the copies go to invalid/)")
    ap.option("--buckets", type=at_least(int, 1), default=256,
                    help="hash buckets for finding repeated records and images")
    # Streaming only (None: not given; parse_args refuses them without --streaming, then sets STREAMING_ONLY).
    ap.add_argument("--window-secs", type=at_least(float, 0, strict=True), help="streaming: output window (default 60)")
    ap.add_argument("--allowed-lateness-secs", type=at_least(float, 0),
                    help="streaming from Pub/Sub or Kafka: a message more than a window plus this behind the clock "
                         "goes to invalid/ as `late` (default 0)")
    ap.add_argument("--watch-interval-secs", type=at_least(float, 0, strict=True),
                    help="streaming: directory poll (default 10)")
    ap.add_argument("--watch-for-secs", type=at_least(float, 0),
                    help="streaming: stop watching after this long and finish (default: watch forever)")
    ap.add_argument("--settle-secs", type=at_least(float, 0),
                    help="streaming: a watched file is read once unchanged this long (default 10)")
    ap.add_argument("--done-marker", help="streaming: read a watched file only once FILE+SUFFIX exists, e.g. .done")
    ap.add_argument("--watch-retention-secs", type=at_least(float, 0, strict=True),
                    help="streaming: how long the watch remembers a file it read (default 86400)")
    ap.add_argument("--watch-ledger", help="streaming: where the watch records the files it decided, so a restart "
                                           "resumes (default: OUTPUT/_watch)")
    ap.add_argument("--dictionary-refresh-secs", type=at_least(float, 0),
                    help="streaming: read the dictionary again this often (each worker, when it next decides)")
    return ap


STREAMING_ONLY = {"window_secs": 60.0, "allowed_lateness_secs": 0.0, "watch_interval_secs": 10.0,
                  "watch_for_secs": 0.0, "settle_secs": 10.0, "done_marker": None, "watch_retention_secs": 86400.0,
                  "watch_ledger": None, "dictionary_refresh_secs": 0.0}
WATCH_ONLY = ("watch_interval_secs", "watch_for_secs", "settle_secs", "done_marker", "watch_retention_secs",
              "watch_ledger")
MESSAGES_ONLY = ("allowed_lateness_secs",)  # files are stamped when read: they are never late
# What a batch run writes under --output; all of it goes before a run writes anew.
OUTPUTS = ("summary.json", "kept", "entity_counts", SEEDS, DROPPED, INVALID, "summary")


def configure(argv: list[str]) -> tuple[Options, list[str]]:
    args, beam_args = parser().parse_known_args(argv)
    streaming = PipelineOptions(beam_args).view_as(StandardOptions).streaming
    check_flags(args, streaming)
    unset = {dest: default for dest, default in STREAMING_ONLY.items() if getattr(args, dest) is None}
    return frozen(args, **unset, streaming=streaming, kafka_bootstrap=args.kafka_bootstrap or "localhost:9092",
                  kafka_group=args.kafka_group or "adr-rebalance"), beam_args


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def check_flags(args: Options, streaming: bool) -> None:
    """Flags that cannot go together, refused before anything is read or started."""
    sources = [_flag(d) for d in ("input", "pubsub_subscription", "kafka_topic") if getattr(args, d)]
    if not sources:
        raise ConfigError("one of --input, --pubsub-subscription or --kafka-topic is required")
    if len(sources) > 1:
        raise ConfigError(f"{' and '.join(sources)}: give one source of records")
    for flag, value, needs in (("--kafka-bootstrap", args.kafka_bootstrap, args.kafka_topic),
                               ("--kafka-group", args.kafka_group, args.kafka_topic),
                               ("--pubsub-id-label", args.pubsub_id_label, args.pubsub_subscription)):
        if value is not None and not needs:
            source = "kafka-topic" if flag.startswith("--kafka") else "pubsub-subscription"
            raise ConfigError(f"{flag} is for --{source}")
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
        messages = [_flag(d) for d in MESSAGES_ONLY if getattr(args, d) is not None]
        if messages and args.input:
            raise ConfigError(f"{messages[0]} is for Pub/Sub or Kafka messages: a watched file's records are "
                              "stamped when it is read, so they are never late")
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


def check_dictionary_input(args: Options, manifest: dict, streaming: bool) -> None:
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


def plan(args: Options, options: PipelineOptions) -> Config:
    """The launch's config: the dictionary's manifest read, the input split, --target-size solved."""
    manifest = stats_manifest(args.dictionary)
    check_dictionary_input(args, manifest, args.streaming)
    perspectives = resolve(args.perspectives or manifest["parameters"]["perspectives"])
    unknown = set(perspectives) - set(manifest["parameters"]["perspectives"])
    if unknown:
        raise ConfigError(f"the dictionary in {args.dictionary} has no {', '.join(sorted(unknown))} entities")
    cfg = Config(
        stats_dir=args.dictionary, perspectives=perspectives,
        taus={p: manifest["perspectives"][p]["tau"] for p in perspectives}, seed=args.seed,
        nlp=args.nlp or (manifest["parameters"]["nlp"] if manifest["parameters"]["nlp"] != "default" else None),
        max_bytes=args.max_record_bytes, reuse_entities=not args.extract_entities and not args.streaming,
        streaming=args.streaming, window_secs=args.window_secs,
        refresh_secs=args.dictionary_refresh_secs if args.streaming else 0.0, buckets=args.buckets,
        drop_exact_duplicates=args.drop_exact_duplicates, repeated_ids=manifest.get("repeated_ids", 0),
        stats_splits=manifest.get("splits") or [], target_size=args.target_size,
        stop_at=time.time() + args.watch_for_secs if args.streaming and args.watch_for_secs else None)
    inputs = bounded_inputs(args)
    if inputs:
        cfg = replace(cfg, input_bytes=total_bytes(inputs), sources={url: i for i, url in enumerate(inputs)})
    # The statistics' own splits when their entities are reused, so each batch's entities are
    # one split's file away; their repeats too, when records were parsed the same way.
    if inputs and cfg.reuse_entities and cfg.stats_splits:
        parsed_alike = manifest["parameters"].get("max_record_bytes") == args.max_record_bytes
        cfg = replace(cfg, splits=cfg.stats_splits, stats_repeats=parsed_alike and has_repeats(cfg.stats_dir))
    elif inputs:
        workers = options.view_as(DirectOptions).direct_num_workers or 2
        # reuse off: statistics from before entities/ was split are extracted afresh
        cfg = replace(cfg, reuse_entities=False,
                      splits=[s.to_dict() for s in plan_splits(inputs, split_bytes_for(cfg.input_bytes, workers))])
    if args.target_size:
        scratch = join(args.output, "_target_size")
        factor = factor_for_target(lambda factors: expected_kept_sums(cfg, options, factors, scratch),
                                   args.target_size)
        remove(scratch)
        log.info("target size %d: tau scaled by %.6f", args.target_size, factor)
        cfg = replace(cfg, factor=factor)
    return cfg


def bounded_inputs(args: Options) -> list[str] | None:
    return expand_inputs(args.input) if args.input and not args.streaming else None


def read_records(pipeline: beam.Pipeline, cfg: Config, args: Options) -> tuple:
    """The one choice of source: (SplitBatches, what the read found), for a bounded input (the
    statistics' splits with their repeats, or splits whose repeats the engine finds), a watched
    directory, Pub/Sub or Kafka."""
    if not cfg.streaming and cfg.stats_repeats:
        # The statistics read this input and found its repeats: each split is read once, with
        # its own records' repeats, and nothing per record is shuffled.
        batches = read_splits(pipeline, cfg.splits, cfg.max_bytes, stats_dir=cfg.stats_dir)
        repeated_ids = pipeline | "RepeatedIds" >> beam.Create([RebalanceStats(repeated_ids=cfg.repeated_ids)])
        return batches, Found(stats=(repeated_ids,))
    if not cfg.streaming:
        # Other input: repeats are found from a first read of a few columns, then each split
        # is read again with the notes of its own records (a keyed join by split).
        notes, repeated_ids = split_notes(read_index(pipeline, cfg.splits, cfg.max_bytes), cfg.buckets)
        return read_splits(pipeline, cfg.splits, cfg.max_bytes, notes=notes), Found(stats=(repeated_ids,))
    return read_stream(pipeline, args, cfg.stop_at)


def graph(pipeline: beam.Pipeline, cfg: Config, args: Options):
    """The whole job's graph on `pipeline`: its source and the rebalancing; returns the summary."""
    batches, found = read_records(pipeline, cfg, args)
    inputs = bounded_inputs(args)
    return batches | "Rebalance" >> Rebalance(cfg, args.output, inputs, found, ledger_url(args))


def run(args: Options, engine: Engine = Engine()) -> dict | None:
    """Run the pipeline; returns the summary (None when streaming)."""
    return launch(args, engine)[1]


def launch(args: Options, engine: Engine = Engine()) -> tuple:
    """Run the pipeline: (Beam's result, for its metrics; the summary, None when streaming)."""
    logging.getLogger("adr").setLevel(logging.INFO)  # a watch runs for hours: what it reads and decides is logged
    options = PipelineOptions(list(engine.beam_args))
    options.view_as(SetupOptions).save_main_session = False
    cfg = plan(args, options)
    if not args.streaming:
        clear_outputs(args.output, OUTPUTS)
    if args.streaming and args.input and is_local(list(engine.beam_args)):
        run_local_watch(args, list(engine.beam_args), cfg)  # bounded runs: the local runner holds a stream in memory
        return None, None
    pipeline = beam.Pipeline(options=options)
    graph(pipeline, cfg, args)
    return run_pipeline(pipeline, None if args.streaming else join(args.output, "summary.json"))


def run_pipeline(pipeline: beam.Pipeline, summary_url: str | None) -> tuple:
    """Run a rebalancing pipeline to its end, its progress shown: (Beam's result, the summary when bounded)."""
    with progress.track("rebalance") as shown:
        result = pipeline.run()
        with progress.following(result, ("kept", "dropped"), shown):
            result.wait_until_finish()
    return result, read_summary(result, summary_url) if summary_url else None


class _ExpectedOnGrid(beam.DoFn):
    def __init__(self, cfg: Config, factors: list[float]):
        self.cfg, self.factors = cfg, factors

    def setup(self):
        self.dictionary = loaded(self.cfg).dictionary

    def process(self, split: int):
        entities = read_entities(self.cfg.stats_dir, self.cfg.perspectives, split)
        yield expected_kept_on_grid(entities, self.dictionary.probs, self.factors)


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


def failure(summary: dict | None, args: Options) -> str | None:
    if summary and summary["input"] and summary["invalid"] == summary["input"]:
        return f"no valid records in the input ({summary['invalid']} invalid, see {join(args.output, 'invalid')}/)"
    return None


def describe_run(summary: dict | None, args: Options) -> str:
    return describe(summary) if summary else f"rebalance: streaming into {args.output} ended"


def wiring(records: list[str], run_dir: str) -> list[str]:
    return ["--input", *records, "--dictionary", join(run_dir, "stats"), "--output", join(run_dir, "rebalance")]


STAGE = Stage("rebalance", "keep tail records, drop part of the head-only ones (Apache Beam)", parser, configure,
              run, describe_run, wiring, beam=True, failure=failure)
