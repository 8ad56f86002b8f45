"""The whole pipeline on a corpus of LLaVA-1.5 mix665k's shape: one JSON array on one line, `id`
the image id (about 38% of records repeat one), byte-identical copies, text-only chats.

Record identity is the key, never `id`: repeated ids are legitimate records, decided by the keep
rule like any other; the refined corpus is one JSON array LLaVA's trainer loads as it is.
"""

import contextlib
import io
import json
import os
import random
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from adr.records import canonical_json
from pipelines import run
from pipelines.rebalance import job as beam_rebalance
from pipelines.stage import execute
from pipelines.stats import job as spark_stats
from pipelines.synthesize import steps
from scripts.make_llava_mix import generate, write
from tests.conftest import COCO_IMAGES, NLP_ARGS, SHARED

pytestmark = pytest.mark.slow  # adr run on a 2,000-record LLaVA-shaped array

RECORDS = 2000


@pytest.fixture(scope="module")
def mix(shared_data, tmp_path_factory):
    """(path of the one-line array, its records)."""
    root = tmp_path_factory.mktemp("mix")
    records = list(generate(RECORDS, seed=3, exact_duplicates=0.005, data_dir=SHARED))
    path = root / "llava_mix.json"
    write(path, records)
    return path, records


@pytest.fixture(scope="module")
def image_folder(mix, tmp_path_factory):
    """An --image_folder holding every image the corpus names (links to one real COCO image)."""
    folder = tmp_path_factory.mktemp("images")
    photo = next(COCO_IMAGES.glob("*.jpg"))
    for record in mix[1]:
        if "image" in record:
            target = folder / record["image"]
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.link(photo, target)
    return folder


@pytest.fixture(scope="module")
def mix_run(mix, image_folder, spark, tmp_path_factory):
    """`adr run` on the array: (run dir, stage outcomes, stderr)."""
    out = tmp_path_factory.mktemp("mix-run") / "run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        # 2,000 records: tau is a count or two and few nouns show their sense, so the default
        # ceilings leave almost no room; a high ceiling lets the run make synthetic records.
        outcome = run.run(["--input", str(mix[0]), "--output", str(out), "--images-root", str(image_folder),
                           "--master", "local[2]", "--ceiling", "1000", "--min-tail-share", "0", *NLP_ARGS],
                          spark=spark)
    return out, outcome, err.getvalue()


def _summaries(out: Path):
    return [json.loads((out / stage / name).read_text()) for stage, name in
            (("stats", "manifest.json"), ("rebalance", "summary.json"), ("synthesize", "summary.json"))]


def _jsonl(folder: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(folder.glob("*.jsonl")) for line in f.read_text().splitlines() if line]


def _canonical(records) -> Counter:
    return Counter(canonical_json(r) for r in records)


def test_the_corpus_has_the_real_files_shape(mix):
    path, records = mix
    data = path.read_bytes()
    assert data.count(b"\n") == 0 and data.startswith(b"[{")
    ids = Counter(str(r["id"]) for r in records)
    repeated = sum(n - 1 for n in ids.values())
    assert 0.34 < repeated / len(records) < 0.41
    assert len(records) - len(_canonical(records)) >= 5  # byte-identical copies


def test_repeated_ids_are_records_and_counts_add_up(mix, mix_run):
    path, records = mix
    out, outcome, _ = mix_run
    manifest, rebalance, synthesize = _summaries(out)
    ids = Counter(str(r["id"]) for r in records)
    copies = len(records) - len(_canonical(records))
    assert manifest["invalid"] == 0 == rebalance["invalid"]
    assert manifest["records"] + manifest["invalid"] == manifest["elements_read"] == len(records)
    assert manifest["repeated_ids"] == rebalance["repeated_ids"] == sum(n - 1 for n in ids.values())
    assert manifest["exact_duplicates"] == rebalance["exact_duplicates"] == copies
    # one entities/ row per record, each under its own key
    keys = pq.read_table(out / "stats" / "entities", columns=["key"])["key"].to_pylist()
    assert len(keys) == len(set(keys)) == len(records)
    assert rebalance["kept"] + rebalance["dropped"] == len(records)
    # Records sharing an id are decided each on its own entities: among ids with several records,
    # some have records both kept and dropped.
    kept = _canonical(_jsonl(out / "rebalance" / "kept"))
    split = {str(r["id"]) for r in records if ids[str(r["id"])] > 1 and canonical_json(r) in kept} & \
        {str(r["id"]) for r in records if ids[str(r["id"])] > 1 and canonical_json(r) not in kept}
    assert split
    # kept + dropped is the input, as a multiset of records
    dropped = Counter(d["key"] for d in _jsonl(out / "rebalance" / "dropped"))
    assert sum(dropped.values()) == rebalance["dropped"] and max(dropped.values()) == 1
    assert sum(kept.values()) == rebalance["kept"]
    # Synonym synthesis adds what the plan allows, never more than the dropped volume.
    assert 0 < synthesize["synthetic"] <= synthesize["budget"] == rebalance["dropped"]
    assert synthesize["refined"] == rebalance["kept"] + synthesize["synthetic"]


def test_the_refined_array_loads_as_llavas_trainer_loads_it(mix, mix_run, image_folder):
    """What LLaVA's LazySupervisedDataset does: json.load(data_path), then for every record with an
    image, Image.open(os.path.join(image_folder, image)).convert('RGB'); lengths count the words
    of every turn's 'value'."""
    path, records = mix
    out, _, _ = mix_run
    _, rebalance, synthesize = _summaries(out)
    refined_path = out / "synthesize" / "refined" / "refined.json"
    assert synthesize["output_format"] == "llava-json" and synthesize["refined_path"] == str(refined_path)
    assert refined_path.read_bytes().count(b"\n") == 0
    with open(refined_path) as f:
        list_data_dict = json.load(f)
    assert len(list_data_dict) == synthesize["refined"]
    for sample in list_data_dict:
        if "image" in sample:
            Image.open(os.path.join(image_folder, sample["image"])).convert("RGB")
        assert sum(len(conv["value"].split()) for conv in sample["conversations"]) > 0
        assert [t["from"] for t in sample["conversations"]][::2] == ["human"] * len(sample["conversations"][::2])
    # kept records first, unchanged and in input order; then the synthetic ones
    kept = [canonical_json(r) for r in list_data_dict[:rebalance["kept"]]]
    rest = iter(canonical_json(r) for r in records)
    assert all(any(k == r for r in rest) for k in kept)  # a subsequence of the input
    synthetic = list_data_dict[rebalance["kept"]:]
    assert synthetic == _jsonl(out / "synthesize" / "synthetic")
    assert all(s["adr"]["method"] == "synonym" for s in synthetic)
    text = refined_path.read_text()
    assert json.dumps(list_data_dict[0]) in text  # a kept element is the input's bytes, separators and all


def test_a_diffused_image_lands_under_the_image_folder_the_records_name(image_folder, tmp_path):
    """--synthetic-images ROOT writes adr-synthetic/<digest>.png under ROOT, so a visual record's
    image resolves under the same --image_folder as the originals."""
    from apache_beam.ml.inference.base import PredictionResult

    from pipelines.synthesize.steps import Work

    made = Image.open(next(COCO_IMAGES.glob("*.jpg"))).convert("RGB")
    key = Work("visual", 0.0, "k", "000000000001", {"token": ["zebra"]}, ("token", "zebra"),
               caption="Two zebras stand by a tree.")
    saved, _ = steps.save_image((key, PredictionResult(None, made)), str(image_folder))
    reply = "Question:\nHow many zebras are there?\n===\nAnswer:\nThere are two zebras by a tree.\n==="
    (_, record), = steps.conversation_record((saved, PredictionResult(None, reply)), {}, {}, 42, None)
    assert record["image"].startswith("adr-synthetic/") and record["image"].endswith(".png")
    assert Image.open(os.path.join(image_folder, record["image"])).size == made.size


def test_kept_records_are_the_same_for_shuffled_sharded_input_and_another_runner(mix, mix_run, spark, tmp_path):
    path, records = mix
    out, _, _ = mix_run
    kept = _canonical(_jsonl(out / "rebalance" / "kept"))
    manifest = json.loads((out / "stats" / "manifest.json").read_text())
    shuffled = list(records)
    random.Random(11).shuffle(shuffled)
    shards = tmp_path / "shards"
    shards.mkdir()
    write(shards / "a.json", shuffled[:700])
    write(shards / "b.json", shuffled[700:701])
    (shards / "c.jsonl").write_text("\n".join(json.dumps(r) for r in shuffled[701:]) + "\n")
    # statistics of the shuffled shards: the same counts and thresholds
    again = execute(spark_stats.STAGE, ["--input", str(shards), "--output", str(tmp_path / "stats"), *NLP_ARGS], spark)[1]
    for field in ("records", "repeated_ids", "exact_duplicates", "perspectives"):
        assert again[field] == manifest[field], field
    runs = {"direct": [],
            "multi-process": ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]}
    for name, flags in runs.items():
        _, summary = execute(beam_rebalance.STAGE, ["--input", str(shards), "--dictionary", str(tmp_path / "stats"),
                                         "--output", str(tmp_path / name), *flags])
        assert _canonical(_jsonl(tmp_path / name / "kept")) == kept, name
        assert summary["input_format"] == "jsonl"  # a mix of arrays and lines refines to JSON Lines


def test_exact_duplicates_can_be_dropped_with_a_reason(mix, mix_run, tmp_path):
    path, records = mix
    out, _, _ = mix_run
    copies = len(records) - len(_canonical(records))
    _, summary = execute(beam_rebalance.STAGE, ["--input", str(path), "--dictionary", str(out / "stats"),
                                     "--output", str(tmp_path / "o"), "--drop-exact-duplicates"])
    invalid = _jsonl(tmp_path / "o" / "invalid")
    assert summary["invalid_by_reason"] == {"exact-duplicate": copies} and len(invalid) == copies
    assert summary["kept"] + summary["dropped"] + summary["invalid"] == len(records)
    seen, later = set(), set()
    for i, r in enumerate(records):
        (later.add(i) if canonical_json(r) in seen else seen.add(canonical_json(r)))
    # the dead letters are exactly the later copies, each shown at its index in the array
    assert {d["position"] for d in invalid} == later


def test_repeats_from_the_statistics_equal_those_the_engine_finds(mix, mix_run, tmp_path):
    """Rebalance reads each split's repeats from the statistics (STATS/repeats/, found by Spark),
    so nothing per record is shuffled; for input the statistics did not read, the engine finds
    them (--extract-entities). Both say the same of every record."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    path, records = mix
    out, _, _ = mix_run
    stats_dir = out / "stats"
    repeats = pq.read_table(stats_dir / "repeats")
    uses = Counter(r["image"] for r in records if "image" in r)
    assert sum(repeats["image_shared"].to_pylist()) == sum(n for n in uses.values() if n > 1)
    assert sum(o > 0 for o in repeats["occurrence"].to_pylist()) == len(records) - len(_canonical(records))

    runs = {}
    for name, flags in {"statistics": [], "engine": ["--extract-entities"]}.items():
        options = PipelineOptions(flags=[])
        pipeline = beam.Pipeline(options=options)
        args, _ = beam_rebalance.configure(["--input", str(path), "--dictionary", str(stats_dir),
                                            "--output", str(tmp_path / name), *flags])
        beam_rebalance.graph(pipeline, beam_rebalance.plan(args, options), args)
        _, summary = beam_rebalance.run_pipeline(pipeline, str(tmp_path / name / "summary.json"))
        shuffles = {t.unique_name.split("/")[0] for t in pipeline.to_runner_api().components.transforms.values()
                    if t.spec.urn == "beam:transform:group_by_key:v1"}
        seeds = {(s["key"], s["image_shared"]) for s in _jsonl(tmp_path / name / "seeds")}
        dropped = {d["key"] for d in _jsonl(tmp_path / name / "dropped")}
        runs[name] = (shuffles, seeds, dropped, _canonical(_jsonl(tmp_path / name / "kept")),
                      {k: summary[k] for k in ("kept", "dropped", "exact_duplicates", "repeated_ids")})
    assert {"GroupKeys", "GroupImages", "GroupIds", "NotesBySplit"} <= runs["engine"][0]
    assert not {"GroupKeys", "GroupImages", "GroupIds", "NotesBySplit"} & runs["statistics"][0]
    assert runs["statistics"][1:] == runs["engine"][1:]
    assert any(shared for _, shared in runs["statistics"][1]) and any(k.endswith("-1") for k in runs["statistics"][2]
                                                                      | {k for k, _ in runs["statistics"][1]})


def test_the_report_counts_exactly_the_refined_corpus(mix, mix_run):
    from collections import Counter

    from pipelines.report import data as report_data
    from pipelines.stats.local import local_stats

    out, _, _ = mix_run
    data = report_data.gather(str(out))
    recount = local_stats([str(out / "synthesize" / "refined" / "refined.json")], tuple(data.taus), None,
                          keep_entities=False)[0]
    synthesize = json.loads((out / "synthesize" / "summary.json").read_text())
    assert recount.records == data.records_after == synthesize["refined"]
    for p in data.taus:
        assert data.after[p] == +recount.counts.get(p, Counter()), p
    html = (out / "report" / "index.html").read_text()
    manifest = json.loads((out / "stats" / "manifest.json").read_text())
    assert f"{manifest['repeated_ids']:,}" in html and "byte-identical" in html
    assert all(line.split(":")[0] in data.taus for line in report_data.balance_verdicts(data))


def test_progress_moves_while_the_stages_work(mix, mix_run, spark, tmp_path, monkeypatch):
    """Tasks of bounded size: the tagging count rises through several values before the stage
    ends, and ends at the number of elements read; the same for rebalancing. (The stages take
    seconds here, so lines come 10 and 100 times a second; at scale the benchmark measures the
    longest gap between two changes of the count.)"""
    import re

    path, records = mix
    out, _, _ = mix_run
    fresh = tmp_path / "fresh.json"  # records the workers have not tagged yet in this session
    write(fresh, generate(2 * RECORDS, seed=9, data_dir=SHARED))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        monkeypatch.setenv("ADR_PROGRESS_SECS", "0.1")
        manifest = execute(spark_stats.STAGE, ["--input", str(fresh), "--output", str(tmp_path / "stats"), "--partitions", "16",
                                    *NLP_ARGS], spark)[1]
        monkeypatch.setenv("ADR_PROGRESS_SECS", "0.01")
        execute(beam_rebalance.STAGE, ["--input", str(path), "--dictionary", str(out / "stats"), "--output", str(tmp_path / "r")])
    lines = err.getvalue().splitlines()
    for label, final in (("stats: tagging", manifest["elements_read"]), ("rebalance", len(records))):
        moving = [int(m.group(1).replace(",", "")) for line in lines
                  if (m := re.search(rf"\d {label}: ([\d,]+) records  ", line))]
        moving = [n for n in moving if n < final]  # before the stage ends
        assert len(set(moving)) >= 3 and moving == sorted(moving), (label, moving)
        done = [line for line in lines if re.search(rf"{label}: [\d,]+ records in ", line)]
        assert done and f"{final:,} records in" in done[-1], (label, done)
