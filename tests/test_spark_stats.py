"""The Spark statistics job on real COCO records, against the single-process reference."""

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest

from adr import records as R
from adr.entities.registry import ALL
from pipelines.outputs import read_json
from pipelines.stage import execute
from pipelines.stats import job as spark_stats
from pipelines.stats.local import local_stats
from tests.conftest import BAD_LINES, NLP_ARGS, SCIENCEQA, write_bad_corpus


@pytest.fixture(scope="module")
def reference(coco_jsonl):
    nlp = NLP_ARGS[1] if NLP_ARGS else None
    return local_stats(str(coco_jsonl), ALL, nlp)


def read_rows(path):
    return pq.read_table(path).to_pylist()


def test_spark_entities_equal_the_plain_python_extraction(coco_stats, reference):
    (out, manifest), (_counts, entities, invalid, lines) = coco_stats, reference
    rows = read_rows(out / "entities")
    # entities/split=N/ holds the records read from the manifest's splits[N]: rebalance reads the
    # same splits and finds a batch's entities there
    splits = manifest["splits"]
    assert len(splits) >= 2
    for r in rows:
        split, nxt = splits[r["split"]], splits[r["split"] + 1] if r["split"] + 1 < len(splits) else None
        assert split["first"] <= r["position"] and (nxt is None or r["position"] < nxt["first"]), r
    spark_entities = {r.pop("key"): {k: v for k, v in r.items() if k not in ("split", "position")}
                      for r in rows if r.pop("id")}
    assert spark_entities == entities
    assert manifest["records"] == len(entities) == lines and manifest["invalid"] == 0 == len(invalid)
    # The real data has all four kinds, objects only on the annotated images.
    with_objects = [e for e in entities.values() if e["object"]]
    assert 300 <= len(with_objects) < len(entities)
    assert all(e["interrogation"] and e["token"] for e in entities.values())


def test_spark_counts_and_probabilities_equal_the_reference(coco_stats, reference):
    (out, manifest), (counts, *_rest) = coco_stats, reference
    rows = read_rows(out / "dictionary")
    for p in ALL:
        got = {r["entity"]: r["count"] for r in rows if r["perspective"] == p}
        assert got == dict(counts.counts[p]), p
        tau = manifest["perspectives"][p]["tau"]
        assert all(r["p"] == pytest.approx(tau / r["count"]) for r in rows if r["perspective"] == p)
    assert {p: t.to_dict() for p, t in counts.thresholds({p: manifest["perspectives"][p]["rho"] for p in ALL}).items()} \
        == manifest["perspectives"]


def test_tail_statistics_match_an_independent_computation(coco_stats, reference):
    (_out, manifest), (counts, *_rest) = coco_stats, reference
    for p, stats in manifest["perspectives"].items():
        n = np.sort(np.array(list(counts.counts[p].values())))[::-1]
        running = np.cumsum(n)
        tau = int(n[np.argmax(running >= stats["rho"] * running[-1])])
        assert stats["tau"] == tau
        assert stats["tail_entities_pct"] == pytest.approx(100 * np.mean(n <= tau), abs=1e-3)
        assert stats["tail_mass_pct"] == pytest.approx(100 * n[n <= tau].sum() / n.sum(), abs=1e-3)
        assert stats["entities"] == len(n) and stats["mass"] == int(n.sum())
    # Captions are long-tailed: most distinct nouns are tail, carrying a small share of mass.
    token = manifest["perspectives"]["token"]
    assert token["tail_entities_pct"] > 60 and token["tail_mass_pct"] < 20, token


def test_reverse_index_inverts_the_entities(coco_stats, reference):
    (out, _), (_, entities, *_rest) = coco_stats, reference
    expected = {}
    for rid, per in entities.items():
        for p, values in per.items():
            for e in values:
                expected.setdefault((p, e), []).append(rid)
    got = {(r["perspective"], r["entity"]): r["keys"] for r in read_rows(out / "reverse_index")}
    assert got == {k: sorted(v) for k, v in expected.items()}


def test_manifest_records_inputs_and_parameters(coco_stats, coco_jsonl):
    out, manifest = coco_stats
    assert read_json(str(out / "manifest.json")) == manifest
    assert manifest["input"]["files"] == [str(coco_jsonl)] and len(manifest["input"]["fingerprint"]) == 32
    assert manifest["parameters"]["tail_share"] == {"token": 0.9, "object": 0.9, "cooccurrence": 0.75,
                                                    "interrogation": 0.9}


def test_bad_input_is_reported_with_reasons_and_lines_and_counts_add_up(spark, coco_jsonl, tmp_path):
    path = write_bad_corpus(tmp_path / "bad.jsonl", coco_jsonl.read_text().splitlines())
    out = tmp_path / "out"
    manifest = execute(spark_stats.STAGE, ["--input", str(path), "--output", str(out), "--max-record-bytes", "4000",
                                "--perspectives", "object,interrogation"], spark)[1]
    invalid = sorted((r["position"], r["reason"]) for r in read_rows(out / "invalid"))
    assert invalid == sorted(BAD_LINES.items())
    # (unreadable files: tests/test_sources.py and test_beam_rebalance.py)
    assert set(BAD_LINES.values()) == set(R.REASONS) - {R.MISSING_ID, R.BAD_OBJECTS, R.EXACT_DUPLICATE,
                                                        R.UNREADABLE_FILE}
    assert manifest["records"] == 41 and manifest["invalid"] == 6 and manifest["elements_read"] == 47
    # line 15 repeats line 4 byte for byte: kept, counted, and given its own key
    assert (manifest["repeated_ids"], manifest["exact_duplicates"]) == (1, 1)
    assert manifest["invalid_by_reason"] == dict(Counter(r for _, r in invalid))
    counts, entities, ref_invalid, lines = local_stats(str(path), ("object", "interrogation"), max_bytes=4000)
    assert sorted((line, reason) for (_, line), reason in ref_invalid.items()) == invalid
    assert lines == 47 and len(entities) == 41
    keys = {r["key"] for r in read_rows(out / "entities")}
    assert keys == set(entities) and len(keys) == 41


@pytest.mark.needs_shared
def test_text_only_scienceqa_records_have_no_objects(spark, tmp_path):
    out = tmp_path / "sqa"
    manifest = execute(spark_stats.STAGE, ["--input", str(SCIENCEQA), "--output", str(out),
                                "--perspectives", "object,interrogation"], spark)[1]
    data = json.loads(SCIENCEQA.read_text())
    assert manifest["records"] == len(data) == 4241 and manifest["invalid"] == 0
    rows = read_rows(out / "entities")
    assert all(r["object"] == [] for r in rows)
    types = Counter(t for r in rows for t in r["interrogation"])
    assert types["which"] > 1000 and "what" in types and types["other"] < 0.1 * len(rows)


def test_reads_gs_urls_through_gcsfs(spark, gcs_bucket, coco_jsonl, tmp_path):
    import fsspec

    lines = coco_jsonl.read_text().splitlines()
    with fsspec.open(f"{gcs_bucket}/corpus/part-0.jsonl", "w") as f:
        f.write("\n".join(lines[:300]) + "\n")
    with fsspec.open(f"{gcs_bucket}/corpus/part-1.jsonl", "w") as f:
        f.write("\n".join(lines[300:500]) + "\n")
    out = tmp_path / "gs"
    manifest = execute(spark_stats.STAGE, ["--input", f"{gcs_bucket}/corpus", "--output", str(out),
                                "--perspectives", "object,cooccurrence"], spark)[1]
    assert manifest["records"] == 500
    assert manifest["input"]["files"] == [f"{gcs_bucket}/corpus/part-0.jsonl", f"{gcs_bucket}/corpus/part-1.jsonl"]
    counts, *_ = local_stats(f"{gcs_bucket}/corpus", ("object", "cooccurrence"))
    for p in ("object", "cooccurrence"):
        got = {r["entity"]: r["count"] for r in read_rows(out / "dictionary") if r["perspective"] == p}
        assert got == dict(counts.counts[p]) and got


def test_an_unreadable_input_is_a_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "stats", "--input", str(tmp_path / "nope.jsonl"),
                           "--output", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such file or directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_job_runs_under_spark_submit(coco_jsonl, tmp_path):
    import os
    from pathlib import Path

    import pyspark

    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    job = Path(spark_stats.__file__)
    out = tmp_path / "submitted"
    proc = subprocess.run([str(submit), "--master", "local[1]", str(job), "--input", str(coco_jsonl),
                           "--output", str(out), "--perspectives", "object,cooccurrence"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(job.parents[1])})
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = read_json(str(out / "manifest.json"))
    assert manifest["records"] == len(coco_jsonl.read_text().splitlines())
    assert manifest["engine"]["master"] == "local[1]"
    assert "object" in proc.stdout and "outputs:" in proc.stdout
