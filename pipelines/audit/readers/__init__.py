"""The benchmark readers of `adr audit`, one module per results format, and the choice between them."""

from __future__ import annotations

from adr.errors import InputError
from pipelines.audit.readers.canonical import read_canonical
from pipelines.audit.readers.items import Items, files_of
from pipelines.audit.readers.pope import read_pope
from pipelines.audit.readers.scienceqa import question_images, read_scienceqa, scienceqa_doc


def read_items(args) -> Items:
    """The graded items of --results, read as --format says; `auto` tells a ScienceQA output from
    canonical JSON Lines file by file. Every element read is an item or a dead letter."""
    files = files_of("--results", args.results)
    out = Items()
    if args.format == "pope":
        read_pope(files, files_of("--questions", args.questions), files_of("--labels", args.labels),
                  args.max_record_bytes, out)
    else:
        images = question_images(files_of("--questions", args.questions), args.max_record_bytes,
                                 out.reference_invalid) if args.questions else {}
        for url in files:
            doc = scienceqa_doc(url) if args.format in ("auto", "scienceqa") else None
            if doc is not None:
                read_scienceqa(url, doc, images, out)
            elif args.format == "scienceqa":
                raise InputError(f"{url}: not eval_science_qa.py's output (one JSON object with 'correct' and "
                                 "'incorrect' lists)")
            else:
                read_canonical(url, args.max_record_bytes, out)
    if out.read != len(out.items) + len(out.invalid):
        raise RuntimeError(f"items lost: read {out.read}, valid {len(out.items)}, invalid {len(out.invalid)}")
    return out
