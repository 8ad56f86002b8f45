"""Streaming file sinks that keep every pane of the user's windows, late ones included.

Beam's `WriteToText(triggering_frequency=...)` re-windows its input into fixed windows with no
allowed lateness (apache_beam/io/iobase.py, `_apply_windowing`): records that arrive behind the
watermark but within --allowed-lateness-secs would vanish from the files while the summary,
which keeps the user's windowing, counts them. Here each pane of each window is written by
shard as its own file, named by the window's start and the pane's index, so a late pane adds
files beside the on-time ones and replaces none.
"""

from __future__ import annotations

import uuid
import zlib

import apache_beam as beam
import fsspec

from pipelines.outputs import join

SHARDS = 4  # files per pane: what one worker writes while others write the other shards


def pane_name(window_start: int, pane_index: int, suffix: str, shard: int | None = None, job: str = "") -> str:
    """window-<start, epoch seconds>-pane-<index>[-<shard>][-<job>]<suffix>: in time order by
    name. `job` names the run: a restarted job writing the same window must not replace the
    files of the one before it, while a retried bundle of the same job rewrites its own."""
    return (f"window-{window_start:012d}-pane-{pane_index:03d}" + ("" if shard is None else f"-{shard:03d}")
            + (f"-{job}" if job else "") + suffix)


def write_atomically(url: str, data: str) -> None:
    """Write under _temporary/ beside it, then move into place: readers of the folder (which skip
    `_` folders) see the whole file or none, and a retried bundle writes the same name again."""
    folder, name = url.rsplit("/", 1)
    partial = join(folder, "_temporary", f"{uuid.uuid4().hex}-{name}")
    with fsspec.open(partial, "w", encoding="utf-8", auto_mkdir=True) as f:
        f.write(data)
    fs, path = fsspec.core.url_to_fs(partial)
    fs.mv(path, fsspec.core.url_to_fs(url)[1])


class _WritePane(beam.DoFn):
    def __init__(self, folder: str, job: str):
        self.folder, self.job = folder, job

    def process(self, shard_lines, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        shard, lines = shard_lines
        url = join(self.folder, pane_name(win.start.micros // 1_000_000, pane.index, ".jsonl", shard, self.job))
        write_atomically(url, "".join(line + "\n" for line in lines))
        yield url


class WritePanes(beam.PTransform):
    """Lines -> one file per (window, pane, shard) under `folder`; the written URLs."""

    def __init__(self, folder: str, job: str, shards: int = SHARDS):
        super().__init__()
        self.folder, self.job, self.shards = folder, job, shards

    def expand(self, lines):
        shards = self.shards
        return (lines
                | "Shard" >> beam.Map(lambda line: (zlib.crc32(line.encode("utf-8")) % shards, line))
                | "ByPane" >> beam.GroupByKey()
                | "WritePane" >> beam.ParDo(_WritePane(self.folder, self.job)))
