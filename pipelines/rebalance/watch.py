"""Watching a directory for new files: each read once, only once complete, with bounded state.

A file is complete when it has not changed for --settle-secs (its modification time is that
old), or, with --done-marker SUFFIX, when `<file>SUFFIX` exists (then the marker's time counts).
Write files in place and let them settle, or write them anywhere and add the marker last.

The watch remembers the files it read in the last --watch-retention-secs only. On the first
listing every complete file is new; afterwards a file is new if it is not remembered and arrived
(by the time above) within the retention. So the state is the files of one retention period,
not of the job's life: a file that shows up with an older time (copied with its times kept) is
not read; give it a done-marker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Iterable

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from udfs.sources import is_data_file, url_of

log = logging.getLogger("adr.rebalance")


@dataclass(frozen=True)
class Listed:
    path: str
    mtime: float


@dataclass(frozen=True)
class WatchPolicy:
    settle_secs: float
    retention_secs: float
    done_marker: str | None = None


def arrivals(listing: Iterable[Listed], policy: WatchPolicy, now: float) -> dict[str, float]:
    """path -> arrival time of the complete data files of a listing. Data files are those a
    batch run reads from a directory (a data extension, not hidden, not `_`-prefixed): so an
    upstream's temporary `.name.tmp` or `_SUCCESS` is never read."""
    listing = list(listing)
    if policy.done_marker:
        marks = {f.path[: -len(policy.done_marker)]: f.mtime for f in listing if f.path.endswith(policy.done_marker)}
        return {f.path: marks[f.path] for f in listing if f.path in marks and is_data_file(f.path)}
    return {f.path: f.mtime for f in listing if now - f.mtime >= policy.settle_secs and is_data_file(f.path)}


def new_files(listing: Iterable[Listed], seen: dict[str, float] | None, policy: WatchPolicy,
              now: float) -> tuple[list[str], dict[str, float]]:
    """(files to read now, in arrival order; what to remember). `seen` is None before the first
    listing."""
    horizon = now - policy.retention_secs
    complete = arrivals(listing, policy, now)
    first = seen is None
    seen = seen or {}
    new = sorted((t, p) for p, t in complete.items() if p not in seen and (first or t >= horizon))
    remembered = {p: t for p, t in {**seen, **{p: t for t, p in new}}.items() if t >= horizon}
    return [p for _, p in new], remembered


def list_files(pattern: str) -> list[Listed]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(pattern)
    out = []
    for name, info in fs.glob(path, detail=True).items():
        if info.get("type", "file") != "file":
            continue
        mtime = info.get("mtime") or info.get("updated") or info.get("LastModified") or 0
        mtime = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime)
        out.append(Listed(url_of(fs, name), mtime))
    return out


class WatchFiles(beam.DoFn):
    """On each tick, the new complete files. One key holds the state, so one worker lists."""
    SEEN = ReadModifyWriteStateSpec("seen", PickleCoder())

    def __init__(self, pattern: str, policy: WatchPolicy):
        self.pattern, self.policy = pattern, policy
        self.remembered = beam.metrics.Metrics.gauge("adr", "watch_remembered_files")
        self.matched = beam.metrics.Metrics.counter("adr", "watch_files_read")

    def process(self, keyed_tick, seen=beam.DoFn.StateParam(SEEN)):
        new, remembered = new_files(list_files(self.pattern), seen.read(), self.policy, time.time())
        seen.write(remembered)
        self.remembered.set(len(remembered))
        self.matched.inc(len(new))
        now = time.time()
        for path in new:
            log.info("watch: reading %s", path)
            # Stamped when found, not at the tick's nominal time, which lags the clock when
            # ticks queue up: a file's records land in the window of their arrival.
            yield beam.window.TimestampedValue(path, now)


def watch(pipeline: beam.Pipeline, pattern: str, interval: float, policy: WatchPolicy, stop_at: float | None):
    stop = {"stop_timestamp": stop_at} if stop_at else {}
    return (pipeline
            | "WatchTick" >> PeriodicImpulse(fire_interval=interval, **stop)
            | "OneKey" >> beam.Map(lambda t: ("watch", t))
            | "NewFiles" >> beam.ParDo(WatchFiles(pattern, policy)))
