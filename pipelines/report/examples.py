"""Synthetic records beside their seeds, for the page: chosen over the methods, with thumbnails."""

from __future__ import annotations

import hashlib
import io

import fsspec

from adr.synthesis import METHODS
from pipelines.outputs import exists, iter_jsonl, join, read_json_or_none

SYNTHETIC_IMAGES = "adr-synthetic/"


def _image_url(synthetic_root: str, images_root: str, image: str | None) -> str | None:
    if not image:
        return None
    if image.startswith(SYNTHETIC_IMAGES):
        return join(synthetic_root, image)
    return join(images_root, image)


def thumbnail(url: str | None, out: str) -> str | None:
    """A JPEG copy beside the page (relative path), or None when the image is missing or unreadable."""
    if not url:
        return None
    from PIL import Image

    try:
        with fsspec.open(url, "rb") as f:
            image = Image.open(io.BytesIO(f.read()))
            image.load()
    except Exception:  # missing or not an image: the page says so instead of a broken <img>
        return None
    image = image.convert("RGB")
    image.thumbnail((320, 320))
    name = f"images/{hashlib.sha1(url.encode()).hexdigest()[:16]}.jpg"
    with fsspec.open(join(out, name), "wb", auto_mkdir=True) as f:
        image.save(f, format="JPEG", quality=85)
    return name


def examples(run_dir: str, images_root: str, k: int, out: str) -> list[dict]:
    """Up to k synthetic records, spread over methods, those whose images can be shown first;
    one pass over synthetic/, holding at most 2k records per method."""
    if k <= 0:
        return []
    summary = read_json_or_none(join(run_dir, "synthesize", "summary.json")) or {}
    synthetic_root = summary.get("synthetic_images") or join(run_dir, "synthesize", "images")
    shown: dict[str, list] = {m: [] for m in METHODS}
    rest: dict[str, list] = {m: [] for m in METHODS}
    for record in iter_jsonl(join(run_dir, "synthesize", "synthetic", "*.jsonl")):
        m = record["adr"]["method"]
        if len(shown[m]) >= k:
            continue
        url = _image_url(synthetic_root, images_root, record.get("image"))
        if url is not None and exists(url):
            shown[m].append(record)
        elif len(rest[m]) < k:
            rest[m].append(record)
    by_method = {m: (shown[m] + rest[m])[:k] for m in METHODS if shown[m] or rest[m]}
    quota = dict.fromkeys(by_method, 0)  # round robin over the methods, as far as their records go
    while sum(quota.values()) < k and any(quota[m] < len(by_method[m]) for m in quota):
        for m in quota:
            if quota[m] < len(by_method[m]) and sum(quota.values()) < k:
                quota[m] += 1
    chosen = [r for m in quota for r in by_method[m][:quota[m]]]
    wanted = {r["adr"]["seed_key"] for r in chosen}
    seeds = {s["key"]: s["record"] for s in iter_jsonl(join(run_dir, "rebalance", "seeds", "*.jsonl"))
             if s["key"] in wanted}
    rows = []
    for record in chosen:
        seed = seeds.get(record["adr"]["seed_key"], {})
        rows.append({"record": record, "seed": seed,
                     "image": thumbnail(_image_url(synthetic_root, images_root, record.get("image")), out),
                     "seed_image": thumbnail(_image_url(synthetic_root, images_root, seed.get("image")), out)})
    return rows
