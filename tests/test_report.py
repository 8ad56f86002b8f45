"""The report: its numbers against an independent recount, its measures, and the page in Chromium."""

import json
import math
import random
from collections import Counter

import numpy as np
import pytest

from adr.distribution import gini, normalised_entropy, sample_tail, shape, top_head
from pipelines.synthesize import steps
from pipelines.report import job as report
from tests.browser import chromium, open_page


def test_after_counts_equal_a_recount_of_the_refined_corpus(adr_run):
    """The report subtracts dropped records and adds synthetic ones instead of re-tagging: it must
    give what tagging the whole refined corpus gives."""
    from udfs.entity_counts import counts_of_files

    out, _, _ = adr_run
    data = report.gather(str(out))
    nlp = json.loads((out / "stats" / "manifest.json").read_text())["parameters"]["nlp"]
    recount, records = counts_of_files(sorted(map(str, (out / "synthesize" / "refined").glob("*.*"))),
                                       tuple(data.taus), None if nlp == "default" else nlp)
    assert records == data.records_after
    for p in data.taus:
        assert data.after[p] == +recount[p], p
    assert any(data.after[p] != data.before[p] for p in data.taus)


def test_report_page_opens_in_headless_chromium_with_every_image_rendered(adr_run):
    if not chromium():
        pytest.fail("chromium not installed: `make install` installs Debian's chromium")
    out, _, _ = adr_run
    page = out / "report" / "index.html"
    load = open_page(page)
    assert load.errors == []
    srcs = [i["src"] for i in load.images]
    figures = {f"figures/rank_{p}.png" for p in ("token", "object", "cooccurrence", "interrogation")}
    assert figures | {"figures/tail_shares.png", "figures/balance.png", "figures/records.png"} <= set(srcs)
    # Synthetic records beside their seeds, with the seeds' COCO images.
    assert sum(s.startswith("images/") for s in srcs) >= 2
    assert all(i["complete"] and i["naturalWidth"] > 0 for i in load.images), load.images
    html = page.read_text()
    assert "synthesised: synonym" in html and "sampled tail entity" in html and "top head entity" in html


def test_browser_check_sees_a_broken_image(tmp_path):
    """The check above can fail: a page with a missing image is caught."""
    if not chromium():
        pytest.fail("chromium not installed: `make install` installs Debian's chromium")
    (tmp_path / "index.html").write_text('<!DOCTYPE html><html><body><img src="missing.png"></body></html>')
    load = open_page(tmp_path / "index.html")
    assert load.images == [{"src": "missing.png", "complete": True, "naturalWidth": 0}]
    assert any("missing.png" in e for e in load.errors)


def _gini_by_pairs(xs):
    """Gini as the mean absolute difference over twice the mean (an independent formula)."""
    a = np.asarray(xs, dtype=float)
    return np.abs(a[:, None] - a[None, :]).sum() / (2 * len(a) ** 2 * a.mean())


def test_gini_and_entropy_on_the_real_coco_distributions(coco_stats):
    import pyarrow.parquet as pq

    table = pq.read_table(coco_stats[0] / "dictionary").to_pylist()
    for p in ("token", "object", "cooccurrence"):
        counts = [r["count"] for r in table if r["perspective"] == p]
        assert gini(counts) == pytest.approx(_gini_by_pairs(counts), abs=1e-9)
        shares = np.asarray(counts) / sum(counts)
        assert normalised_entropy(counts) == pytest.approx(-(shares * np.log(shares)).sum() / math.log(len(counts)))


def test_measures_at_their_limits():
    assert gini([5] * 10) == pytest.approx(0.0) and normalised_entropy([5] * 10) == pytest.approx(1.0)
    assert gini([0] * 9 + [1]) == 0.0  # one entity: nothing to compare
    assert gini([1] * 99 + [10_000]) > 0.95
    s = shape({"a": 10, "b": 3, "c": 1, "d": 1}, tau=3)
    assert (s.entities, s.occurrences, s.tail_entities_pct, s.tail_occurrences_pct) == (4, 15, 75.0, 100 * 5 / 15)


def test_head_list_holds_only_head_entities_most_frequent_first():
    counts = Counter({"person": 50, "table": 50, "cup": 12, "kite": 3, "yak": 1})
    assert top_head(counts, tau=3, k=10) == [("person", 50), ("table", 50), ("cup", 12)]
    assert top_head(counts, tau=3, k=2) == [("person", 50), ("table", 50)]


def test_tail_sample_is_seeded_and_only_tail():
    rng = random.Random(0)
    counts = Counter({f"e{i}": rng.randint(1, 50) for i in range(500)})
    sample = sample_tail(counts, tau=5, k=15, seed=42)
    assert len(sample) == 15 and all(c <= 5 for _, c in sample)
    assert sample == sample_tail(counts, tau=5, k=15, seed=42) != sample_tail(counts, tau=5, k=15, seed=7)


def test_a_visual_record_shows_its_diffused_image_beside_the_seeds(adr_run, tmp_path):
    """The synthesize stage's own steps (save_image, parsed_record) make a visual record; the
    report finds its image under synthesize/images/ and the page renders it."""
    import shutil

    from apache_beam.ml.inference.base import PredictionResult
    from PIL import Image, ImageOps

    from pipelines.synthesize.steps import Work
    from tests.conftest import COCO_IMAGES
    from tests.test_prompts import REPLY

    src, _, _ = adr_run
    out = tmp_path / "run"
    shutil.copytree(src, out)
    seeds = [json.loads(l) for f in sorted((out / "rebalance" / "seeds").glob("*.jsonl"))
             for l in f.read_text().splitlines() if l]
    seed = next(s for s in seeds if s.get("image") and (COCO_IMAGES / s["image"]).exists())
    # A stand-in for the diffusion output: the seed image mirrored (the models are tested elsewhere).
    made = ImageOps.mirror(Image.open(COCO_IMAGES / seed["image"]).convert("RGB"))
    key = Work("visual", 0.0, seed["key"], seed["id"], seed["tail_entities"])
    saved_key, _ = steps.save_image((key, PredictionResult(None, made)), str(out / "synthesize" / "images"))
    (_, record), = steps.parsed_record((saved_key, PredictionResult(None, REPLY)), "visual",
                                                 {"llm": "m"}, {"seed": 42}, 42)
    synthetic = sorted((out / "synthesize" / "synthetic").glob("*.jsonl"))[0]
    synthetic.write_text(json.dumps(record) + "\n" + synthetic.read_text())

    page = report.run(["--run", str(out), "--images-root", str(COCO_IMAGES), "--examples", "3"])
    html = open(page).read()
    diffused = report.thumbnail(str(out / "synthesize" / "images" / record["image"]), str(tmp_path / "probe"))
    assert diffused and f'src="{diffused}"' in html and "visual: " + record["id"] in html
    load = open_page(out / "report" / "index.html")
    assert load.errors == []
    assert all(i["naturalWidth"] > 0 for i in load.images)
    assert diffused in [i["src"] for i in load.images]
