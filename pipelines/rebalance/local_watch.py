"""`adr rebalance --streaming --input DIR` on the local runner: a bounded run per set of new files.

Beam's local runners keep an unbounded pipeline's state and output in memory until it ends (a
watched folder emitted nothing while it ran and grew by 14 MiB/s: benchmarks/soak.py). So on
this machine the watch lists the folder itself and decides each set of new complete files by a
bounded run of the same graph (build(), windowed by arrival, the same sinks and summaries),
whose memory is given back when it ends. Each set is committed to the ledger once its files are
in the output: a restart resumes where the last commit left off. Dataflow and Flink run the
streaming pipeline (reads.read_stream) instead, with the same ledger.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import replace

import apache_beam as beam
import fsspec
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.transforms import window

from adr.rebalance_stats import RebalanceStats
from pipelines.outputs import join, remove
from pipelines.rebalance.decide import loaded
from pipelines.rebalance.graph import Config, Rebalance
from pipelines.rebalance.ledger import CHANGED, Ledger, Seen
from pipelines.rebalance.reads import Found, SplitBatch
from pipelines.rebalance.watch import WatchPolicy, arrivals, list_files, read_watched, watch_pattern

log = logging.getLogger("adr.rebalance")
LOCAL_RUNNERS = (None, "DirectRunner", "direct", "directrunner", "BundleBasedDirectRunner", "FnApiRunner")
PUBLISHED = ("kept", "dropped", "invalid", "seeds", "summary")


def is_local(beam_args: list[str]) -> bool:
    return PipelineOptions(beam_args).view_as(StandardOptions).runner in LOCAL_RUNNERS


def batch_name(files: list[Seen]) -> str:
    """A set of files' name: the same files (same versions) always make the same batch."""
    text = json.dumps([[f.path, f.mtime, f.size] for f in files])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def changed_letter(seen: Seen, before: Seen) -> str:
    had = f"{before.size} bytes, modified {before.mtime:.3f}" if before.size else f"modified {before.mtime:.3f}"
    return json.dumps({"source": seen.path, "position": None, "reason": CHANGED,
                       "detail": f"{CHANGED}: its records were decided when it had {had}; now {seen.size} bytes, "
                                 f"modified {seen.mtime:.3f}. Not read again: give new records a new file"},
                      ensure_ascii=False)


def run_local_watch(args, beam_args: list[str], cfg: Config) -> None:
    """Watch until --watch-for-secs (forever without it), a bounded run per set of new files."""
    ledger = Ledger(args.watch_ledger or join(args.output, "_watch"))
    policy = WatchPolicy(args.settle_secs, args.watch_retention_secs, args.done_marker)
    pattern = watch_pattern(args.input[0])
    committed = ledger.committed()
    # The launch's dictionary, held here so that every bounded run in this process decides with
    # it (decide.loaded is Beam's Shared) unless --dictionary-refresh-secs reads it again.
    launch = loaded(cfg)
    used = {"versions": [launch.dictionary.version]}
    for name, (files, changed, arrived) in ledger.pending().items():
        log.info("watch: batch %s was cut short: deciding its %d files again", name, len(files))
        decide(name, files, changed, committed, arrived, args, beam_args, cfg, ledger, used)
    while True:
        started = time.time()
        listing = {f.path: f for f in list_files(pattern)}
        complete = arrivals(listing.values(), policy, started)
        new, changed = [], []
        for path in sorted(complete, key=lambda p: (complete[p], p)):
            seen = Seen(path, listing[path].mtime, listing[path].size)
            before = committed.get(path)
            if before is None:
                new.append(seen)
            elif not before.same_as(seen):
                changed.append(seen)
        if new or changed:
            name = batch_name(new + changed)
            ledger.intend(name, new, changed, started)
            decide(name, new, changed, committed, started, args, beam_args, cfg, ledger, used)
        if cfg.stop_at and time.time() >= cfg.stop_at:
            return
        time.sleep(max(0.0, min(args.watch_interval_secs - (time.time() - started),
                                (cfg.stop_at - time.time()) if cfg.stop_at else args.watch_interval_secs)))


def decide(name: str, files: list[Seen], changed: list[Seen], committed: dict, arrived: float, args,
           beam_args: list[str], cfg: Config, ledger: Ledger, used: dict) -> None:
    """One bounded run over `files` into a staging folder, its files moved into the output, then
    the commit."""
    for f in files:
        log.info("watch: reading %s", f.path)
    staging = join(ledger.url, "staging", name)
    remove(staging)
    options = PipelineOptions(beam_args)
    options.view_as(StandardOptions).streaming = False
    fixed = window.FixedWindows(args.window_secs)

    def stamped(label, values):
        return (values | f"Stamp{label}" >> beam.Map(lambda v: window.TimestampedValue(v, arrived))
                | f"Window{label}" >> beam.WindowInto(fixed))

    cfg = replace(cfg, job=f"b{name}")  # its files are named by the batch: decided again, they are written over
    with beam.Pipeline(options=options) as p:
        batches = (stamped("Files", p | "Files" >> beam.Create([f.path for f in files]))
                   | "ReadFile" >> beam.FlatMap(read_watched)
                   | "AsSplitBatch" >> beam.Map(SplitBatch))
        letters = [changed_letter(f, committed[f.path]) for f in changed]
        extra_invalid = (stamped("Changed", p | "Changed" >> beam.Create(letters)),)
        extra_stats = (stamped("ChangedStats", p | "ChangedStats" >> beam.Create(
            [RebalanceStats(input=len(letters), invalid=Counter({CHANGED: len(letters)}))] if letters else [])),)
        batches | "Rebalance" >> Rebalance(cfg, staging, found=Found(stats=extra_stats, invalid=extra_invalid))
    for version in dictionary_versions(staging):
        if version != used["versions"][-1]:
            log.info("dictionary: now %s", version)
            used["versions"].append(version)
    publish(staging, args.output, name)
    remove(staging)
    ledger.commit(name, files + changed)
    committed.update({f.path: f for f in files + changed})


def dictionary_versions(staging: str) -> list[str]:
    """The dictionary versions a batch's summaries say its decisions used."""
    fs, root = fsspec.core.url_to_fs(join(staging, "summary"))
    versions = []
    for path in sorted(fs.glob(f"{root}/*.json")):
        with fs.open(path, "r") as f:
            for d in json.load(f)["dictionaries"]:
                versions.append(json.dumps({k: d[k] for k in ("factor", "fingerprint", "tau")}, sort_keys=True))
    return versions


def publish(staging: str, output: str, name: str) -> None:
    """Move a batch's files into the output. Their names hold the batch (cfg.job), so a batch
    decided again writes over its own files and no other's."""
    fs, root = fsspec.core.url_to_fs(staging)
    _, out = fsspec.core.url_to_fs(output)
    for folder in PUBLISHED:
        if not fs.exists(f"{root}/{folder}"):
            continue
        for path in fs.ls(f"{root}/{folder}", detail=False):
            base = path.rsplit("/", 1)[-1]
            if base.startswith(("_", ".")) or not fs.isfile(path):
                continue
            fs.makedirs(f"{out}/{folder}", exist_ok=True)
            fs.mv(path, f"{out}/{folder}/{base}")
