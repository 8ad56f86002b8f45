"""The report: its numbers against an independent recount, its measures, and the page in Chromium."""

import json
import math
import random
from collections import Counter

import numpy as np
import pytest

from adr.distribution import (
    Shape,
    Verdict,
    best_gini,
    gini,
    normalised_entropy,
    sample_tail,
    shape,
    synthesis_lift,
    top_head,
    verdict,
)
from adr.entities.registry import CATCH_ALLS
from pipelines.report import data as report_data
from pipelines.report import examples as report_examples
from pipelines.report import job as report
from pipelines.stage import execute
from pipelines.synthesize import steps
from tests.browser import chromium, open_page
from tests.conftest import COCO_IMAGES


def test_after_counts_equal_a_recount_of_the_refined_corpus(adr_run):
    """The report subtracts dropped records and adds synthetic ones instead of re-tagging: it must
    give what tagging the whole refined corpus gives."""
    from collections import Counter

    from pipelines.stats.local import local_stats

    out, _, _ = adr_run
    data = report_data.gather(str(out))
    nlp = json.loads((out / "stats" / "manifest.json").read_text())["parameters"]["nlp"]
    recount = local_stats(sorted(map(str, (out / "synthesize" / "refined").glob("*.*"))), tuple(data.taus),
                          None if nlp == "default" else nlp, keep_entities=False)[0]
    assert recount.records == data.records_after
    for p in data.taus:
        assert data.after[p] == +recount.counts.get(p, Counter()), p
    assert any(data.after[p] != data.before[p] for p in data.taus)


def test_a_run_whose_rebalance_read_other_input_is_refused_in_one_line(adr_run, tmp_path, capsys):
    """Counts after subtract the dropped records' entities from the statistics' counts: from
    another input they would be false numbers, so the report refuses instead of drawing them."""
    import shutil

    out, _, _ = adr_run
    run = tmp_path / "run"
    for stage in ("stats", "rebalance"):
        shutil.copytree(out / stage, run / stage)
    summary = json.loads((run / "rebalance" / "summary.json").read_text())
    (run / "rebalance" / "summary.json").write_text(json.dumps({**summary, "input_fingerprint": "0" * 32}))
    from pipelines import cli

    assert cli.main(["report", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rebalance read other input" in err[0] and "0" * 32 in err[0]
    assert not (run / "report").exists()


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
    # Synthetic records beside their seeds, with the seeds' COCO images where COCO_Tiny has them
    # (the plan makes a few records on this corpus; test_a_visual_record_... shows one always).
    synthetic = [json.loads(line) for f in sorted((out / "synthesize" / "synthetic").glob("*.jsonl"))
                 for line in f.read_text().splitlines() if line]
    assert synthetic and "synthesised: synonym" in page.read_text()
    if any((COCO_IMAGES / r["image"]).exists() for r in synthetic if r.get("image")):
        assert sum(s.startswith("images/") for s in srcs) >= 2
    assert all(i["complete"] and i["naturalWidth"] > 0 for i in load.images), load.images
    html = page.read_text()
    assert "synthesised: synonym" in html and "sampled tail entity" in html and "top head entity" in html
    balance = json.loads((out / "report" / "balance.json").read_text())
    assert "<h3>Balance</h3>" in html and all(html.count(f"<td>{p}</td>") >= 1 for p in balance)
    assert all(html.count(f"<td>{_escaped(v['verdict'])}</td>") >= 1 for v in balance.values())


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


def test_best_gini_is_what_filling_the_rarest_tail_first_reaches_and_no_allocation_beats_it(coco_stats):
    import heapq

    import pyarrow.parquet as pq

    table = pq.read_table(coco_stats[0] / "dictionary").to_pylist()
    counts = {r["entity"]: r["count"] for r in table if r["perspective"] == "token"}
    tau = sorted(counts.values())[len(counts) // 2]
    tail = [e for e, c in counts.items() if c <= tau]
    for additions in (0, 7, 500, 10 ** 9):
        greedy, heap = dict(counts), [(c, e) for e, c in counts.items() if c <= tau]
        heapq.heapify(heap)
        for _ in range(min(additions, len(tail) * tau)):  # one at a time, to the rarest below the ceiling
            c, e = heapq.heappop(heap)
            if c >= tau:
                break
            greedy[e] = c + 1
            heapq.heappush(heap, (c + 1, e))
        best = best_gini(counts, tau, additions)
        assert best == pytest.approx(gini(greedy.values()), abs=1e-12)
        rng = random.Random(additions)
        for _ in range(20):  # any other way of giving the same occurrences to the tail does worse
            other = dict(counts)
            room = [e for e in tail for _ in range(tau - counts[e])]
            for e in rng.sample(room, min(additions, len(room))):
                other[e] += 1
            assert gini(other.values()) >= best - 1e-12
    assert best_gini(counts, tau, 0) == pytest.approx(gini(counts.values()))
    assert best_gini(counts, tau, 10 ** 9) == pytest.approx(gini([max(c, tau) for c in counts.values()]))


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
    """The synthesize stage's own steps (save_image, conversation_record) make a visual record; the
    report finds its image under synthesize/images/ and the page renders it."""
    import shutil

    from apache_beam.ml.inference.base import PredictionResult
    from PIL import Image, ImageOps

    from pipelines.synthesize.steps import Work
    from tests.conftest import COCO_IMAGES
    src, _, _ = adr_run
    out = tmp_path / "run"
    shutil.copytree(src, out)
    seeds = [json.loads(l) for f in sorted((out / "rebalance" / "seeds").glob("*.jsonl"))
             for l in f.read_text().splitlines() if l]
    seed = next(s for s in seeds if s.get("image") and (COCO_IMAGES / s["image"]).exists())
    # A stand-in for the diffusion output: the seed image mirrored (the models are tested elsewhere).
    made = ImageOps.mirror(Image.open(COCO_IMAGES / seed["image"]).convert("RGB"))
    target = next((p, sorted(es)[0]) for p, es in seed["tail_entities"].items() if es and p in ("token", "object"))
    # And for the captioner and the LLM: a caption and a conversation that name the target.
    key = Work("visual", 0.0, seed["key"], seed["id"], seed["tail_entities"], target,
               caption=f"A photo of a {target[1]}.")
    saved_key, _ = steps.save_image((key, PredictionResult(None, made)), str(out / "synthesize" / "images"))
    reply = f"Question:\nIs there a {target[1]} in the photo?\n===\nAnswer:\nYes, there is a {target[1]}.\n==="
    (_, record), = steps.conversation_record((saved_key, PredictionResult(None, reply)), {"llm": "m"},
                                             {"seed": 42}, 42, None)
    synthetic = sorted((out / "synthesize" / "synthetic").glob("*.jsonl"))[0]
    synthetic.write_text(json.dumps(record) + "\n" + synthetic.read_text())

    page = execute(report.STAGE, ["--run", str(out), "--images-root", str(COCO_IMAGES), "--examples", "3"])[1]
    html = open(page).read()
    diffused = report_examples.thumbnail(str(out / "synthesize" / "images" / record["image"]), str(tmp_path / "probe"))
    assert diffused and f'src="{diffused}"' in html and "visual: " + record["id"] in html
    load = open_page(out / "report" / "index.html")
    assert load.errors == []
    assert all(i["naturalWidth"] > 0 for i in load.images)
    assert diffused in [i["src"] for i in load.images]


def _escaped(text):
    import html

    return html.escape(text)


def _shape(gini_, entropy, tail_pct):
    return Shape(10, 100, 50.0, tail_pct, gini_, entropy)


def test_lift_counts_only_tail_entities_and_sets_catch_alls_apart():
    before = {"dog": 50, "cat": 3, "yak": 1, "other": 2}
    added = {"dog": 4, "cat": 2, "yak": 1, "emu": 3, "other": 5, "gnu": 0}
    lift = synthesis_lift(before, added, tau=3, ceiling=4, catch_alls={"other"})
    # cat, yak and emu (absent from the dictionary: tail) are lifted; dog is head, other a catch-all.
    assert (lift.added, lift.lifted, lift.new) == (15, 3, 1)
    assert (lift.lift_mean, lift.lift_median, lift.tail_added_pct) == (2.0, 2.0, 40.0)
    assert (lift.highest, lift.highest_count, lift.past_ceiling) == ("cat", 5, 1)
    assert lift.highest_ratio == 1.25 and lift.catch_alls == {"other": 5}
    assert json.loads(json.dumps(lift.to_dict()))["highest_ratio"] == 1.25
    # The ceiling defaults to tau; without synthesis there is nothing to lift.
    assert synthesis_lift(before, added, tau=3).ceiling == 3
    empty = synthesis_lift(before, {}, tau=3)
    assert (empty.added, empty.lifted, empty.highest, empty.past_ceiling, empty.tail_added_pct) == (0, 0, None, 0, 0.0)


def test_verdict_says_more_balanced_only_when_every_measure_and_the_ceiling_agree():
    lift = synthesis_lift({"cat": 1}, {"cat": 1}, tau=3)
    assert verdict(_shape(0.8, 0.7, 10.0), _shape(0.7, 0.8, 12.0), lift) == Verdict(True, "more balanced")
    assert verdict(_shape(0.8, 0.7, 10.0), _shape(0.8, 0.7, 10.0)).text == "unchanged"
    flat = verdict(_shape(0.8, 0.7, 10.0), _shape(0.7, 0.8, 10.0))
    assert not flat.balanced and flat.text == "not more balanced: tail share of occurrences unchanged"
    # The real run's token perspective: Gini down and entropy up, but the tail lost its share of
    # occurrences and one tail word went to 14x tau. That is not "mixed".
    pushed = synthesis_lift({"kite": 100}, {"kite": 1580}, tau=120)
    v = verdict(_shape(0.836, 0.796, 10.1), _shape(0.824, 0.812, 4.5), pushed)
    assert not v.balanced
    assert v.text == ("not more balanced: tail share of occurrences fell 10.1% -> 4.5%; synthesis pushed 1 tail "
                      "entity past the ceiling 120 ('kite' to 1,680, 14.0x)")
    # The ceiling alone is enough to refuse "more balanced".
    assert not verdict(_shape(0.8, 0.7, 10.0), _shape(0.7, 0.8, 12.0), pushed).balanced
    worse = verdict(_shape(0.7, 0.8, 12.0), _shape(0.8, 0.7, 10.0)).text
    assert worse == ("not more balanced: Gini rose 0.700 -> 0.800; normalised entropy fell 0.800 -> 0.700; "
                     "tail share of occurrences fell 12.0% -> 10.0%")


def test_balance_json_agrees_with_a_recount_of_the_synthetic_records(adr_run):
    """balance.json's lift figures, recomputed by hand from the dictionary and a fresh tagging of
    synthetic/: which entities were tail, what they received, and who passed the ceiling."""
    from collections import Counter

    import pyarrow.parquet as pq

    from pipelines.stats.local import local_stats

    out, _, _ = adr_run
    balance = json.loads((out / "report" / "balance.json").read_text())
    manifest = json.loads((out / "stats" / "manifest.json").read_text())
    nlp = manifest["parameters"]["nlp"]
    counts = local_stats(sorted(map(str, (out / "synthesize" / "synthetic").glob("*.jsonl"))), tuple(balance),
                         None if nlp == "default" else nlp, keep_entities=False)[0].counts
    added = {p: counts.get(p, Counter()) for p in balance}
    dictionary = pq.read_table(out / "stats" / "dictionary").to_pylist()
    summary = json.loads((out / "synthesize" / "summary.json").read_text())
    assert sum(balance[p]["synthesis"]["added"] for p in balance) > 0
    for p, figures in balance.items():
        tau = manifest["perspectives"][p]["tau"]
        ceiling = summary.get("ceilings", {}).get(p, tau)
        catch_alls = set(summary.get("catch_alls", CATCH_ALLS).get(p, ()))
        before = {r["entity"]: r["count"] for r in dictionary if r["perspective"] == p}
        lifted = {e: n for e, n in added[p].items() if n and e not in catch_alls and before.get(e, 0) <= tau}
        lift = figures["synthesis"]
        assert (lift["tau"], lift["ceiling"], lift["added"]) == (tau, ceiling, sum(added[p].values())), p
        assert lift["lifted"] == len(lifted) and lift["new"] == sum(e not in before for e in lifted), p
        assert lift["past_ceiling"] == sum(before.get(e, 0) + n > ceiling for e, n in lifted.items()), p
        if lifted:
            assert lift["highest_count"] == max(before.get(e, 0) + n for e, n in lifted.items()), p
            assert lift["lift_median"] == pytest.approx(float(np.median(list(lifted.values())))), p
            assert lift["tail_added_pct"] == pytest.approx(100 * sum(lifted.values()) / lift["added"]), p
        b, a = figures["before"], figures["after"]
        assert figures["balanced"] == (a["gini"] < b["gini"] and a["entropy"] > b["entropy"]
                                       and a["tail_occurrences_pct"] > b["tail_occurrences_pct"]
                                       and not lift["past_ceiling"]), p
        assert figures["line"].startswith(f"{p}: {figures['verdict']}")
    printed = report.describe(str(out / "report" / "index.html")).splitlines()
    assert printed[1:] == [balance[p]["line"] for p in balance]


def test_the_ceilings_and_catch_alls_synthesize_wrote_are_the_ones_judged(adr_run):
    out, _, _ = adr_run
    token = report_data.balance(report_data.gather(str(out)))["token"]["synthesis"]
    assert token["highest"] is not None
    data = report_data.gather(str(out))
    data.synthesize = {**data.synthesize, "ceilings": {"token": 10 ** 6}, "catch_alls": {"token": [token["highest"]]}}
    lift = data.lifts["token"]
    assert lift.ceiling == 10 ** 6 and lift.past_ceiling == 0 and lift.highest != token["highest"]
    assert token["highest"] in lift.catch_alls and lift.lifted == token["lifted"] - 1
