"""Small JSON artifacts (manifests, summaries) on any fsspec URL."""

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


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def read_summary(result, url: str) -> dict | None:
    """The summary a finished Beam job wrote; None after a Dataflow template launch
    (--template_location), which only stages the job graph: no job, no summary yet."""
    if getattr(result, "has_job", True) is False:
        return None
    return read_json(url)
