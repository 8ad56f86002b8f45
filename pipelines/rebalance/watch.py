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
from collections.abc import Iterable
from dataclasses import dataclass

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
    size: int = 0


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
        out.append(Listed(url_of(fs, name), mtime, int(info.get("size") or 0)))
    return out


def watch_pattern(spec: str) -> str:
    """The glob a watched --input stands for: a directory's files, or the glob given."""
    return spec.rstrip("/") + "/*" if not any(c in spec for c in "*?[") else spec


def read_watched(url: str):
    """A watched file's raw batches; one that went away before it was read is a dead letter."""
    from adr.errors import InputError
    from udfs.sources import raw_batch, read_raw

    try:
        yield from read_raw(url)
    except InputError as err:
        yield raw_batch(url, [0], [b""], [str(err)])


class WatchFiles(beam.DoFn):
    """On each tick, the new complete files (main output) and what was read of each (WATCHED, for
    the ledger's commit). One key holds the state, so one worker lists. The first listing of a
    job skips what the ledger says is decided, and dead-letters (CHANGED) a file changed since."""
    SEEN = ReadModifyWriteStateSpec("seen", PickleCoder())

    def __init__(self, pattern: str, policy: WatchPolicy, ledger_url: str | None = None):
        self.pattern, self.policy, self.ledger_url = pattern, policy, ledger_url
        self.remembered = beam.metrics.Metrics.gauge("adr", "watch_remembered_files")
        self.matched = beam.metrics.Metrics.counter("adr", "watch_files_read")

    def process(self, keyed_tick, seen=beam.DoFn.StateParam(SEEN)):
        from pipelines.rebalance.ledger import Ledger, Seen
        from pipelines.rebalance.local_watch import changed_letter

        now = time.time()
        listing = list_files(self.pattern)
        state, decided, changed = seen.read(), {}, []
        if state is None and self.ledger_url:  # a new job: what an earlier one committed is done
            committed = Ledger(self.ledger_url).committed()
            complete = arrivals(listing, self.policy, now)
            for f in listing:
                before = committed.get(f.path)
                if before is not None and f.path in complete:
                    decided[f.path] = complete[f.path]
                    now_seen = Seen(f.path, f.mtime, f.size)
                    if not before.same_as(now_seen):
                        changed.append((changed_letter(now_seen, before), now_seen))
            listing = [f for f in listing if f.path not in decided]
        new, remembered = new_files(listing, state, self.policy, now)
        remembered.update({p: t for p, t in decided.items() if t >= now - self.policy.retention_secs})
        grown = {f.path: f for f in listing if state and f.path in state and f.path in remembered
                 and arrivals([f], self.policy, now).get(f.path, state[f.path]) != state[f.path]}
        for path, f in grown.items():  # read already, and changed since: refused, not read in part
            was = Seen(path, state[path], 0)
            changed.append((changed_letter(Seen(path, f.mtime, f.size), was), Seen(path, f.mtime, f.size)))
            remembered[path] = f.mtime
        seen.write(remembered)
        self.remembered.set(len(remembered))
        self.matched.inc(len(new))
        by_path = {f.path: f for f in listing}
        for letter, now_seen in changed:  # committed as refused, so no later job refuses it again
            yield beam.pvalue.TaggedOutput(CHANGED_LETTERS, beam.window.TimestampedValue(letter, now))
            yield beam.pvalue.TaggedOutput(WATCHED, beam.window.TimestampedValue(now_seen, now))
        for path in new:
            log.info("watch: reading %s", path)
            # Stamped when found, not at the tick's nominal time, which lags the clock when
            # ticks queue up: a file's records land in the window of their arrival.
            yield beam.window.TimestampedValue(path, now)
            f = by_path[path]
            yield beam.pvalue.TaggedOutput(WATCHED, beam.window.TimestampedValue(Seen(path, f.mtime, f.size), now))


WATCHED, CHANGED_LETTERS = "watched", "changed"


def watch(pipeline: beam.Pipeline, pattern: str, interval: float, policy: WatchPolicy, stop_at: float | None,
          ledger_url: str | None = None):
    """(paths of new files, what was read of them, changed-file dead letters)."""
    stop = {"stop_timestamp": stop_at} if stop_at else {}
    found = (pipeline
             | "WatchTick" >> PeriodicImpulse(fire_interval=interval, **stop)
             | "OneKey" >> beam.Map(lambda t: ("watch", t))
             | "NewFiles" >> beam.ParDo(WatchFiles(pattern, policy, ledger_url)).with_outputs(
                 WATCHED, CHANGED_LETTERS, main="paths"))
    return found.paths, found[WATCHED], found[CHANGED_LETTERS]


class CommitWatched(beam.DoFn):
    """Per window, once every sink has written its files (their URLs are this step's input too,
    so it fires after them), the files read in it go into the ledger."""

    def __init__(self, ledger_url: str, job: str):
        self.ledger_url, self.job = ledger_url, job

    def process(self, keyed, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        from pipelines.rebalance.ledger import Ledger, Seen

        files = sorted((v for v in keyed[1] if isinstance(v, Seen)), key=lambda s: s.path)
        if files:
            Ledger(self.ledger_url).commit(f"{win.start.micros // 1_000_000:012d}-{pane.index:03d}-{self.job}", files)
        yield len(files)
