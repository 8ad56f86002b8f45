"""ScienceQA as LLaVA grades it: eval_science_qa.py's output, with images from LLaVA's question file."""

from __future__ import annotations

import dataclasses
import json

import fsspec

from adr.errors import InputError
from adr.graded_results import scienceqa_item
from adr.records import UNSAFE_IMAGE_PATH, InvalidRecord, is_safe_relative_path
from pipelines.audit.readers.items import Items, dead_letter, json_rows


def scienceqa_doc(url: str) -> dict | None:
    """eval_science_qa.py's output (one JSON object with `correct` and `incorrect` lists), or None."""
    with fsspec.open(url, "rb", compression="infer") as f:
        data = f.read()
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return None
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):  # JSON Lines, or not JSON at all
        return None
    return doc if isinstance(doc, dict) and {"correct", "incorrect"} <= doc.keys() else None


def read_scienceqa(url: str, doc: dict, images: dict[str, str], out: Items) -> None:
    for key, correct in (("correct", True), ("incorrect", False)):
        entries = doc[key]
        if not isinstance(entries, list):
            raise InputError(f"{url}: '{key}' is not a list")
        out.tally["read"] += len(entries)
        for i, entry in enumerate(entries):
            try:
                item = scienceqa_item(entry, correct)
            except InvalidRecord as err:
                out.invalid.append(dead_letter(f"{url}#{key}", i, err, entry))
                continue
            # The output names no image; LLaVA's question file does (by the same id).
            out.items.append(dataclasses.replace(item, image=images.get(item.id)))


def question_images(question_files: list[str], max_record_bytes: int, dead: list[dict]) -> dict[str, str]:
    """id -> image of the question files' records; an image path that would leave the images
    root is a dead letter, as in every other reader, and its item is audited without it."""
    images = {}
    for url in question_files:
        for source, position, q in json_rows(url, max_record_bytes, []):
            if isinstance(q, dict) and isinstance(q.get("image"), str):
                if not is_safe_relative_path(q["image"]):
                    dead.append(dead_letter(source, position,
                                            InvalidRecord(UNSAFE_IMAGE_PATH, repr(q["image"])[:200]), q))
                    continue
                images[str(q.get("id", q.get("question_id")))] = q["image"]
    return images
