"""Synthesis on Beam RunInference with tiny random-weight models, on real COCO_Tiny images."""

import json
import os
from pathlib import Path

import pytest
from apache_beam.ml.inference.base import PredictionResult
from PIL import Image

from adr.synthesis import parse_mix, plan_budget, synthetic_id
from pipelines.rebalance import job as beam_rebalance
from pipelines.stage import execute
from pipelines.stats import job as spark_stats
from pipelines.synthesize import job as beam_synthesize
from pipelines.synthesize import steps
from tests import tiny_models as tiny
from tests.conftest import COCO_IMAGES, NLP_ARGS
from tests.test_prompts import REPLY


@pytest.fixture(scope="module")
def corpus(coco, tmp_path_factory, spark):
    """One record for each of the 80 COCO_Tiny images (so no image is shared) describing it by
    its five captions, its objects, then stats and rebalancing: the inputs `adr synthesize`
    starts from. Five captions give a noun enough company to tell its sense."""
    from adr.coco import coco_records, objects_by_image

    captions, instances = coco
    objects = objects_by_image(instances)
    root = tmp_path_factory.mktemp("synth")
    first, described = {}, {}
    for record in coco_records(captions, objects, set(objects)):
        first.setdefault(record["image"], record)
        caption = record["conversations"][1]["value"].rstrip(". ")
        described.setdefault(record["image"], []).append(caption[:1].upper() + caption[1:] + ".")
    records = [{**r, "conversations": [r["conversations"][0], {"from": "gpt", "value": " ".join(described[i])}]}
               for i, r in first.items()]
    records[5] = {**records[5], "image": "missing/000.jpg"}  # a seed whose image is not there
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    execute(spark_stats.STAGE, ["--input", str(root / "corpus.jsonl"), "--output", str(root / "stats"), *NLP_ARGS], spark)[1]
    _, summary = execute(beam_rebalance.STAGE, ["--input", str(root / "corpus.jsonl"), "--dictionary", str(root / "stats"),
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
    """The stage on the 80-record corpus, whose tau is a count or two (a noun in two of its records
    is head): the ceiling is raised (a multiple of tau) and any tail share taken, so that the
    budget fits, except where a test gives its own."""
    root, _ = corpus
    ceiling = ([] if "--ceiling" in extra else ["--ceiling", "1000"]) + (
        [] if "--min-tail-share" in extra else ["--min-tail-share", "0"])
    return execute(beam_synthesize.STAGE, ["--rebalanced", str(root / "rebalanced"), "--dictionary", str(root / "stats"),
                                "--output", str(out), "--images-root", str(COCO_IMAGES), *ceiling, *extra])[1]


def made_for(record: dict) -> str:
    return "\x1f".join((record["adr"]["made_for"]["perspective"], record["adr"]["made_for"]["entity"]))


def test_synonym_replacement_alone_meets_the_budget_without_models(corpus, tmp_path):
    root, rebalanced = corpus
    summary = synthesize(corpus, tmp_path / "o", "--budget", "8")
    assert summary["skipped"].keys() == {"visual", "rewrite"}
    assert summary["planned"] == {"visual": 0, "synonym": 8, "rewrite": 0}
    synthetic = read_jsonl(tmp_path / "o" / "synthetic")
    assert len(synthetic) == summary["synthetic"] == 8 and summary["budget_met"]
    # seeds with no safe replacement are known before the rounds: few tries fail
    assert summary["offers_failed"] <= 0.1 * summary["offers_tried"]
    assert sum(summary["synonym_sources"].values()) == 8
    refined = read_jsonl(tmp_path / "o" / "refined")
    assert len(refined) == rebalanced["kept"] + 8 == summary["refined"]
    assert summary["output_format"] == "jsonl"  # the input was JSON Lines
    assert refined[-8:] == synthetic  # kept first, in input order, then synthetic
    seeds = {s["key"]: s for s in read_jsonl(root / "rebalanced" / "seeds")}
    for record in synthetic:
        seed = seeds[record["adr"]["seed_key"]]
        (r,) = record["adr"]["parameters"]["replacements"]  # one tail word a record: the one it was made for
        assert record["adr"]["made_for"] == {"perspective": "token", "entity": r["synonym"]}
        assert record["id"] == synthetic_id("synonym", seed["key"], 42, made_for(record))
        assert record["adr"]["seed_id"] == seed["id"]
        assert record["conversations"] != seed["record"]["conversations"]
        assert record.get("image") == seed["record"].get("image")
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


def test_the_pick_is_the_first_candidates_in_plan_order_and_no_round_holds_seeds(corpus, tmp_path):
    """The records made are, in order, the accepted candidates of smallest plan order, though
    rounds select offers by bin ranges of that order: a round directory holds its ranges,
    candidates, failures and accepted counts, no list of seeds."""
    from adr.synthesis import BINS, bin_of

    out = tmp_path / "o"
    summary = synthesize(corpus, out, "--budget", "8", "--overdraw", "1.0")
    assert summary["made"]["synonym"] == 8 and summary["short"] == {}
    places, covered = [], []
    for round_dir in sorted((out / "rounds").iterdir()):
        assert {p.name.split("-")[0] for p in round_dir.iterdir()} <= {"_done.json", "candidates", "failed",
                                                                       "tallies", "accepted"}, round_dir
        done = json.loads((round_dir / "_done.json").read_text())
        assert set(done["ranges"]) == {"synonym"}
        covered.append(tuple(done["ranges"]["synonym"]))
        lo, hi = covered[-1]
        for line in _bytes(round_dir, "candidates*").decode().splitlines():
            method, order, key, target, entities = json.loads(line.split("\t")[0])
            assert method == "synonym" and lo <= bin_of(order) < hi and 0 <= order < 1
            assert target[1] in entities["token"]  # the record carries the entity it was made for
            places.append((order, key, "\x1f".join(target)))
    assert covered[0][0] == 0 and all(a[1] == b[0] for a, b in zip(covered, covered[1:])) and covered[-1][1] <= BINS
    got = [(r["adr"]["seed_key"], made_for(r)) for r in read_jsonl(out / "synthetic")]
    assert got == [(key, target) for _, key, target in sorted(places)[:8]]


def test_no_tail_entity_is_lifted_past_its_ceiling(corpus, tmp_path):
    """With the default ceiling (each perspective's tau), every tail entity's count plus what the
    synthetic records add stays at or below tau, whatever the budget asks; plan/ says per entity
    what was planned and made, and the summary what fell short."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root, _ = corpus
    out = tmp_path / "o"
    summary = synthesize(corpus, out, "--budget", "40", "--ceiling", "2")
    manifest = json.loads((root / "stats" / "manifest.json").read_text())
    taus = {p: v["tau"] for p, v in manifest["perspectives"].items()}
    assert summary["ceilings"] == {p: 2 * t for p, t in taus.items()}
    dictionary = pq.read_table(root / "stats" / "dictionary").to_pylist()
    before = {(r["perspective"], r["entity"]): r["count"] for r in dictionary}
    added = {(r["perspective"], r["entity"]): r["count"]
             for r in pa.concat_tables([pq.read_table(p) for p in sorted((out / "entity_counts").glob("*.parquet"))])
             .to_pylist()}
    lifted = 0
    for (p, e), n in added.items():
        if before.get((p, e), 0) <= taus[p] and e not in summary["catch_alls"].get(p, []):
            assert before.get((p, e), 0) + n <= summary["ceilings"][p], (p, e)
            lifted += 1
    assert lifted >= summary["synthetic"] > 0
    plan = pa.concat_tables([pq.read_table(p) for p in sorted((out / "plan").glob("*.parquet"))]).to_pylist()
    made = {}
    for r in read_jsonl(out / "synthetic"):
        made[r["adr"]["made_for"]["entity"]] = made.get(r["adr"]["made_for"]["entity"], 0) + 1
    rows = {r["entity"]: r for r in plan if r["method"] == "synonym" and r["perspective"] == "token"}
    for entity, n in made.items():
        assert rows[entity]["made"] >= n and rows[entity]["count"] + rows[entity]["made"] <= rows[entity]["ceiling"]
    assert all(r["planned"] <= max(r["room"], 0) for r in plan)
    if not summary["budget_met"]:
        assert summary["short"]["synonym"]["made"] == summary["synthetic"] < 40


def test_refined_formats_are_the_one_writer_bytes_and_parquet_shards_in_order(corpus, tmp_path):
    """llava-json: refined.json, joined from fragments, is byte for byte what one writer makes of
    the kept lines then the synthetic ones; parquet: shards whose rows are, in order, those lines."""
    import pyarrow.parquet as pq

    from pipelines.synthesize.refined_writers import kept_lines, parquet_row

    root, _ = corpus
    flags = ["--budget", "6", "--direct_num_workers", "2", "--direct_running_mode", "multi_threading"]
    summary = synthesize(corpus, tmp_path / "a", *flags, "--output-format", "llava-json")
    lines = [line for f in sorted((root / "rebalanced" / "kept").glob("*.jsonl")) for line in kept_lines(str(f))]
    lines += [line for f in sorted((tmp_path / "a" / "synthetic").glob("*.jsonl"))
              for line in f.read_text().splitlines() if line]
    (tmp_path / "one.json").write_text("[" + ", ".join(lines) + "]", encoding="utf-8")  # one writer, all at once
    assert summary["refined_path"] == str(tmp_path / "a" / "refined" / "refined.json")
    assert [p.name for p in (tmp_path / "a" / "refined").iterdir()] == ["refined.json"]
    assert (tmp_path / "a" / "refined" / "refined.json").read_bytes() == (tmp_path / "one.json").read_bytes()

    summary = synthesize(corpus, tmp_path / "p", *flags, "--output-format", "parquet")
    parts = sorted((tmp_path / "p" / "refined").glob("part-*.parquet"))
    assert summary["refined_path"] == str(tmp_path / "p" / "refined") and len(parts) > 2
    rows = [row for p in parts for row in pq.read_table(p).to_pylist()]
    assert rows == [parquet_row(json.loads(line)) for line in lines]


def test_entity_counts_of_the_synthetic_records_equal_a_recount(corpus, tmp_path):
    """OUT/entity_counts/: what the statistics' reference (pipelines.stats.local) finds tagging synthetic/."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.stats.local import local_stats

    root, _ = corpus
    out = tmp_path / "o"
    summary = synthesize(corpus, out, "--budget", "8", "--direct_num_workers", "2",
                         "--direct_running_mode", "multi_threading")
    manifest = json.loads((root / "stats" / "manifest.json").read_text())
    nlp = manifest["parameters"]["nlp"]
    perspectives = tuple(manifest["perspectives"])
    recount = local_stats(sorted(map(str, (out / "synthetic").glob("*.jsonl"))), perspectives,
                          None if nlp == "default" else nlp, keep_entities=False)[0]
    assert recount.records == summary["entity_counts_records"] == 8
    parts = sorted((out / "entity_counts").glob("*.parquet"))
    assert len(parts) == 2
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    assert table.schema == pa.schema([("perspective", pa.string()), ("entity", pa.string()), ("count", pa.int64())])
    rows = table.to_pylist()
    assert len({(r["perspective"], r["entity"]) for r in rows}) == len(rows)
    got = {p: {r["entity"]: r["count"] for r in rows if r["perspective"] == p} for p in perspectives}
    assert got == {p: dict(recount.counts.get(p, {})) for p in perspectives}
    assert sum(len(v) for v in got.values()) > 8


def test_visual_synthesis_runs_every_model_and_hands_its_shortfall_on(corpus, models, tmp_path):
    """Random weights never write the reply format: every reply fails to parse, the driver
    retries on further seeds until the pool runs out, says so, and hands what visual still owes
    to the other methods: rewrite offers nothing (no piece of these records fits a reply of 8
    tokens, so none is tried to fail), and synonym fills it all."""
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
    from adr.reply_checks import REASONS

    assert summary["seed_pools"]["rewrite"] == 0 and not [f for f in failed if f["method"] == "rewrite"]
    assert {f["reason"] for f in visual_failed} <= set(REASONS) | {"bad-image"}
    images = sorted((out / "images" / steps.IMAGE_DIR).glob("*.png"))
    assert len(images) == pool - 1
    assert {Image.open(p).size for p in images} == {(64, 64)}
    assert len(read_jsonl(out / "refined")) == summary["refined"]


def test_an_empty_visual_pool_still_refills_the_budget_exactly(coco_jsonl, coco_stats, models, tmp_path):
    """COCO captions: five records share each image, so no seed qualifies for visual synthesis
    (spec: only images no other record uses). Its 60% goes to the other methods, rewrite's
    unparseable replies go to synonym, and the budget is met exactly. (One short caption a
    record seldom shows a noun's sense: about 30 of the 500 records have a synonym to offer, so
    the budget is set below that, and the tiny tau raised.)"""
    stats, _ = coco_stats
    _, rebalanced = execute(beam_rebalance.STAGE, ["--input", str(coco_jsonl), "--dictionary", str(stats),
                                        "--output", str(tmp_path / "rebalanced")])
    out = tmp_path / "synth"
    budget = 20
    summary = execute(beam_synthesize.STAGE, [
        "--rebalanced", str(tmp_path / "rebalanced"), "--dictionary", str(stats), "--output", str(out),
        "--images-root", str(COCO_IMAGES), "--mix", "visual=0.6,synonym=0.2,rewrite=0.2",
        "--image-model", str(models["img2img"]), "--image-variant", "img2img", "--caption-model", str(models["captioner"]),
        "--llm", str(models["llm"]), "--size", "64", "--steps", "2", "--max-new-tokens", "24", "--device", "cpu",
        "--ceiling", "1000", "--min-tail-share", "0", "--budget", str(budget)])[1]  # a reply that holds a caption
    assert summary["seed_pools"]["visual"] == 0
    assert summary["planned"]["visual"] == plan_budget(budget, parse_mix("visual=0.6,synonym=0.2,rewrite=0.2"))["visual"]
    assert summary["made"]["visual"] == 0 and summary["made"]["synonym"] == budget
    first = summary["reassigned"][0]
    assert first["from"] == "visual" and first["records"] == summary["planned"]["visual"]
    assert set(first["to"]) == {"synonym", "rewrite"}
    assert summary["budget_met"] and summary["refined"] == rebalanced["kept"] + budget
    assert len(read_jsonl(out / "refined")) == summary["refined"]


CAPTION = ("Three people load suitcases and backpacks into a black sport utility vehicle (SUV) parked in an "
           "underground garage.")


def test_a_checked_conversation_becomes_a_record_with_provenance(corpus):
    from pipelines.synthesize.steps import Work

    root, _ = corpus
    seeds = {s["key"]: s for s in read_jsonl(root / "rebalanced" / "seeds")}
    seed = next(s for s in seeds.values() if not s["image_shared"])
    work = Work("visual", 0.25, seed["key"], seed["id"], seed["tail_entities"], image="adr-synthetic/abc.png",
                caption=CAPTION, target=("object", "suitcase"))
    two = REPLY[:REPLY.index("Question:\nWhat challenges")].replace("near the SUV, loading luggage into it",
                                                                     "by the SUV, loading suitcases into it")
    out = list(steps.conversation_record((work, PredictionResult([], two, "llm-dir")), {"llm": "llm-dir"},
                                         {"seed": 42}, 42, None))
    (carried, record), = out
    assert carried == work and record["image"] == "adr-synthetic/abc.png"
    assert record["id"] == synthetic_id("visual", seed["key"], 42, "object\x1fsuitcase")
    assert record["adr"]["made_for"] == {"perspective": "object", "entity": "suitcase"}
    assert [t["from"] for t in record["conversations"]] == ["human", "gpt"] * 2
    assert record["conversations"][0]["value"].startswith("<image>\nWhat type of vehicle")
    assert record["adr"]["method"] == "visual" and record["adr"]["seed_id"] == seed["id"]
    assert record["adr"]["seed_key"] == seed["key"]
    assert record["adr"]["tail_entities"] == seed["tail_entities"]
    assert record["adr"]["parameters"] == {"seed": 42, "caption": CAPTION}


@pytest.mark.parametrize("reply, reason, detail", [
    ("no blocks here", "unparseable-reply", "no Question/Answer blocks"),
    (REPLY, "unsupported-noun", "item, packing, trouble"),  # reasoning the caption does not hold
    ("Question:\nThe vehicle is black.\n===\nAnswer:\nYes.\n===", "not-a-question", "The vehicle is black."),
    ("Question:\nWhat is parked?\n===\nAnswer:\nA black SUV.\n===", "missing-target", "'suitcase'"),
    ("Question:\nWhat is in the garage?\n===\nAnswer:\nSure! Here is a suitcase.\n===", "chatty-reply", "Sure"),
])
def test_a_conversation_that_fails_a_check_is_refused_with_its_reason(corpus, reply, reason, detail):
    from pipelines.synthesize.steps import Work

    root, _ = corpus
    seed = next(s for s in read_jsonl(root / "rebalanced" / "seeds") if not s["image_shared"])
    work = Work("visual", 0.25, seed["key"], seed["id"], seed["tail_entities"], image="adr-synthetic/abc.png",
                caption=CAPTION, target=("object", "suitcase"))
    bad = list(steps.conversation_record((work, PredictionResult([], reply, "m")), {}, {}, 42, None))
    assert len(bad) == 1 and bad[0].tag == beam_synthesize.FAILED
    assert bad[0].value["reason"] == reason and detail in bad[0].value["detail"]
    assert reply[:200] in bad[0].value["detail"]  # what the model wrote, for the user to read
    assert bad[0].value["seed_key"] == seed["key"] and bad[0].value["order"] == 0.25


def test_a_missing_model_is_a_one_line_error(corpus, tmp_path):
    import subprocess
    import sys

    root, _ = corpus
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "synthesize", "--rebalanced", str(root / "rebalanced"),
                           "--dictionary", str(root / "stats"), "--output", str(tmp_path / "o"),
                           "--llm", str(tmp_path / "no-such-model")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no such directory" in proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr


@pytest.mark.needs_shared
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


@pytest.mark.needs_shared
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


def test_a_large_local_run_uses_every_core_unless_the_user_said_otherwise():
    from pipelines.local_workers import PARALLEL_INPUT_BYTES, with_local_workers

    big, small = PARALLEL_INPUT_BYTES, PARALLEL_INPUT_BYTES - 1
    assert with_local_workers([], big, cores=4) == ["--direct_num_workers=4", "--direct_running_mode=multi_processing"]
    assert with_local_workers([], small, cores=4) == []
    assert with_local_workers([], big, cores=1) == []
    for given in (["--direct_num_workers", "1"], ["--direct_running_mode=in_memory"],
                  ["--runner", "DataflowRunner"], ["--runner=PortableRunner"]):
        assert with_local_workers(given, big, cores=4) == given



def _graph_plan(corpus):
    """The stage's plan for the corpus as `synthesize` runs it (a raised ceiling, any tail share)."""
    root, _ = corpus
    args, _ = beam_synthesize.configure(["--rebalanced", str(root / "rebalanced"), "--dictionary", str(root / "stats"),
                                         "--output", str(root / "unused"), "--ceiling", "1000",
                                         "--min-tail-share", "0"])
    return beam_synthesize.make_plan(args)


def _synonym_offers(line: str, plan) -> list[tuple[str, str, str]]:
    """(seed key, synonym, noun) of each synonym offer of a seed line."""
    from pipelines.synthesize.offers import offer_lines, split_offer

    return [(o[2], o[4], o[5]["noun"]) for o in map(split_offer, offer_lines([line], plan.context, plan.nlp))
            if o[0] == "synonym"]


def test_the_synthesis_graphs_take_their_sources_as_pcollections(corpus):
    """Offers and SynthesisRound given Create inputs: a seed whose noun stands alone, with no other
    noun to show its sense, is offered nothing; a round refuses the candidate whose target the
    earlier rounds took to its ceiling, and makes it when one place is left, the others alike."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    from adr.synthesis import BINS
    from pipelines.synthesize.offers import Offers
    from pipelines.synthesize.rounds import SynthesisRound

    root, _ = corpus
    plan = _graph_plan(corpus)
    seeds = [line for f in sorted((root / "rebalanced" / "seeds").glob("*.jsonl")) for line in f.read_text().splitlines()]
    (first, first_offers), (second, second_offers) = [
        (line, offers) for line in seeds if (offers := _synonym_offers(line, plan))][:2]
    key, target, noun = first_offers[0]
    assert target not in {t for _, t, _ in second_offers}
    # The first seed's offered noun, in a record of its own: the same synonyms, no evidence of its sense.
    alone = json.dumps({**json.loads(first), "key": key + "-alone", "entities": {"token": [noun]},
                        "record": {"conversations": [{"from": "human", "value": "What is it?"},
                                                     {"from": "gpt", "value": f"It is a {noun}."}]}})
    offered = sorted((k, t) for k, t, _ in first_offers + second_offers)
    room = plan.context.room("token", target)

    with beam.Pipeline(options=PipelineOptions(flags=[])) as p:
        offers = p | "Seeds" >> beam.Create([first, second, alone]) | "Offers" >> Offers(plan.context, plan.nlp)
        assert_that(offers["offers"] | "OfferIds" >> beam.Map(lambda line: tuple(json.loads(line.split("\t")[0])[2:5:2])),
                    equal_to(offered), label="OnlySeedsWithEvidence")
        for name, parts, refused in (("OneLeft", [room - 1], []), ("NoneLeft", [room - 1, 1], [(key, target)])):
            accepted = p | f"Accepted{name}" >> beam.Create([(("token", target), n) for n in parts])
            out = ({"offers": offers["offers"], "offer_counts": offers["counts"], "accepted": accepted}
                   | name >> SynthesisRound(plan, {"synonym": (0, BINS)}))
            assert_that(out["candidates"] | f"Made{name}" >> beam.Map(lambda c: (c[0].seed_key, c[0].target[1])),
                        equal_to([x for x in offered if x not in refused]), label=f"Records{name}")
            assert_that(out["failed"] | f"Refused{name}" >> beam.Map(
                lambda f: (f["seed_key"], f["made_for"][1], f["reason"],
                           f"token '{f['made_for'][1]}' at its ceiling" in f["detail"])),
                        equal_to([(k, t, "past-ceiling", True) for k, t in refused]), label=f"Failures{name}")
            assert_that(out["accepted"] | f"Target{name}" >> beam.Filter(lambda kv: kv[0] == ("token", target)),
                        equal_to([] if refused else [(("token", target), 1)]), label=f"Accepted{name}Out")
