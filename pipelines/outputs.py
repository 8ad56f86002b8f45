"""Small JSON artifacts (manifests, summaries, markers) and JSON Lines on any fsspec URL."""

from __future__ import annotations

import json

import fsspec


def write_json(url: str, payload: dict) -> None:
    with fsspec.open(url, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")


def read_json(url: str) -> dict:
    with fsspec.open(url, "r") as f:
        return json.load(f)


def exists(url: str) -> bool:
    fs, path = fsspec.core.url_to_fs(url)
    return fs.exists(path)


def read_json_or_none(url: str) -> dict | None:
    """A marker or summary that may not be there yet (a stage not run, or cut short)."""
    return read_json(url) if exists(url) else None


def iter_jsonl(pattern: str):
    """Every row of the JSON Lines files a glob names, file by file in name order, one at a time
    (outputs grow with the corpus)."""
    fs, path = fsspec.core.url_to_fs(pattern)
    for name in sorted(fs.glob(path)):
        with fs.open(name, "r") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def remove(url: str) -> None:
    """Delete a directory tree (or file) if it is there."""
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def clear_outputs(output: str, names: tuple[str, ...]) -> None:
    """Remove a stage's own folders and files from `output` before it writes them again: shards
    of an earlier run (another shard count leaves other names) must not mix with this run's, and
    its summary, written last, must not vouch for a run that is then cut short."""
    for name in names:
        remove(join(output, name))


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def read_summary(result, url: str) -> dict | None:
    """The summary a finished Beam job wrote; None after a Dataflow template launch
    (--template_location), which only stages the job graph: no job, no summary yet."""
    if getattr(result, "has_job", True) is False:
        return None
    return read_json(url)


def file_urls(folder: str, suffix: str) -> list[str]:
    """The files under a folder (at any depth) with this suffix, in name order: names, not rows."""
    from udfs.sources import url_of

    fs, root = fsspec.core.url_to_fs(folder)
    if not fs.exists(root):
        return []
    return [url_of(fs, n) for n in sorted(fs.find(root)) if n.endswith(suffix)]
