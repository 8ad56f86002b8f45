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

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass

import fsspec
import pyarrow as pa

from adr.audit import Graded, lookup, movement, perspective_audit
from adr.entities.registry import resolve
from adr.errors import ConfigError, InputError
from adr.graded_results import (
    BAD_LABEL,
    NO_LABEL,
    UNKNOWN_QUESTION,
    Item,
    canonical_item,
    pope_category,
    pope_item,
    scienceqa_item,
)
from adr.records import (
    DEFAULT_MAX_RECORD_BYTES,
    MISSING_ID,
    NOT_AN_OBJECT,
    UNREADABLE_FILE,
    UNSAFE_IMAGE_PATH,
    InvalidRecord,
    is_safe_relative_path,
    parse_json,
)
from pipelines.audit import page as audit_report
from pipelines.checks import ArgumentParser, stats_manifest
from pipelines.outputs import exists, join, read_json, write_json
from udfs.entities import extract_entities
from udfs.entity_counts import Counts, dictionary_counts
from udfs.records import RAW_EXCERPT_CHARS
from udfs.sources import expand_inputs, read_raw

FORMATS = ("auto", "canonical", "scienceqa", "pope")
OBJECT_PERSPECTIVES = ("object", "cooccurrence")


def parser() -> argparse.ArgumentParser:
    ap = ArgumentParser(prog="adr audit", description=__doc__.splitlines()[0])
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


def parse_args(argv=None) -> argparse.Namespace:
    args = parser().parse_args(argv)
    if len(args.dictionary) > 2:
        raise ConfigError("--dictionary is given once, or twice (before and after refinement)")
    if not 0.0 < args.pass_score <= 1.0:
        raise ConfigError(f"--pass-score must be in (0, 1], got {args.pass_score}")
    if args.format == "auto" and args.labels:
        args.format = "pope"
    if args.labels and args.format != "pope":
        raise ConfigError(f"--labels is for --format pope, not {args.format}")
    if args.format == "pope" and not (args.questions and args.labels):
        raise ConfigError("--format pope needs --questions (LLaVA's llava_pope_test.jsonl) and --labels "
                          "(POPE's coco_pope_<category>.json files)")
    return args


# ---- training dictionaries ------------------------------------------------------------------

@dataclass
class Dictionary:
    path: str
    stats_dir: str
    manifest: dict
    counts: Counts

    @property
    def taus(self) -> dict[str, int]:
        return {p: self.manifest["perspectives"][p]["tau"] for p in self.counts}


def stats_dir_of(path: str) -> str:
    """An `adr stats` output, or the stats/ of an `adr run` output."""
    if not exists(join(path, "manifest.json")) and exists(join(path, "stats", "manifest.json")):
        return join(path, "stats")
    stats_manifest(path)  # one line saying what is wrong with it
    return path


def load_dictionaries(paths: list[str], perspectives: str | None) -> tuple[list[Dictionary], tuple[str, ...]]:
    stats = [stats_dir_of(p) for p in paths]
    manifests = [read_json(join(s, "manifest.json")) for s in stats]
    chosen = resolve(perspectives or manifests[0]["parameters"]["perspectives"])
    for path, manifest in zip(paths, manifests):
        missing = [p for p in chosen if p not in manifest["perspectives"]]
        if missing:
            raise ConfigError(f"the dictionary in {path} has no {', '.join(missing)} entities")
    taggers = {m["parameters"].get("nlp", "default") for m in manifests}
    if "token" in chosen and len(taggers) > 1:
        raise ConfigError(f"the dictionaries were tagged by different spaCy pipelines ({', '.join(sorted(taggers))}): "
                          "their token counts do not compare")
    return [Dictionary(p, s, m, dictionary_counts(s, chosen)) for p, s, m in zip(paths, stats, manifests)], chosen


# ---- graded results -> items ----------------------------------------------------------------

@dataclass
class Items:
    items: list[Item] = dataclasses.field(default_factory=list)
    invalid: list[dict] = dataclasses.field(default_factory=list)  # dead letters of the results
    reference_invalid: list[dict] = dataclasses.field(default_factory=list)  # of question and label files
    labels_unmatched: int = 0
    tally: Counter = dataclasses.field(default_factory=Counter)

    @property
    def read(self) -> int:
        return self.tally["read"]


def _dead(source: str, position: int, err: InvalidRecord, raw) -> dict:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else json.dumps(raw, ensure_ascii=False)
    return {"source": source, "position": position, "reason": err.reason, "detail": str(err),
            "raw": text[:RAW_EXCERPT_CHARS]}


def json_rows(url: str, max_bytes: int, dead: list[dict], tally: Counter | None = None):
    """(source, position, value) of each JSON Lines line or JSON array element; bad ones to `dead`;
    `tally["read"]` counts the elements read."""
    for batch in read_raw(url, max_element_bytes=max(2 * max_bytes, 1)):
        if tally is not None:
            tally["read"] += batch.num_rows
        columns = ("source", "position", "raw", "error")
        for source, position, raw, error in zip(*(batch.column(c).to_pylist() for c in columns)):
            try:
                if error is not None:
                    raise InvalidRecord(UNREADABLE_FILE, error)
                yield source, position, parse_json(raw, max_bytes=max_bytes)
            except InvalidRecord as err:
                dead.append(_dead(source, position, err, raw))


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


def files_of(flag: str, specs: list[str]) -> list[str]:
    try:
        return expand_inputs(specs)
    except InputError as err:
        raise InputError(f"{flag}: {err}") from None


def read_items(args) -> Items:
    files = files_of("--results", args.results)
    out = Items()
    if args.format == "pope":
        read_pope(files, args, out)
        return out
    images = question_images(args, out.reference_invalid) if args.questions else {}
    for url in files:
        doc = scienceqa_doc(url) if args.format in ("auto", "scienceqa") else None
        if doc is not None:
            read_scienceqa(url, doc, images, out)
        elif args.format == "scienceqa":
            raise InputError(f"{url}: not eval_science_qa.py's output (one JSON object with 'correct' and "
                             "'incorrect' lists)")
        else:
            for source, position, obj in json_rows(url, args.max_record_bytes, out.invalid, out.tally):
                try:
                    item = canonical_item(obj)
                except InvalidRecord as err:
                    out.invalid.append(_dead(source, position, err, obj))
                    continue
                out.items.append(item)
    return out


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
                out.invalid.append(_dead(f"{url}#{key}", i, err, entry))
                continue
            # The output names no image; LLaVA's question file does (by the same id).
            out.items.append(dataclasses.replace(item, image=images.get(item.id)))


def question_images(args, dead: list[dict]) -> dict[str, str]:
    """id -> image of the question file's records; an image path that would leave the images
    root is a dead letter, as in every other reader, and its item is audited without it."""
    images = {}
    for url in files_of("--questions", args.questions):
        for source, position, q in json_rows(url, args.max_record_bytes, []):
            if isinstance(q, dict) and isinstance(q.get("image"), str):
                if not is_safe_relative_path(q["image"]):
                    dead.append(_dead(source, position, InvalidRecord(UNSAFE_IMAGE_PATH, repr(q["image"])[:200]), q))
                    continue
                images[str(q.get("id", q.get("question_id")))] = q["image"]
    return images


def read_pope(files: list[str], args, out: Items) -> None:
    """Answers paired with labels as eval_pope.py pairs them: by position among the answers of the
    same category (the question file says which), in file order."""
    questions: dict[str, dict] = {}
    for url in files_of("--questions", args.questions):
        for source, position, q in json_rows(url, args.max_record_bytes, out.reference_invalid):
            if not isinstance(q, dict) or q.get("question_id") is None:
                out.reference_invalid.append(_dead(source, position, InvalidRecord(MISSING_ID, "question line"), q))
                continue
            if q.get("image") is not None and not is_safe_relative_path(q["image"]):
                out.reference_invalid.append(_dead(source, position, InvalidRecord(UNSAFE_IMAGE_PATH,
                                                                                   repr(q["image"])[:200]), q))
                q = {**q, "image": None}  # audited without its image, which is not read
            questions[str(q["question_id"])] = q
    labels: dict[str, list[dict | None]] = {}
    for url in files_of("--labels", args.labels):
        rows = labels.setdefault(pope_category(url), [])
        for batch in read_raw(url):
            columns = ("source", "position", "raw", "error")
            for source, position, raw, error in zip(*(batch.column(c).to_pylist() for c in columns)):
                try:
                    if error is not None:
                        raise InvalidRecord(UNREADABLE_FILE, error)
                    rows.append(parse_json(raw))
                except InvalidRecord as err:  # keeps its place: later lines still pair by position
                    out.reference_invalid.append(_dead(source, position, err, raw))
                    rows.append(None)
    used: Counter = Counter()
    for url in files:
        for source, position, answer in json_rows(url, args.max_record_bytes, out.invalid, out.tally):
            try:
                if not isinstance(answer, dict):
                    raise InvalidRecord(NOT_AN_OBJECT, type(answer).__name__)
                question = questions.get(str(answer.get("question_id")))
                if question is None:
                    raise InvalidRecord(UNKNOWN_QUESTION,
                                        f"question_id {answer.get('question_id')!r} is not in --questions")
                category = str(question.get("category"))
                rows, index = labels.get(category), used[category]
                used[category] += 1
                if rows is None or index >= len(rows):
                    raise InvalidRecord(NO_LABEL, f"answer {index + 1} of category {category!r}: "
                                                  f"{0 if rows is None else len(rows)} labels given")
                if rows[index] is None:
                    raise InvalidRecord(BAD_LABEL, f"label line {index + 1} of category {category!r} is malformed")
                out.items.append(pope_item(answer, question, rows[index]))
            except InvalidRecord as err:
                out.invalid.append(_dead(source, position, err, answer))
    out.labels_unmatched = sum(max(0, len(rows) - used[c]) for c, rows in labels.items())


# ---- entities -------------------------------------------------------------------------------

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


# ---- the audit ------------------------------------------------------------------------------

def graded(items: list[Item], entities: list[dict], perspective: str, counts, pass_score: float) -> list[Graded]:
    return [Graded(lookup(e[perspective], counts), item.score, item.score < pass_score)
            for item, e in zip(items, entities)]


def item_summary(items: Items, pass_score: float) -> dict:
    scores = [i.score for i in items.items]
    groups: dict[str, list[float]] = {}
    for item in items.items:
        name = "/".join(x for x in (item.benchmark, item.category) if x) or "all"
        groups.setdefault(name, []).append(item.score)
    return {
        "read": items.read, "valid": len(items.items), "invalid": len(items.invalid),
        "invalid_by_reason": dict(sorted(Counter(d["reason"] for d in items.invalid).items())),
        "reference_lines_invalid": len(items.reference_invalid), "labels_unmatched": items.labels_unmatched,
        "failed": sum(s < pass_score for s in scores), "accuracy": sum(scores) / len(scores) if scores else None,
        "by_group": {k: {"items": len(v), "accuracy": sum(v) / len(v)} for k, v in sorted(groups.items())},
    }


def run(argv=None) -> dict:
    started = time.time()
    args = parse_args(argv)
    dictionaries, perspectives = load_dictionaries(args.dictionary, args.perspectives)
    manifest_nlp = dictionaries[0].manifest["parameters"].get("nlp", "default")
    nlp = args.nlp or (None if manifest_nlp == "default" else manifest_nlp)
    items = read_items(args)
    if items.read != len(items.items) + len(items.invalid):
        raise RuntimeError(f"items lost: read {items.read}, valid {len(items.items)}, invalid {len(items.invalid)}")
    _write_jsonl(join(args.output, "invalid.jsonl"), items.invalid + items.reference_invalid)
    if not items.items:
        raise InputError(f"no valid item in {', '.join(args.results)} ({len(items.invalid)} invalid: see "
                         f"{join(args.output, 'invalid.jsonl')})")
    grounding = None
    if args.detector and set(perspectives) & set(OBJECT_PERSPECTIVES):
        items.items, grounding = ground(items.items, args, nlp)
        _write_jsonl(join(args.output, "grounding_failed.jsonl"), grounding["failed"])
    entities = extract(items.items, perspectives, nlp)

    audits = [{p: perspective_audit(graded(items.items, entities, p, d.counts[p], args.pass_score),
                                    list(d.counts[p].values()), d.taus[p], top=args.top) for p in perspectives}
              for d in dictionaries]
    comparison = None
    if len(dictionaries) == 2:
        before, after = dictionaries
        comparison = {p: movement([e for item, ents in zip(items.items, entities) if item.score < args.pass_score
                                   for e in ents[p]], before.counts[p], after.counts[p], before.taus[p])
                      for p in perspectives}
    summary = {
        "parameters": {"results": args.results, "format": args.format, "questions": args.questions,
                       "labels": args.labels, "perspectives": list(perspectives), "pass_score": args.pass_score,
                       "nlp": nlp or "default", "detector": args.detector},
        "items": item_summary(items, args.pass_score),
        "grounding": None if grounding is None else {**grounding, "failed": len(grounding["failed"])},
        "dictionaries": [{"path": d.path, "stats": d.stats_dir, "records": d.manifest.get("records"),
                          "perspectives": {p: {"tau": d.taus[p], "entities": len(d.counts[p]),
                                               "occurrences": sum(d.counts[p].values())} for p in perspectives}}
                         for d in dictionaries],
        "audits": audits,
        "comparison": comparison,
    }
    _write_jsonl(join(args.output, "items.jsonl"), [
        {"id": item.id, "benchmark": item.benchmark, "category": item.category, "score": item.score,
         "failed": item.score < args.pass_score, "question": item.question, "answer": item.answer, "image": item.image,
         "counts": [{p: lookup(ents[p], d.counts[p]) for p in perspectives} for d in dictionaries]}
        for item, ents in zip(items.items, entities)])
    summary["page"] = audit_report.write(summary, args.output)
    summary["seconds"] = round(time.time() - started, 1)
    write_json(join(args.output, "audit.json"), summary)
    return summary


def _write_jsonl(url: str, rows: list[dict]) -> None:
    with fsspec.open(url, "w", encoding="utf-8", auto_mkdir=True) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1f}%"


def describe(s: dict) -> str:
    i = s["items"]
    lines = [f"items {i['valid']}  failed {i['failed']}  accuracy {_pct(100 * i['accuracy'])}  invalid {i['invalid']}"
             + (f" ({', '.join(f'{k} {v}' for k, v in i['invalid_by_reason'].items())})" if i["invalid"] else "")]
    if s["grounding"]:
        g = s["grounding"]
        lines.append(f"grounded {g['grounded']} images ({g['labels']} objects), {g['failed']} images unreadable")
    for d, audit in zip(s["dictionaries"], s["audits"]):
        lines.append(f"against {d['path']} ({d['records']} training records):")
        for p, a in audit.items():
            if not a["items"]:
                lines.append(f"  {p}: no item has {p} entities"
                             + (" (items carry no objects: give them `objects` or use --detector)"
                                if p in OBJECT_PERSPECTIVES else ""))
                continue
            ht, t2 = a["head_tail"], a["table2"]
            buckets = "  ".join(f"{b['bucket']} {_pct(100 * b['accuracy'])} (n={b['items']})"
                                for b in a["accuracy_by_bucket"] if b["items"])
            lines.append(f"  {p} (tau {a['tau']}): {a['items']} items, {a['failures']} failed; accuracy by rarest "
                         f"entity: {buckets}")
            lines.append(f"    all-tail: {_pct(ht['failures']['all_tail_pct'])} of failures vs "
                         f"{_pct(ht['successes']['all_tail_pct'])} of successes; any-tail: "
                         f"{_pct(ht['failures']['any_tail_pct'])} vs {_pct(ht['successes']['any_tail_pct'])}")
            if t2["threshold"] == 0:
                lines.append(f"    Table 2: {_pct(t2['failed_unseen_pct'])} of the failed cases' entity occurrences "
                             "are unseen in the training data (more than half: threshold 0)")
            elif t2["threshold"] is not None:
                lines.append(f"    Table 2: half of the failed cases' entity occurrences have training count <= "
                             f"{t2['threshold']} ({_pct(t2['failed_unseen_pct'])} unseen); at or below it: "
                             f"{_pct(t2['distinct_entities_pct'])} of distinct training entities, "
                             f"{_pct(t2['occurrences_pct'])} of training occurrences")
    if s["comparison"]:
        lines.append(f"failed items' entities, {s['dictionaries'][0]['path']} -> {s['dictionaries'][1]['path']} "
                     "(both cut at the first tau):")
        for p, m in s["comparison"].items():
            if m["entities"]:
                moves = ", ".join(f"{k} {v}" for k, v in m["moves"].items())
                lines.append(f"  {p}: {m['entities']} entities: {moves}; tail share of failed occurrences "
                             f"{_pct(m['tail_occurrences_pct_before'])} -> {_pct(m['tail_occurrences_pct_after'])}")
    lines.append(f"audit: {s['page']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    print(describe(run(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
