"""`adr import coco`: official COCO caption (and instance) files -> LLaVA JSON Lines."""

from __future__ import annotations

import json

import fsspec

from adr.coco import coco_records, objects_by_image
from adr.errors import InputError
from pipelines.stage import Engine, Options, Stage, StageParser, frozen


def parser() -> StageParser:
    ap = StageParser(prog="adr import coco", description=__doc__)
    ap.add_argument("--captions", required=True, help="captions_*.json")
    ap.add_argument("--instances", help="instances_*.json: adds 'objects' to the images it covers")
    ap.add_argument("--output", required=True, help="JSON Lines file to write")
    ap.add_argument("--max-images", type=int, default=0,
                    help="keep this many images: those with instances first, then by id")
    ap.add_argument("--instruction", default=None, help="one fixed instruction instead of LLaVA's variants")
    return ap


def configure(argv: list[str]) -> tuple[Options, list[str]]:
    return frozen(parser().parse_args(argv)), []


def _load(url: str) -> dict:
    try:
        with fsspec.open(url, "r", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(f"cannot read {url!r}: no such file") from None
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {url!r}: {err}") from None


def run(args: Options, engine: Engine = Engine()) -> dict:
    captions = _load(args.captions)
    objects = objects_by_image(_load(args.instances)) if args.instances else None
    image_ids = None
    if args.max_images:
        annotated = sorted(objects or {})
        rest = sorted(i["id"] for i in captions["images"] if i["id"] not in set(annotated))
        image_ids = set((annotated + rest)[: args.max_images])
    n = 0
    with fsspec.open(args.output, "w", encoding="utf-8") as out:
        for record in coco_records(captions, objects, image_ids, args.instruction):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return {"records": n, "output": args.output}


def describe(summary: dict, args: Options | None = None) -> str:
    return f"wrote {summary['records']} records to {summary['output']}"


STAGE = Stage("import coco", "official COCO caption/instance files -> LLaVA JSON Lines", parser, configure, run,
              describe)
