"""Each item's entities, by the statistics' own udfs, and objects for items that have an image and
none: the detector `adr annotate` uses, run here in the process (a benchmark is small)."""

from __future__ import annotations

import dataclasses
import json

import pyarrow as pa

from adr.errors import InputError
from adr.graded_results import Item
from udfs.entities import extract_entities


def extract(items: list[Item], perspectives: tuple[str, ...], nlp: str | None,
            batch_size: int = 512) -> list[dict[str, list[str]]]:
    """Each item's entities, by the statistics' udf on the item as a one-turn record."""
    schema = pa.schema([("key", pa.string()), ("record", pa.string())])
    out: list[dict[str, list[str]]] = []
    for start in range(0, len(items), batch_size):
        rows = [{"key": str(start + i), "record": json.dumps(item.record(), ensure_ascii=False)}
                for i, item in enumerate(items[start:start + batch_size])]
        out += extract_entities(pa.RecordBatch.from_pylist(rows, schema=schema), perspectives, nlp) \
            .select(list(perspectives)).to_pylist()
    return out


def ground(items: list[Item], args, nlp: str | None) -> tuple[list[Item], dict]:
    """Objects for the items with an image and none of their own, by the detector `adr annotate`
    uses, prompted the same way (the item's noun lemmas)."""
    # Imported here: an audit that does not ground loads neither Beam nor the detector's libraries.
    from adr.grounding import objects_of, prompt_labels
    from pipelines.annotate.detection import DetectionHandler
    from udfs.images import load_image
    from udfs.model_files import local_model_dir

    todo = [i for i, item in enumerate(items) if item.image and item.objects is None]
    summary = {"detector": args.detector, "grounded": 0, "failed": [], "labels": 0}
    if not todo:
        return items, summary
    local_model_dir(args.detector)  # a missing model is a one-line error before the tagging
    nouns = extract([items[i] for i in todo], ("token",), nlp)
    handler = DetectionHandler(args.detector, box_threshold=args.box_threshold, text_threshold=args.text_threshold,
                               labels_per_call=args.labels_per_call, device=args.device)
    detector = handler.load_model()
    items = list(items)
    for start in range(0, len(todo), args.batch_size):
        batch, images, labels = [], [], []
        for i, found in zip(todo[start:start + args.batch_size], nouns[start:start + args.batch_size]):
            try:
                images.append(load_image(args.images_root, items[i].image))
            except InputError as err:
                summary["failed"].append({"id": items[i].id, "image": items[i].image, "reason": str(err)})
                continue
            batch.append(i)
            labels.append(prompt_labels(found["token"], args.max_labels))
        if not batch:
            continue
        for i, detections in zip(batch, detector.detect(images, labels, args.box_threshold, args.text_threshold,
                                                         args.labels_per_call)):
            objects = objects_of(detections)
            items[i] = dataclasses.replace(items[i], objects=tuple(objects))
            summary["grounded"] += 1
            summary["labels"] += len(objects)
    return items, summary
