"""`adr audit`: which of a model's benchmark failures sit in the tail of its training data.

    adr audit --dictionary STATS_DIR [--dictionary REFINED_STATS_DIR] --results FILE... --output DIR
              [--format auto|canonical|scienceqa|pope] [--questions FILE] [--labels FILE_OR_DIR...]
              [--perspectives token,...] [--pass-score 0.5] [--nlp ...] [--detector M --images-root R]

Each graded item's question is turned into a one-turn LLaVA record and its entities are extracted
by the statistics' own udf (same tagger, same rules), then looked up in the training dictionary:
counts, head or tail by the training tau, unseen entities count 0. Runs in this process (a
benchmark is thousands of items: seconds). Outputs under DIR: audit.json (every figure),
items.jsonl (each item's entities and counts), invalid.jsonl (dead letters, with reasons),
index.html with figures/ (opens from disk).
"""

from __future__ import annotations

import time

from adr.audit import OBJECT_PERSPECTIVES, comparison, dictionary_audit, item_rows, item_summary
from adr.errors import ConfigError, InputError
from adr.records import DEFAULT_MAX_RECORD_BYTES
from pipelines.audit import page, terminal
from pipelines.audit.dictionaries import load_dictionaries
from pipelines.audit.entities import extract, ground
from pipelines.audit.readers import read_items
from pipelines.audit.writers import write_jsonl
from pipelines.outputs import join, write_json
from pipelines.stage import Engine, Options, Stage, StageParser, frozen

FORMATS = ("auto", "canonical", "scienceqa", "pope")


def parser() -> StageParser:
    ap = StageParser(prog="adr audit", description=__doc__.splitlines()[0])
    ap.add_argument("--dictionary", action="append", required=True,
                    help="an `adr stats` output (or an `adr run` output, for its stats/); twice: before and after "
                         "refinement")
    ap.add_argument("--results", nargs="+", required=True, help="graded results files (POPE: LLaVA's answer file)")
    ap.add_argument("--output", required=True)
    ap.add_argument("--format", choices=FORMATS, default="auto",
                    help="auto: ScienceQA for eval_science_qa.py's output, POPE when --labels is given, else canonical")
    ap.add_argument("--questions", nargs="+", default=None,
                    help="POPE: LLaVA's question file (llava_pope_test.jsonl); ScienceQA (optional): LLaVA's question "
                         "file (llava_test_CQM-A.json), for the items' images")
    ap.add_argument("--labels", nargs="+", default=None,
                    help="POPE's label files (coco_pope_<category>.json) or their folder")
    ap.add_argument("--perspectives", default=None, help="default: the dictionary's")
    ap.add_argument("--pass-score", type=float, default=0.5, help="an item scoring below it failed")
    ap.add_argument("--nlp", default=None, help="spaCy pipeline; default: the one the dictionary was made with")
    ap.add_argument("--top", type=int, default=15, help="tail entities listed per perspective")
    ap.add_argument("--max-record-bytes", type=int, default=DEFAULT_MAX_RECORD_BYTES)
    grounding = ap.add_argument_group("grounding (objects for items with an image and no objects)")
    grounding.add_argument("--detector", default=None, help="zero-shot detector, as `adr annotate --detector`")
    grounding.add_argument("--images-root", default=".")
    grounding.add_argument("--box-threshold", type=float, default=0.4)
    grounding.add_argument("--text-threshold", type=float, default=0.3)
    grounding.add_argument("--max-labels", type=int, default=64)
    grounding.add_argument("--labels-per-call", type=int, default=32)
    grounding.add_argument("--device", default="auto")
    grounding.add_argument("--batch-size", type=int, default=8)
    return ap


def configure(argv: list[str]) -> tuple[Options, list[str]]:
    args = parser().parse_args(argv)
    if len(args.dictionary) > 2:
        raise ConfigError("--dictionary is given once, or twice (before and after refinement)")
    if not 0.0 < args.pass_score <= 1.0:
        raise ConfigError(f"--pass-score must be in (0, 1], got {args.pass_score}")
    fmt = "pope" if args.format == "auto" and args.labels else args.format
    if args.labels and fmt != "pope":
        raise ConfigError(f"--labels is for --format pope, not {fmt}")
    if fmt == "pope" and not (args.questions and args.labels):
        raise ConfigError("--format pope needs --questions (LLaVA's llava_pope_test.jsonl) and --labels "
                          "(POPE's coco_pope_<category>.json files)")
    return frozen(args, format=fmt), []


def run(args: Options, engine: Engine = Engine()) -> dict:
    started = time.time()
    dictionaries, perspectives = load_dictionaries(args.dictionary, args.perspectives)
    nlp = args.nlp or dictionaries[0].nlp
    items = read_items(args)
    write_jsonl(join(args.output, "invalid.jsonl"), items.invalid + items.reference_invalid)
    if not items.items:
        raise InputError(f"no valid item in {', '.join(args.results)} ({len(items.invalid)} invalid: see "
                         f"{join(args.output, 'invalid.jsonl')})")
    grounding = None
    if args.detector and set(perspectives) & set(OBJECT_PERSPECTIVES):
        items.items, grounding = ground(items.items, args, nlp)
        write_jsonl(join(args.output, "grounding_failed.jsonl"), grounding["failed"])
    entities = extract(items.items, perspectives, nlp)

    summary = {
        "parameters": {"results": args.results, "format": args.format, "questions": args.questions,
                       "labels": args.labels, "perspectives": list(perspectives), "pass_score": args.pass_score,
                       "nlp": nlp or "default", "detector": args.detector},
        "items": {**items.counts(), **item_summary(items.items, args.pass_score)},
        "grounding": None if grounding is None else {**grounding, "failed": len(grounding["failed"])},
        "dictionaries": [d.summary(perspectives) for d in dictionaries],
        "audits": [dictionary_audit(items.items, entities, perspectives, d.counts, d.taus, args.pass_score,
                                    top=args.top) for d in dictionaries],
        "comparison": comparison(items.items, entities, perspectives, dictionaries[0].counts, dictionaries[1].counts,
                                 dictionaries[0].taus, args.pass_score) if len(dictionaries) == 2 else None,
    }
    write_jsonl(join(args.output, "items.jsonl"), item_rows(items.items, entities, perspectives,
                                                           [d.counts for d in dictionaries], args.pass_score))
    summary["page"] = page.write(summary, args.output)
    summary["seconds"] = round(time.time() - started, 1)
    write_json(join(args.output, "audit.json"), summary)
    return summary


def describe(summary: dict, args: Options | None = None) -> str:
    return terminal.summary_text(summary)


STAGE = Stage("audit", "which of a model's benchmark failures sit in the tail of its training data", parser,
              configure, run, describe)
