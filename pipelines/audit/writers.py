"""The audit's JSON Lines outputs (items, dead letters, images the detector could not read)."""

from __future__ import annotations

import json

import fsspec


def write_jsonl(url: str, rows: list[dict]) -> None:
    with fsspec.open(url, "w", encoding="utf-8", auto_mkdir=True) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
