"""Official COCO caption/instance annotations -> LLaVA records (instruction + caption + objects)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from adr.records import IMAGE_TOKEN

# LLaVA's brief-caption instructions (LLaVA-Pretrain), so the interrogation perspective sees
# the same variety a real instruction mix has.
BRIEF_INSTRUCTIONS = (
    "Describe the image concisely.",
    "Provide a brief description of the given image.",
    "Offer a succinct explanation of the picture presented.",
    "Summarize the visual content of the image.",
    "Give a short and clear explanation of the subsequent image.",
    "Share a concise interpretation of the image provided.",
    "Present a compact description of the photo's key features.",
    "Relay a brief, clear account of the picture shown.",
    "Render a clear and concise summary of the photo.",
    "Write a terse but informative summary of the picture.",
    "Create a compact narrative representing the image presented.",
)


def objects_by_image(instances: dict) -> dict[int, list[str]]:
    """image id -> sorted distinct category names, for every image the instances file covers."""
    names = {c["id"]: c["name"] for c in instances.get("categories", [])}
    found: dict[int, set[str]] = {img["id"]: set() for img in instances.get("images", [])}
    for ann in instances.get("annotations", []):
        found.setdefault(ann["image_id"], set()).add(names[ann["category_id"]])
    return {k: sorted(v) for k, v in found.items()}


def choose_instruction(key: str) -> str:
    h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "little")
    return BRIEF_INSTRUCTIONS[h % len(BRIEF_INSTRUCTIONS)]


def coco_records(captions: dict, objects: dict[int, list[str]] | None = None,
                 image_ids: set[int] | None = None, instruction: str | None = None) -> Iterator[dict]:
    """One LLaVA record per caption, in (image id, caption id) order.

    `objects` is attached only for images the instances file covers: an image it does not
    cover has unknown objects, which is not the same as none.
    """
    files = {img["id"]: img["file_name"] for img in captions["images"]}
    anns = sorted(captions["annotations"], key=lambda a: (a["image_id"], a["id"]))
    for ann in anns:
        image_id = ann["image_id"]
        if image_ids is not None and image_id not in image_ids:
            continue
        rid = f"{image_id:012d}-{ann['id']}"
        record = {
            "id": rid,
            "image": files[image_id],
            "conversations": [
                {"from": "human", "value": f"{IMAGE_TOKEN}\n{instruction or choose_instruction(rid)}"},
                {"from": "gpt", "value": " ".join(ann["caption"].split())},
            ],
        }
        if objects is not None and image_id in objects:
            record["objects"] = objects[image_id]
        yield record
