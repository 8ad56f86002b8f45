"""Synthesis on Beam RunInference with tiny random-weight models, on real COCO_Tiny images."""

import json
import os
from pathlib import Path

import pytest
from apache_beam.ml.inference.base import PredictionResult
from PIL import Image

from adr.synthesis import parse_mix, plan_budget, synthetic_id
from pipelines.synthesize import steps
from pipelines.stats import job as spark_stats
from pipelines.rebalance import job as beam_rebalance
from pipelines.synthesize import job as beam_synthesize
from tests import tiny_models as tiny
from tests.conftest import COCO_IMAGES, NLP_ARGS
from tests.test_prompts import REPLY


@pytest.fixture(scope="module")
def corpus(coco, tmp_path_factory, spark):
    """One caption for each of the 80 COCO_Tiny images (so no image is shared), their objects,
    then stats and rebalancing: the inputs `adr synthesize` starts from."""
    from adr.coco import coco_records, objects_by_image

    captions, instances = coco
    objects = objects_by_image(instances)
    root = tmp_path_factory.mktemp("synth")
    first = {}
    for record in coco_records(captions, objects, set(objects)):
        first.setdefault(record["image"], record)
    records = list(first.values())
    records[5] = {**records[5], "image": "missing/000.jpg"}  # a seed whose image is not there
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    spark_stats.run(["--input", str(root / "corpus.jsonl"), "--output", str(root / "stats"), *NLP_ARGS], spark=spark)
    _, summary = beam_rebalance.run(["--input", str(root / "corpus.jsonl"), "--dictionary", str(root / "stats"),
                                     "--output", str(root / "rebalanced")])
    return root, summary


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"img2img": tiny.build_sd_img2img(root / "img2img"),
            "variation": tiny.build_sd_image_variation(root / "variation"),
            "controlnet": tiny.build_controlnet(root / "controlnet"),
            "captioner": tiny.build_captioner(root / "captioner"),
            "llm": tiny.build_causal_lm(root / "llm")}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(path.glob("*.jsonl")) for line in f.read_text().splitlines() if line]


def synthesize(corpus, out, *extra):
    root, _ = corpus
    return beam_synthesize.run(["--rebalanced", str(root / "rebalanced"), "--dictionary", str(root / "stats"),
                                "--output", str(out), "--images-root", str(COCO_IMAGES), *extra])


def test_synonym_replacement_alone_meets_the_budget_without_models(corpus, tmp_path):
    root, rebalanced = corpus
    summary = synthesize(corpus, tmp_path / "o", "--budget", "8")
    assert summary["skipped"].keys() == {"visual", "rewrite"}
    assert summary["planned"] == {"visual": 0, "synonym": 8, "rewrite": 0}
    synthetic = read_jsonl(tmp_path / "o" / "synthetic")
    assert len(synthetic) == summary["synthetic"] == 8 and summary["budget_met"]
    # seeds with no safe replacement were skipped, with their reason, and further seeds tried
    failed = read_jsonl(tmp_path / "o" / "failed")
    assert failed and {f["reason"] for f in failed} == {"no-safe-synonym"}
    assert sum(summary["synonym_sources"].values()) == sum(len(r["adr"]["parameters"]["replacements"])
                                                          for r in synthetic)
    refined = read_jsonl(tmp_path / "o" / "refined")
    assert len(refined) == rebalanced["kept"] + 8 == summary["refined"]
    assert summary["output_format"] == "jsonl"  # the input was JSON Lines
    assert refined[-8:] == synthetic  # kept first, in input order, then synthetic
    seeds = {s["key"]: s for s in read_jsonl(root / "rebalanced" / "seeds")}
    for record in synthetic:
        seed = seeds[record["adr"]["seed_key"]]
        assert record["id"] == synthetic_id("synonym", seed["key"], 42) and record["adr"]["seed_id"] == seed["id"]
        assert record["conversations"] != seed["record"]["conversations"]
        assert record.get("image") == seed["record"].get("image")
        replacements = record["adr"]["parameters"]["replacements"]
        assert 1 <= len(replacements) <= 3
        for r in replacements:
            assert r["synonym"] in json.dumps(record["conversations"]).lower() and r["source"] in ("tail", "unseen")
            assert r["occurrences"] >= 1
    # the same seed gives the same output
    again = synthesize(corpus, tmp_path / "again", "--budget", "8")
    assert read_jsonl(tmp_path / "again" / "synthetic") == synthetic and again["made"] == summary["made"]


def _bytes(folder: Path, pattern: str = "*") -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.glob(pattern)))


def test_synthesis_gives_the_same_records_on_every_runner(corpus, tmp_path):
    """The rounds run on the multi-process direct runner and the PortableRunner as on the
    DirectRunner: the same seeds, the same records, in the same order. Two workers write
    synthetic/ and refined/ as two shards each, whose bytes concatenate to the one-worker run's."""
    direct = synthesize(corpus, tmp_path / "direct", "--budget", "6")
    expected = read_jsonl(tmp_path / "direct" / "synthetic")
    assert len(list((tmp_path / "direct" / "synthetic").glob("*.jsonl"))) == direct["shards"] == 1
    runners = {"multi-process": ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"],
               "portable": ["--runner", "PortableRunner", "--job_endpoint", "embed", "--environment_type", "LOOPBACK"]}
    for name, flags in runners.items():
        summary = synthesize(corpus, tmp_path / name, "--budget", "6", *flags)
        assert read_jsonl(tmp_path / name / "synthetic") == expected, name
        assert summary["made"] == direct["made"] and summary["budget_met"], name
        for folder in ("synthetic", "refined", "failed"):
            assert _bytes(tmp_path / name / folder) == _bytes(tmp_path / "direct" / folder), (name, folder)
    shards = sorted((tmp_path / "multi-process" / "synthetic").glob("part-*.jsonl"))
    assert len(shards) == 2 and all(p.read_text() for p in shards)
    kept_files = len(list((corpus[0] / "rebalanced" / "kept").glob("*.jsonl")))
    assert len(list((tmp_path / "multi-process" / "refined").glob("part-*.jsonl"))) == kept_files + 2


def test_the_pick_is_the_first_successes_in_seed_order_and_no_round_holds_seeds(corpus, tmp_path):
    """The records made are, in order, the pool's first successful seeds by seed_order (computed
    here from the seed files and the failures), though rounds select seeds by bin ranges of
    their draw: a round directory holds its ranges, candidates and counts, no list of seeds."""
    from adr.synthesis import BINS, bin_of, draw, seed_order

    root, _ = corpus
    out = tmp_path / "o"
    summary = synthesize(corpus, out, "--budget", "8", "--overdraw", "1.0")
    assert summary["rounds"] >= 2 and summary["made"]["synonym"] == 8
    pool = [s["key"] for s in read_jsonl(root / "rebalanced" / "seeds") if s["tail_entities"].get("token")]
    assert summary["seed_pools"]["synonym"] == len(pool)
    failed = {f["seed_key"] for f in read_jsonl(out / "failed") if f["method"] == "synonym"}
    expected = [k for k in seed_order(pool, 42, "synonym") if k not in failed][:8]
    assert [r["adr"]["seed_key"] for r in read_jsonl(out / "synthetic")] == expected

    covered = []
    for round_dir in sorted((out / "rounds").iterdir()):
        assert {p.name.split("-")[0] for p in round_dir.iterdir()} <= {"_done.json", "candidates", "failed",
                                                                       "tallies"}, round_dir
        done = json.loads((round_dir / "_done.json").read_text())
        assert set(done["ranges"]) == {"synonym"}
        covered.append(tuple(done["ranges"]["synonym"]))
        lo, hi = covered[-1]
        drawn = [k for k in pool if lo <= bin_of(draw(42, k, "synonym")) < hi]
        assert done["counts"]["tried"]["synonym"] == len(drawn)
        for line in _bytes(round_dir, "candidates*").decode().splitlines():
            method, u, key = json.loads(line.split("\t")[0])
            assert method == "synonym" and lo <= bin_of(u) < hi and key in drawn
    assert covered[0][0] == 0 and all(a[1] == b[0] for a, b in zip(covered, covered[1:])) and covered[-1][1] <= BINS
    assert summary["short"] == {}


def test_refined_formats_are_the_one_writer_bytes_and_parquet_shards_in_order(corpus, tmp_path):
    """llava-json: refined.json, joined from fragments, is byte for byte what one writer makes of
    the kept lines then the synthetic ones; parquet: shards whose rows are, in order, those lines."""
    import pyarrow.parquet as pq

    from pipelines.synthesize.refined_writers import kept_lines, parquet_row, write_llava_json

    root, _ = corpus
    flags = ["--budget", "6", "--direct_num_workers", "2", "--direct_running_mode", "multi_threading"]
    summary = synthesize(corpus, tmp_path / "a", *flags, "--output-format", "llava-json")
    lines = [line for f in sorted((root / "rebalanced" / "kept").glob("*.jsonl")) for line in kept_lines(str(f))]
    lines += [line for f in sorted((tmp_path / "a" / "synthetic").glob("*.jsonl"))
              for line in f.read_text().splitlines() if line]
    write_llava_json(str(tmp_path / "one.json"), lines)
    assert summary["refined_path"] == str(tmp_path / "a" / "refined" / "refined.json")
    assert [p.name for p in (tmp_path / "a" / "refined").iterdir()] == ["refined.json"]
    assert (tmp_path / "a" / "refined" / "refined.json").read_bytes() == (tmp_path / "one.json").read_bytes()

    summary = synthesize(corpus, tmp_path / "p", *flags, "--output-format", "parquet")
    parts = sorted((tmp_path / "p" / "refined").glob("part-*.parquet"))
    assert summary["refined_path"] == str(tmp_path / "p" / "refined") and len(parts) > 2
    rows = [row for p in parts for row in pq.read_table(p).to_pylist()]
    assert rows == [parquet_row(json.loads(line)) for line in lines]


def test_entity_counts_of_the_synthetic_records_equal_a_recount(corpus, tmp_path):
    """OUT/entity_counts/: what udfs.entity_counts.counts_of_files finds tagging synthetic/."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from udfs.entity_counts import counts_of_files

    root, _ = corpus
    out = tmp_path / "o"
    summary = synthesize(corpus, out, "--budget", "8", "--direct_num_workers", "2",
                         "--direct_running_mode", "multi_threading")
    manifest = json.loads((root / "stats" / "manifest.json").read_text())
    nlp = manifest["parameters"]["nlp"]
    perspectives = tuple(manifest["perspectives"])
    recount, records = counts_of_files(sorted(map(str, (out / "synthetic").glob("*.jsonl"))), perspectives,
                                       None if nlp == "default" else nlp, processes=1)
    assert records == summary["entity_counts_records"] == 8
    parts = sorted((out / "entity_counts").glob("*.parquet"))
    assert len(parts) == 2
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    assert table.schema == pa.schema([("perspective", pa.string()), ("entity", pa.string()), ("count", pa.int64())])
    rows = table.to_pylist()
    assert len({(r["perspective"], r["entity"]) for r in rows}) == len(rows)
    got = {p: {r["entity"]: r["count"] for r in rows if r["perspective"] == p} for p in perspectives}
    assert got == {p: dict(recount[p]) for p in perspectives}
    assert sum(len(v) for v in got.values()) > 8


def test_visual_synthesis_runs_every_model_and_hands_its_shortfall_on(corpus, models, tmp_path):
    """Random weights never write the reply format: every reply fails to parse, the driver
    retries on further seeds until the pool runs out, says so, and hands what visual still owes
    to the other methods: rewrite (the same random LLM) fails too, and synonym fills it all."""
    out = tmp_path / "visual"
    summary = synthesize(corpus, out, "--budget", "4", "--mix", "visual=1", "--image-model",
                         str(models["img2img"]), "--image-variant", "img2img", "--caption-model", str(models["captioner"]),
                         "--llm", str(models["llm"]), "--size", "64", "--steps", "2", "--max-new-tokens", "8", "--caption-max-new-tokens", "6",
                         "--batch-size", "3", "--device", "cpu")
    pool = summary["seed_pools"]["visual"]
    assert pool >= 60
    assert summary["made"] == {"visual": 0, "synonym": 4, "rewrite": 0} and summary["budget_met"]
    assert summary["short"] == {}
    assert summary["reassigned"][0]["from"] == "visual" and summary["reassigned"][0]["records"] == 4
    assert summary["reassigned"][-1]["to"] == {"synonym": summary["reassigned"][-1]["records"]}
    failed = read_jsonl(out / "failed")
    visual_failed = [f for f in failed if f["method"] == "visual"]
    assert {f["reason"] for f in visual_failed} == {"bad-image", "unparseable-reply"} and len(visual_failed) == pool
    assert {f["reason"] for f in failed if f["method"] == "rewrite"} == {"unparseable-reply"}
    images = sorted((out / "images" / steps.IMAGE_DIR).glob("*.png"))
    assert len(images) == pool - 1
    assert {Image.open(p).size for p in images} == {(64, 64)}
    assert len(read_jsonl(out / "refined")) == summary["refined"]


def test_an_empty_visual_pool_still_refills_the_budget_exactly(coco_jsonl, coco_stats, models, tmp_path):
    """COCO captions: five records share each image, so no seed qualifies for visual synthesis
    (spec: only images no other record uses). Its 60% goes to the other methods, rewrite's
    unparseable replies go to synonym, and the refined corpus is as large as the input."""
    stats, _ = coco_stats
    _, rebalanced = beam_rebalance.run(["--input", str(coco_jsonl), "--dictionary", str(stats),
                                        "--output", str(tmp_path / "rebalanced")])
    out = tmp_path / "synth"
    summary = beam_synthesize.run([
        "--rebalanced", str(tmp_path / "rebalanced"), "--dictionary", str(stats), "--output", str(out),
        "--images-root", str(COCO_IMAGES), "--mix", "visual=0.6,synonym=0.2,rewrite=0.2",
        "--image-model", str(models["img2img"]), "--image-variant", "img2img", "--caption-model", str(models["captioner"]),
        "--llm", str(models["llm"]), "--size", "64", "--steps", "2", "--max-new-tokens", "4", "--device", "cpu"])
    budget = rebalanced["budget"]
    assert budget > 20 and summary["seed_pools"]["visual"] == 0
    assert summary["planned"]["visual"] == plan_budget(budget, parse_mix("visual=0.6,synonym=0.2,rewrite=0.2"))["visual"]
    assert summary["made"]["visual"] == 0 and summary["made"]["synonym"] == budget
    first = summary["reassigned"][0]
    assert first["from"] == "visual" and first["records"] == summary["planned"]["visual"]
    assert set(first["to"]) == {"synonym", "rewrite"}
    assert summary["budget_met"] and summary["refined"] == summary["input"] == rebalanced["input"]
    assert len(read_jsonl(out / "refined")) == rebalanced["input"]


def test_a_parsed_reply_becomes_a_record_with_provenance(corpus):
    from pipelines.synthesize.steps import Work

    root, _ = corpus
    seeds = {s["key"]: s for s in read_jsonl(root / "rebalanced" / "seeds")}
    seed = next(s for s in seeds.values() if not s["image_shared"])
    work = Work("visual", 0.25, seed["key"], seed["id"], seed["tail_entities"], image="adr-synthetic/abc.png",
                caption="A cat.")
    out = list(steps.parsed_record((work, PredictionResult([], REPLY, "llm-dir")), "visual",
                                             {"llm": "llm-dir"}, {"seed": 42}, 42))
    (carried, record), = out
    assert carried == work and record["image"] == "adr-synthetic/abc.png"
    assert record["id"] == synthetic_id("visual", seed["key"], 42)
    assert [t["from"] for t in record["conversations"]] == ["human", "gpt"] * 3
    assert record["conversations"][0]["value"].startswith("<image>\nWhat type of vehicle")
    assert record["adr"]["method"] == "visual" and record["adr"]["seed_id"] == seed["id"]
    assert record["adr"]["seed_key"] == seed["key"]
    assert record["adr"]["tail_entities"] == seed["tail_entities"]
    assert record["adr"]["parameters"] == {"seed": 42, "caption": "A cat."}
    bad = list(steps.parsed_record((work, PredictionResult([], "no blocks here", "m")), "rewrite",
                                             {}, {}, 42))
    assert bad[0].tag == beam_synthesize.FAILED and bad[0].value["reason"] == "unparseable-reply"
    assert bad[0].value["seed_key"] == seed["key"] and bad[0].value["u"] == 0.25


def test_a_missing_model_is_a_one_line_error(corpus, tmp_path):
    import subprocess
    import sys

    root, _ = corpus
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "synthesize", "--rebalanced", str(root / "rebalanced"),
                           "--dictionary", str(root / "stats"), "--output", str(tmp_path / "o"),
                           "--llm", str(tmp_path / "no-such-model")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no such directory" in proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("variant", ["variation", "controlnet", "img2img"])
def test_diffusion_variants_batch_and_are_deterministic_under_a_seed(models, variant):
    import numpy as np

    from pipelines.synthesize.handlers.diffusion import DiffusionHandler, SeedImage

    image = Image.open(next(COCO_IMAGES.glob("*.jpg")))
    handler = DiffusionHandler(str(models[variant]), variant=variant, steps=2, size=64, candidates=2,
                               device="cpu", max_batch_size=3)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 1, "max_batch_size": 3}
    assert handler.share_model_across_processes()
    model = handler.load_model()
    batch = [SeedImage(f"s{i}", image, "a photo of a dog") for i in range(3)]
    first, second = handler.run_inference(batch, model), handler.run_inference(batch, model)
    assert [r.inference.size for r in first] == [(64, 64)] * 3
    assert [r.example.key for r in first] == ["s0", "s1", "s2"]
    assert all(np.array_equal(np.array(a.inference), np.array(b.inference)) for a, b in zip(first, second))
    assert not np.array_equal(np.array(first[0].inference), np.array(first[1].inference))


def test_captioner_batches(models):
    from pipelines.synthesize.handlers.captioning import CaptionHandler

    image = Image.open(next(COCO_IMAGES.glob("*.jpg")))
    captioner = CaptionHandler(str(models["captioner"]), device="cpu", max_new_tokens=4)
    captions = captioner.run_inference([image, image], captioner.load_model())
    assert len(captions) == 2 and all(isinstance(c.inference, str) for c in captions)
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_a_cuda_request_without_a_gpu_warns_and_runs_on_the_cpu(caplog):
    import torch

    from adr.errors import ConfigError
    from pipelines.torch_env import resolve_device

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with caplog.at_level("WARNING"):
        assert resolve_device("cuda") == "cpu"
    assert "no CUDA GPU is available" in caplog.text
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ConfigError):
        resolve_device("tpu")
