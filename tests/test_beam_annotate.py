"""`adr annotate` with tiny random-weight zero-shot detectors on real COCO_Tiny images."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipelines.annotate import job as beam_annotate
from pipelines.stage import execute
from tests import tiny_models as tiny
from tests.conftest import COCO_IMAGES, NLP_ARGS, SCIENCEQA


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    root = tmp_path_factory.mktemp("detectors")
    return {"owlvit": tiny.build_zero_shot_detector(root / "owlvit", kind="owlvit"),
            "grounding-dino": tiny.build_zero_shot_detector(root / "gdino", kind="grounding-dino")}


@pytest.fixture(scope="module")
def corpus(coco, tmp_path_factory):
    """20 COCO_Tiny images' first captions without objects, 5 with their annotations kept,
    10 text-only ScienceQA records, one record whose image is missing."""
    from adr.coco import coco_records, objects_by_image

    captions, instances = coco
    objects = objects_by_image(instances)
    first = {}
    for record in coco_records(captions, objects, set(objects)):
        first.setdefault(record["image"], record)
    records = list(first.values())[:25]
    for r in records[:20]:
        r.pop("objects")
    records[19] = {**records[19], "image": "missing/nothing.jpg"}
    records += [r for r in json.loads(SCIENCEQA.read_text()) if "image" not in r][:10]
    path = tmp_path_factory.mktemp("annotate") / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path, records


def read_jsonl(folder: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(folder.glob("*.jsonl")) for line in f.read_text().splitlines() if line]


def annotate(corpus, detector, out, *extra):
    return execute(beam_annotate.STAGE, ["--input", str(corpus[0]), "--output", str(out), "--detector", str(detector),
                              "--images-root", str(COCO_IMAGES), "--device", "cpu", "--batch-size", "4",
                              *NLP_ARGS, *extra])[1]


@pytest.mark.parametrize("kind", ["owlvit", "grounding-dino"])
def test_annotates_unannotated_images_and_passes_the_rest_through(corpus, detectors, tmp_path, kind):
    path, records = corpus
    summary = annotate(corpus, detectors[kind], tmp_path / kind, "--box-threshold", "0.0", "--text-threshold", "0.0")
    assert summary == {**summary, "records": 35, "annotated": 19, "passed_through": 15, "failed": 1, "invalid": 0}
    out = {r["id"]: r for r in read_jsonl(tmp_path / kind / "records")}
    assert set(out) == {str(r["id"]) for r in records}  # nothing lost
    by_id = {str(r["id"]): r for r in records}
    for rid, record in out.items():
        original = by_id[rid]
        if not original.get("image") or "objects" in original or original["image"].startswith("missing/"):
            assert record == original  # passed through unchanged
            continue
        assert record["conversations"] == original["conversations"]
        assert record["objects"] == sorted({b["label"] for b in record["object_boxes"]})
        assert all(len(b["box"]) == 4 and 0.0 <= b["score"] <= 1.0 for b in record["object_boxes"])
    assert summary["mean_labels_per_image"] > 0
    failed = read_jsonl(tmp_path / kind / "failed")
    assert [(f["id"], f["reason"]) for f in failed] == [(str(records[19]["id"]), "bad-image")]


def test_thresholds_above_every_score_find_nothing(corpus, detectors, tmp_path):
    summary = annotate(corpus, detectors["owlvit"], tmp_path / "o", "--box-threshold", "1.01")
    annotated = [r for r in read_jsonl(tmp_path / "o" / "records") if "object_boxes" in r]
    assert len(annotated) == summary["annotated"] == 19
    assert all(r["objects"] == [] and r["object_boxes"] == [] for r in annotated)


def test_adr_run_with_a_detector_grounds_objects_before_the_statistics(corpus, detectors, tmp_path, spark):
    from pipelines import run

    out = tmp_path / "run"
    outcome = run.run(["--input", str(corpus[0]), "--output", str(out), "--detector", str(detectors["owlvit"]),
                       "--images-root", str(COCO_IMAGES), "--device", "cpu", "--box-threshold", "0.0",
                       "--accelerator", "type:nvidia-l4;count:1;install-nvidia-driver", *NLP_ARGS], spark=spark)
    assert outcome == dict.fromkeys(("annotate", "stats", "rebalance", "synthesize", "report"), "ran")
    manifest = json.loads((out / "stats" / "manifest.json").read_text())
    assert manifest["records"] == 35
    assert all(f.startswith(str(out / "annotate" / "records")) for f in manifest["input"]["files"])
    # 19 detected + 5 annotated records: the objects the detector found are counted.
    assert manifest["perspectives"]["object"]["entities"] > 0 and manifest["perspectives"]["cooccurrence"]["mass"] > 0
    rows = pq.read_table(out / "stats" / "dictionary").to_pylist()
    assert {r["perspective"] for r in rows} >= {"object", "cooccurrence"}
    assert (out / "report" / "index.html").exists()


def test_accelerator_hint_is_on_the_model_step_only():
    """On Dataflow the hint gives GPU workers to the detector/diffusion/LLM steps, not to reading."""
    import apache_beam as beam
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

    from pipelines.annotate.detection import DetectionHandler
    from pipelines.torch_env import on_accelerator

    hint = "type:nvidia-l4;count:1;install-nvidia-driver"
    p = beam.Pipeline()
    (p | "Read" >> beam.Create([("k", None)])
     | "Detect" >> on_accelerator(RunInference(KeyedModelHandler(DetectionHandler("unused"))), hint))
    proto = p.to_runner_api()
    hints = {t.unique_name: dict(t.environment_id and proto.components.environments[t.environment_id].resource_hints
                                 or {}) for t in proto.components.transforms.values()}
    accelerated = {name for name, h in hints.items() if h.get("beam:resources:accelerator:v1") == hint.encode()}
    assert "Detect" in accelerated and not any(name.startswith("Read") for name in accelerated)


@pytest.mark.needs_shared
def test_prompts_are_chunked_and_every_chunk_is_asked(detectors):
    from pipelines.annotate.detection import DetectionHandler

    image = Image.open(next(COCO_IMAGES.glob("*.jpg")))
    labels = ["cat", "dog", "person", "traffic light", "umbrella"]
    owl = DetectionHandler(str(detectors["owlvit"]), device="cpu").load_model()
    assert owl.label_chunks(labels, 2) == [["cat", "dog"], ["person", "traffic light"], ["umbrella"]]
    one_by_one = owl.detect([image], [labels], 0.0, 0.0, per_call=1)[0]
    assert {d.label for d in one_by_one} == set(labels)  # each single-label call labels every box
    dino = DetectionHandler(str(detectors["grounding-dino"]), device="cpu").load_model()
    many = [f"label{i}" for i in range(120)]
    parts = dino.label_chunks(many, 64)
    assert len(parts) > 1 and sum(parts, []) == many
    tok = dino.processor.tokenizer
    assert all(sum(len(tok(f"{l}.", add_special_tokens=False)["input_ids"]) for l in p) + 2 <= dino.text_budget
               for p in parts)
    found = dino.detect([image, image], [labels, labels[:2]], 0.0, 0.0, per_call=2)
    assert len(found) == 2 and {d.label for d in found[1]} <= {"cat", "dog"}
