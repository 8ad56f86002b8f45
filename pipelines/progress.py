"""Progress of a long step: records done, rate and time left.

On a terminal one line is redrawn in place; otherwise (CI, a log file) a plain line is written
every `interval` seconds (ADR_PROGRESS_SECS, default 10). Pipeline code calls the module-level
`advance()`: it reaches the active tracker when the runner executes in this process (DirectRunner, local Spark through
accumulators) and does nothing on remote workers, where the engine's own UI shows progress.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

_active: Progress | None = None


def format_eta(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """`total` is in the same unit as `done`, or leave it None and pass `fraction` to `update`
    (e.g. bytes read of the input's size, when the record count is not known in advance)."""

    def __init__(self, label: str, total: int | None = None, unit: str = "records", stream=None,
                 interval: float | None = None, clock=time.monotonic):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        # ADR_PROGRESS_SECS: how often a plain line is written (a log, CI); 10 s by default.
        self.interval = interval if interval is not None else (
            0.25 if self.tty else float(os.environ.get("ADR_PROGRESS_SECS", "10")))
        self.clock = clock
        self.started = self.last_shown = clock()
        self.done, self.fraction = 0, 0.0
        self.note = ""  # what the engine says while counts wait for tasks to end ("2 of 163 tasks running")
        self._lock = threading.Lock()

    def advance(self, n: int = 1, fraction_delta: float = 0.0) -> None:
        with self._lock:
            self._set(self.done + n, self.fraction + fraction_delta)

    def update(self, done: int, fraction: float | None = None, note: str | None = None) -> None:
        with self._lock:
            if note is not None:
                self.note = note
            self._set(done, fraction)

    def _set(self, done: int, fraction: float | None) -> None:
        self.done = done
        if self.total:
            fraction = done / self.total
        self.fraction = min(1.0, max(0.0, fraction or 0.0))
        now = self.clock()
        if now - self.last_shown >= self.interval:
            self.last_shown = now
            self._show(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or self.clock()) - self.started, 1e-9)
        rate = self.done / elapsed
        done = f"{self.done:,}/{self.total:,}" if self.total else f"{self.done:,}"
        parts = [f"{self.label}: {done} {self.unit}"]
        if self.fraction:
            parts.append(f"{100 * self.fraction:.0f}%")
        parts.append(f"{rate:,.1f} {self.unit}/s")
        if 0 < self.fraction < 1:
            parts.append(f"{format_eta(elapsed * (1 - self.fraction) / self.fraction)} left")
        if self.note:
            parts.append(f"({self.note})")
        return "  ".join(parts)

    def _show(self, text: str, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r" + text + "\033[K" + ("\n" if final else ""))
        else:
            self.stream.write(time.strftime("%Y-%m-%d %H:%M:%S ") + text + "\n")
        self.stream.flush()

    def close(self) -> None:
        elapsed = self.clock() - self.started
        self._show(f"{self.label}: {self.done:,} {self.unit} in {format_eta(elapsed)}"
                   f" ({self.done / max(elapsed, 1e-9):,.1f} {self.unit}/s)", final=True)


@contextlib.contextmanager
def track(label: str, total: int | None = None, unit: str = "records", **kwargs):
    """Make a tracker the active one for the duration of a step."""
    global _active
    previous, _active = _active, Progress(label, total, unit, **kwargs)
    try:
        yield _active
    finally:
        _active.close()
        _active = previous


@contextlib.contextmanager
def polling(poll, every: float = 0.5):
    """Call `poll` from a background thread while the block runs (Spark jobs block the driver)."""
    stop = threading.Event()

    def loop():
        while not stop.wait(every):
            poll()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def follow_counters(result, names: tuple[str, ...], tracker: Progress) -> None:
    """Raise the tracker's count to the sum of the pipeline's `adr` counters `names`: advance()
    from a DoFn reaches only a tracker in its own process, not one behind workers in other
    processes (the multi-process runner) or machines (Dataflow, Flink)."""
    from apache_beam.metrics.metric import MetricsFilter

    try:
        counters = result.metrics().query(MetricsFilter().with_namespace("adr"))["counters"]
    except Exception:  # noqa: BLE001 - a runner that cannot report its metrics (yet): the count waits
        return
    n = sum((c.committed if c.committed is not None else c.attempted) or 0
            for c in counters if c.key.metric.name in names)
    if n > tracker.done:
        tracker.update(n, tracker.fraction)


@contextlib.contextmanager
def following(result, names: tuple[str, ...], tracker: Progress, every: float = 10.0):
    """While a Beam pipeline runs, and once when it ends, follow its workers' counters."""
    with polling(lambda: follow_counters(result, names, tracker), every):
        yield
    follow_counters(result, names, tracker)


def advance(n: int = 1, fraction_delta: float = 0.0) -> None:
    if _active is not None:
        _active.advance(n, fraction_delta)


def update(done: int, fraction: float | None = None) -> None:
    if _active is not None:
        _active.update(done, fraction)
