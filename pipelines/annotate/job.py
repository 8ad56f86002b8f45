"""`adr annotate`: fill the object perspective of unannotated corpora with a zero-shot detector.

    adr annotate --input ... --output DIR --detector M [--images-root PATH_OR_URL]
                 [--box-threshold 0.4] [--text-threshold 0.3] [--max-labels 64] [--device auto]
                 [--nlp ...] [--overwrite] [Beam options]

Each record with an image is prompted with its noun lemmas (the stats job's token udf); the
labels found above the thresholds become `objects` (normalised like annotated ones) and their
boxes and scores `object_boxes`. Records that already have `objects` pass through unless
--overwrite; records without an image pass through. Outputs: DIR/records/ (JSON Lines, every
field kept), DIR/failed/ (missing or unreadable images: those records also pass through
unchanged), DIR/invalid/, DIR/summary.json.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from adr.errors import InputError
from adr.grounding import objects_of, prompt_labels
from adr.records import DEFAULT_MAX_RECORD_BYTES
from pipelines import progress
from pipelines.annotate.detection import DetectionHandler, GroundingRequest
from pipelines.outputs import clear_outputs, join, read_summary, write_json
from pipelines.stage import Engine, Options, Stage, StageParser, frozen
from pipelines.torch_env import on_accelerator
from udfs.entities import extract_entities
from udfs.images import load_image
from udfs.model_files import local_model_dir
from udfs.records import dead_letter, parse_raw, valid_and_invalid
from udfs.sources import expand_inputs, total_bytes
from udfs.splits import plan_splits, read_split, split_bytes_for

DETECT, FAILED, INVALID, STATS = "detect", "failed", "invalid", "stats"


def parser() -> StageParser:
    ap = StageParser(prog="adr annotate", description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True, nargs="+")
    ap.add_argument("--output", required=True)
    ap.option("--detector", model=True, required=True, help="AutoModelForZeroShotObjectDetection directory/URL/hub id")
    ap.option("--images-root", default=".")
    ap.option("--box-threshold", type=float, default=0.4)
    ap.option("--text-threshold", type=float, default=0.3)
    ap.option("--max-labels", type=int, default=64)
    ap.option("--labels-per-call", type=int, default=32, help="labels per model call (prompt chunks)")
    ap.option("--device", default="auto")
    ap.option("--nlp", default=None)
    ap.option("--overwrite", action="store_true", help="re-detect records that already have objects")
    ap.option("--batch-size", type=int, default=8)
    ap.option("--accelerator", default=None,
                    help="Beam resource hint for the detector step only, "
                         "e.g. 'type:nvidia-l4;count:1;install-nvidia-driver'")
    ap.option("--max-record-bytes", type=int, default=DEFAULT_MAX_RECORD_BYTES)
    return ap


def configure(argv: list[str]) -> tuple[Options, list[str]]:
    args, beam_args = parser().parse_known_args(argv)
    return frozen(args), beam_args


class Route(beam.DoFn):
    """Parse a raw batch; send records to pass through or to the detector with their prompt."""

    def __init__(self, args, input_bytes: int = 0):
        self.max_bytes, self.overwrite, self.nlp, self.max_labels = (
            args.max_record_bytes, args.overwrite, args.nlp, args.max_labels)
        self.input_bytes = input_bytes

    def process(self, raw: pa.RecordBatch):
        if self.input_bytes:
            # Routing streams into detection (no barrier between them), so bytes routed track the work.
            progress.advance(0, (pc.sum(pc.binary_length(raw.column("raw"))).as_py() or 0) / self.input_bytes)
        parsed = parse_raw(raw, max_bytes=self.max_bytes)
        stats = Counter(read=parsed.num_rows)
        good, bad = valid_and_invalid(parsed)
        for row in bad.to_pylist():
            stats["invalid"] += 1
            yield beam.pvalue.TaggedOutput(INVALID, json.dumps(dead_letter(row), ensure_ascii=False))
        records = [json.loads(r) for r in good.column("record").to_pylist()]
        wanted = [i for i, r in enumerate(records) if r.get("image") and (self.overwrite or r.get("objects") is None)]
        detect = set(wanted)
        for i in range(len(records)):
            if i not in detect:
                stats["passed_through"] += 1
                yield good.column("record")[i].as_py()
        if wanted:
            nouns = extract_entities(good.take(wanted).select(["key", "record"]), ("token",), self.nlp).column("token")
            for i, labels in zip(wanted, nouns.to_pylist()):
                yield beam.pvalue.TaggedOutput(DETECT, (records[i], prompt_labels(labels, self.max_labels)))
        yield beam.pvalue.TaggedOutput(STATS, stats)


def request(item, images_root: str):
    record, labels = item
    try:
        image = load_image(images_root, record["image"])
    except InputError as err:
        yield beam.pvalue.TaggedOutput(FAILED, (record, str(err)))
        return
    # The record rides along as the key, so each detection comes back attached to it.
    yield json.dumps(record, ensure_ascii=False), GroundingRequest(str(record["id"]), image, tuple(labels))


class Annotate(beam.PTransform):
    """Raw record batches -> DIR/records/, failed/, invalid/; returns the summary (one element)."""

    def __init__(self, args: Options, handler: DetectionHandler, input_bytes: int, started: float):
        super().__init__()
        self.args, self.handler, self.input_bytes, self.started = args, handler, input_bytes, started

    def expand(self, batches):
        args = self.args
        routed = (batches | "Route" >> beam.ParDo(Route(args, self.input_bytes))
                  .with_outputs(DETECT, INVALID, STATS, main="through"))
        keyed = (routed[DETECT]
                 | "Requests" >> beam.FlatMap(request, args.images_root).with_outputs(FAILED, main="requests"))
        annotated = (keyed.requests
                     | "Detect" >> on_accelerator(RunInference(KeyedModelHandler(self.handler)), args.accelerator)
                     | "Annotate" >> beam.Map(annotate_record))
        failed = keyed[FAILED]
        failed_lines = failed | "FailedLines" >> beam.Map(
            lambda rf: json.dumps({"id": str(rf[0]["id"]), "image": rf[0].get("image"), "reason": "bad-image",
                                   "detail": rf[1]}, ensure_ascii=False))
        unchanged = failed | "FailedThrough" >> beam.Map(lambda rf: json.dumps(rf[0], ensure_ascii=False))
        ((routed.through, annotated | "Lines" >> beam.Map(lambda r: r[1]), unchanged)
         | "AllRecords" >> beam.Flatten()
         | "WriteRecords" >> beam.io.WriteToText(join(args.output, "records", "part"), file_name_suffix=".jsonl"))
        failed_lines | "WriteFailed" >> beam.io.WriteToText(join(args.output, "failed", "part"),
                                                            file_name_suffix=".jsonl")
        routed[INVALID] | "WriteInvalid" >> beam.io.WriteToText(join(args.output, "invalid", "part"),
                                                                file_name_suffix=".jsonl")
        return ((routed[STATS],
                 annotated | "AnnotatedCounts" >> beam.Map(lambda r: Counter(annotated=1, labels=r[0])),
                 failed | "FailedCounts" >> beam.Map(lambda _: Counter(failed=1)))
                | "AllCounts" >> beam.Flatten()
                | "Total" >> beam.CombineGlobally(lambda cs: sum(cs, Counter()))
                | "Summary" >> beam.Map(write_summary, args.output, self.started))


def read_records(pipeline: beam.Pipeline, files: list[str]):
    """The input as raw record batches, a split of bounded size at a time."""
    splits = plan_splits(files, split_bytes_for(total_bytes(files), 2))
    return (pipeline | "Splits" >> beam.Create([s.to_dict() for s in splits]) | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.FlatMap(read_split))


def run(args: Options, engine: Engine = Engine()) -> dict:
    files = expand_inputs(args.input)
    local_model_dir(args.detector)  # a missing model is a one-line error before anything starts
    handler = DetectionHandler(args.detector, box_threshold=args.box_threshold, text_threshold=args.text_threshold,
                               labels_per_call=args.labels_per_call, device=args.device,
                               max_batch_size=args.batch_size)
    started = time.time()
    clear_outputs(args.output, ("summary.json", "records", "failed", "invalid"))
    p = beam.Pipeline(options=PipelineOptions(list(engine.beam_args)))
    read_records(p, files) | "Annotate" >> Annotate(args, handler, total_bytes(files), started)
    with progress.track("annotate", unit="images") as shown:
        result = p.run()
        with progress.following(result, ("images_annotated",), shown):
            result.wait_until_finish()
    return read_summary(result, join(args.output, "summary.json"))


def annotate_record(keyed) -> tuple[int, str]:
    """(number of labels, the record with `objects` and `object_boxes`) from a detection result."""
    record_text, result = keyed
    progress.advance(1)
    beam.metrics.Metrics.counter("adr", "images_annotated").inc()
    found = result.inference
    record = {**json.loads(record_text), "objects": objects_of(found),
              "object_boxes": [{"label": d.label, "score": d.score, "box": list(d.box)} for d in found]}
    return len(record["objects"]), json.dumps(record, ensure_ascii=False)


def write_summary(counts: Counter, output: str, started: float) -> dict:
    seconds = time.time() - started
    annotated_n = counts["annotated"]
    summary = {
        "records": counts["read"] - counts["invalid"], "read": counts["read"], "invalid": counts["invalid"],
        "annotated": annotated_n, "passed_through": counts["passed_through"], "failed": counts["failed"],
        "mean_labels_per_image": round(counts["labels"] / annotated_n, 3) if annotated_n else 0.0,
        "images_per_s": round(annotated_n / seconds, 3) if seconds else None, "seconds": round(seconds, 1),
    }
    if summary["records"] != annotated_n + counts["passed_through"] + counts["failed"]:
        raise RuntimeError(f"records lost: {summary}")
    write_json(join(output, "summary.json"), summary)
    return summary


def describe(s: dict, args: Options | None = None) -> str:
    if not s:
        return "annotate: job graph staged (a template launch); no summary yet"
    return (f"records {s['records']}  annotated {s['annotated']}  passed through {s['passed_through']}  "
            f"failed {s['failed']}  invalid {s['invalid']}  mean labels/image {s['mean_labels_per_image']}  "
            f"images/s {s['images_per_s']}")


def wiring(records: list[str], run_dir: str) -> list[str]:
    return ["--input", *records, "--output", join(run_dir, "annotate")]


STAGE = Stage("annotate", "objects for unannotated records, by a zero-shot detector (Beam RunInference)", parser,
              configure, run, describe, wiring, beam=True, runs_when="detector", records_out="records")
