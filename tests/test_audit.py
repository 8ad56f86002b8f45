"""`adr audit` on LLaVA-1.5-13B's real ScienceQA results against a COCO stats dictionary: the
adapters on real files, the figures against an independent computation, dead letters, the page."""

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adr.audit import Graded, bucket_bounds, head_tail_shares, movement, table2
from adr.entities.objects import normalise_object
from adr.graded_results import pope_said_yes
from pipelines.audit import job as audit
from pipelines.stage import execute
from tests.browser import chromium, open_page
from tests.conftest import COCO_IMAGES, NLP_ARGS, SCIENCEQA, SHARED

SQA_RESULTS = SHARED / "scienceqa" / "llava-v1.5-13b_output.jsonl"


def run_audit(out, *args):
    return execute(audit.STAGE, ["--output", str(out), *args, *NLP_ARGS])[1]


@pytest.fixture(scope="module")
def sqa_raw(shared_data):
    return json.loads(SQA_RESULTS.read_text())


@pytest.fixture(scope="module")
def sqa_audit(coco_stats, tmp_path_factory):
    out = tmp_path_factory.mktemp("audit") / "sqa"
    summary = run_audit(out, "--dictionary", str(coco_stats[0]), "--results", str(SQA_RESULTS),
                        "--questions", str(SCIENCEQA))
    return out, summary


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line]


# ---- the ScienceQA adapter on the real files ------------------------------------------------

def test_scienceqa_output_is_read_whole_with_images_from_the_question_file(sqa_audit, sqa_raw):
    out, summary = sqa_audit
    items = summary["items"]
    assert (items["read"], items["valid"], items["invalid"]) == (4241, 4241, 0)
    assert items["failed"] == len(sqa_raw["incorrect"]) == 1086
    assert items["accuracy"] == pytest.approx(3155 / 4241)
    multimodal = sum(e["is_multimodal"] for key in ("correct", "incorrect") for e in sqa_raw[key])
    assert items["by_group"]["scienceqa/with image"]["items"] == multimodal
    rows = {r["id"]: r for r in read_jsonl(out / "items.jsonl")}
    questions = {q["id"]: q for q in json.loads(SCIENCEQA.read_text())}
    assert set(rows) == set(questions)
    assert all(rows[i]["image"] == q.get("image") for i, q in questions.items())
    # The question as asked, less the answer-format line LLaVA's evaluation appends: the question
    # file's own text.
    assert all(rows[i]["question"] == q["conversations"][0]["value"] for i, q in questions.items())
    assert all(rows[e["question_id"]]["failed"] for e in sqa_raw["incorrect"])


def test_interrogation_and_token_perspectives_cover_the_text_items_and_objects_need_grounding(sqa_audit):
    _, summary = sqa_audit
    a = summary["audits"][0]
    assert a["token"]["items"] == a["interrogation"]["items"] == 4241
    assert a["object"]["items"] == a["cooccurrence"]["items"] == 0  # ScienceQA items carry no objects


# ---- the figures against an independent computation -----------------------------------------

def independent_frames(coco_stats, sqa_raw, perspective):
    """(items: id, failed, rarest count, all tail, any tail; failed occurrences' counts; training
    counts; tau), computed with pandas from the stats output, the raw results file and the
    question file's questions."""
    from udfs.entities import extract_entities

    stats_dir, manifest = coco_stats
    tau = manifest["perspectives"][perspective]["tau"]
    dictionary = pq.read_table(stats_dir / "dictionary").to_pandas()
    training = dictionary[dictionary.perspective == perspective][["entity", "count"]]
    asked = {q["id"]: q["conversations"][0]["value"] for q in json.loads(SCIENCEQA.read_text())}
    entries = [(e, key == "incorrect") for key in ("correct", "incorrect") for e in sqa_raw[key]]
    batch = pa.RecordBatch.from_pylist([{"key": str(i), "record": json.dumps(
        {"id": str(i), "conversations": [{"from": "human", "value": asked[e["question_id"]]}]})}
        for i, (e, _) in enumerate(entries)])
    nlp = manifest["parameters"]["nlp"]
    found = extract_entities(batch, (perspective,), None if nlp == "default" else nlp).column(perspective).to_pylist()
    pairs = pd.DataFrame([(i, e) for i, ents in enumerate(found) for e in ents], columns=["item", "entity"])
    pairs = pairs.merge(training, on="entity", how="left").fillna({"count": 0})
    pairs["failed"] = pairs["item"].map(lambda i: entries[i][1])
    per_item = pairs.groupby("item").agg(rarest=("count", "min"), most=("count", "max"), failed=("failed", "first"))
    per_item["all_tail"] = per_item["most"] <= tau
    per_item["any_tail"] = per_item["rarest"] <= tau
    return per_item, pairs[pairs.failed]["count"].to_numpy(), training["count"].to_numpy(), tau


@pytest.mark.parametrize("perspective", ["token", "interrogation"])
def test_bucket_accuracies_match_an_independent_computation(sqa_audit, coco_stats, sqa_raw, perspective):
    per_item, _, training, _ = independent_frames(coco_stats, sqa_raw, perspective)
    edges = [0] + [m * 10 ** k for k in range(8) for m in (1, 3)]
    per_item["bucket"] = np.searchsorted(edges, per_item["rarest"].to_numpy(), side="right") - 1
    expected = per_item.groupby("bucket").agg(items=("failed", "size"), failures=("failed", "sum"))
    got = sqa_audit[1]["audits"][0][perspective]["accuracy_by_bucket"]
    assert sum(b["items"] for b in got) == len(per_item)
    for k, b in enumerate(got):
        assert (b["lo"], b["hi"]) == (edges[k], edges[k + 1] - 1)
        if k in expected.index:
            row = expected.loc[k]
            assert (b["items"], b["failures"]) == (row["items"], row["failures"]), b
            assert b["accuracy"] == pytest.approx(1 - row["failures"] / row["items"])
        else:
            assert b["items"] == 0 and b["accuracy"] is None
    assert got[-1]["hi"] >= training.max()


@pytest.mark.parametrize("perspective", ["token", "interrogation"])
def test_table2_and_head_tail_shares_match_an_independent_computation(sqa_audit, coco_stats, sqa_raw, perspective):
    per_item, failed_counts, training, tau = independent_frames(coco_stats, sqa_raw, perspective)
    a = sqa_audit[1]["audits"][0][perspective]
    # Threshold: the lower weighted median of the failed occurrences' training counts.
    t = np.sort(failed_counts)[math.ceil(len(failed_counts) / 2) - 1]
    t2 = a["table2"]
    assert (t2["threshold"], t2["failed_occurrences"]) == (t, len(failed_counts))
    assert t2["failed_at_or_below_pct"] == pytest.approx(100 * np.mean(failed_counts <= t)) and t2["failed_at_or_below_pct"] >= 50
    assert t2["failed_unseen_pct"] == pytest.approx(100 * np.mean(failed_counts == 0))
    assert t2["distinct_entities_pct"] == pytest.approx(100 * np.mean(training <= t))
    assert t2["occurrences_pct"] == pytest.approx(100 * training[training <= t].sum() / training.sum())
    for who, failed in (("failures", True), ("successes", False)):
        group = per_item[per_item.failed == failed]
        ht = a["head_tail"][who]
        assert ht["items"] == len(group)
        assert ht["all_tail_pct"] == pytest.approx(100 * group.all_tail.mean())
        assert ht["any_tail_pct"] == pytest.approx(100 * group.any_tail.mean())
        assert ht["all_head_pct"] == pytest.approx(100 * (~group.any_tail).mean())
    curve = a["error_accumulation"]["failures"]
    assert curve[-1][1] == pytest.approx(1.0) and all(x[1] < y[1] for x, y in zip(curve, curve[1:]))
    reached = next(c for c, share in curve if share >= 0.5)
    assert reached == t


def test_measures_on_hand_made_items():
    assert bucket_bounds(1500) == [(0, 0), (1, 2), (3, 9), (10, 29), (30, 99), (100, 299), (300, 999), (1000, 2999)]
    assert bucket_bounds(0) == [(0, 0), (1, 2)]
    # Failed occurrences 0, 0, 1, 5, 40: half of 5 is reached at the 3rd smallest (count 1).
    t2 = table2([40, 0, 5, 1, 0], [1, 1, 2, 5, 40, 100])
    assert (t2["threshold"], t2["failed_at_or_below_pct"], t2["failed_unseen_pct"]) == (1, 60.0, 40.0)
    assert t2["distinct_entities_pct"] == pytest.approx(100 * 2 / 6) and t2["occurrences_pct"] == pytest.approx(200 / 149)
    items = [Graded({"a": 0, "b": 50}, 0.0, True), Graded({"c": 1}, 0.0, True), Graded({"d": 99}, 0.0, True),
             Graded({"e": 99}, 1.0, False), Graded({}, 0.0, True)]
    shares = head_tail_shares(items, tau=10)
    assert shares["failures"] == pytest.approx({"items": 3, "all_tail_pct": 100 / 3, "any_tail_pct": 200 / 3,
                                                "all_head_pct": 100 / 3})
    assert shares["successes"]["all_head_pct"] == 100.0
    m = movement(["kite", "kite", "yak", "dog"], {"kite": 2, "dog": 50}, {"kite": 30, "yak": 1, "dog": 40}, tau=10)
    assert m["moves"] == {"head -> head": 1, "tail -> head": 1, "unseen -> tail": 1}
    assert (m["rose"], m["fell"], m["tail_occurrences_pct_before"], m["tail_occurrences_pct_after"]) == (2, 1, 75.0, 25.0)


def test_pope_yes_no_reading_is_eval_popes():
    assert [pope_said_yes(t) for t in ("Yes", "Yes, there is a dog.", "No", "No, there is no dog.",
                                       "There is not a dog in the image", "no.", "Nope", "NO")] == \
        [True, True, False, False, False, False, True, True]


# ---- canonical form: objects, scores, dead letters -------------------------------------------

@pytest.fixture(scope="module")
def coco_items(coco_jsonl):
    """Canonical items from the COCO records with objects: question = the caption, graded by a
    score in [0, 1]."""
    records = [json.loads(line) for line in coco_jsonl.read_text().splitlines()]
    with_objects = [r for r in records if r.get("objects")][:60]
    return [{"id": f"q{i}", "question": r["conversations"][1]["value"], "answer": "x", "image": r["image"],
             "objects": r["objects"], "correct": [1.0, 0.6, 0.3, 0.0, True, False][i % 6], "benchmark": "coco-vqa",
             "category": ["a", "b"][i % 2]} for i, r in enumerate(with_objects)]


BAD = [
    ('{"id": "x1", "question": "What is', "malformed-json"),
    ('[1, 2]', "not-an-object"),
    (json.dumps({"question": "Is there a dog?", "correct": True}), "missing-id"),
    (json.dumps({"id": "x4", "correct": True}), "missing-question"),
    (json.dumps({"id": "x5", "question": "Is there a dog?", "correct": 2.0}), "bad-correct"),
    (json.dumps({"id": "x6", "question": "Is there a dog?", "correct": "yes"}), "bad-correct"),
    (json.dumps({"id": "x7", "question": "Is there a dog?"}), "bad-correct"),
    (json.dumps({"id": "x8", "question": "Is there a dog?", "correct": 1, "image": "../../etc/passwd"}),
     "unsafe-image-path"),
    (json.dumps({"id": "x9", "question": "Is there a dog?", "correct": 1, "objects": "dog"}), "bad-objects"),
    (json.dumps({"id": "x10", "conversations": [{"from": "robot", "value": "hi"}], "correct": 1}), "bad-conversations"),
]


def test_canonical_items_objects_scores_and_dead_letters(coco_stats, coco_items, tmp_path):
    path = tmp_path / "results.jsonl"
    lines = [json.dumps(i) for i in coco_items[:30]] + [b for b, _ in BAD] + [""] + [json.dumps(i) for i in coco_items[30:]]
    data = "\n".join(lines).encode() + b"\n" + b'{"id": "latin1", "question": "caf\xe9?", "correct": true}\n'
    path.write_bytes(data)
    summary = run_audit(tmp_path / "out", "--dictionary", str(coco_stats[0]), "--results", str(path))
    items = summary["items"]
    assert (items["read"], items["valid"], items["invalid"]) == (len(coco_items) + len(BAD) + 1, len(coco_items),
                                                                 len(BAD) + 1)
    dead = read_jsonl(tmp_path / "out" / "invalid.jsonl")
    assert [(d["position"], d["reason"]) for d in dead] == \
        [(31 + k, reason) for k, (_, reason) in enumerate(BAD)] + [(len(lines) + 1, "not-utf8")]
    assert all(d["source"] == str(path) and d["raw"] for d in dead)
    scores = [float(i["correct"]) for i in coco_items]
    assert items["accuracy"] == pytest.approx(sum(scores) / len(scores))
    assert items["failed"] == sum(s < 0.5 for s in scores)
    assert set(items["by_group"]) == {"coco-vqa/a", "coco-vqa/b"}
    # Objects carried by the items are looked up as they are counted: the same names, the same counts.
    dictionary = pq.read_table(coco_stats[0] / "dictionary").to_pandas()
    objects = dict(dictionary[dictionary.perspective == "object"][["entity", "count"]].itertuples(index=False))
    rows = read_jsonl(tmp_path / "out" / "items.jsonl")
    for row, item in zip(rows, coco_items):
        assert row["counts"][0]["object"] == {normalise_object(o): objects[normalise_object(o)] for o in item["objects"]}
        assert all(c > 0 for c in row["counts"][0]["cooccurrence"].values())  # the same images' pairs
    a = summary["audits"][0]["object"]
    assert a["items"] == len(coco_items) and a["failures"] == items["failed"]


# ---- POPE: question file + answer file + POPE's label files -----------------------------------

def test_pope_question_answer_and_label_files(coco, coco_stats, tmp_path):
    from adr.coco import objects_by_image

    _, instances = coco
    files = {img["id"]: img["file_name"] for img in instances["images"]}
    objects = objects_by_image(instances)
    images = sorted(objects)[:6]
    absent = "giraffe"
    questions, labels, answers = [], {"adversarial": [], "random": []}, []
    qid = 0
    for category in ("adversarial", "random"):
        for image_id in images:
            for obj, label in ((objects[image_id][0], "yes"), (absent if absent not in objects[image_id] else "zebra", "no")):
                qid += 1
                text = f"Is there a {obj} in the image?"
                questions.append({"question_id": qid, "image": files[image_id], "text": text, "category": category})
                labels[category].append({"question_id": len(labels[category]) + 1, "image": files[image_id],
                                         "text": text, "label": label})
    # Answers as model_vqa_loader writes them, with eval_pope's reading of each: right, wrong, right...
    replies = ["Yes, there is.", "No", "No, there is not.", "Yes", "Yes", "No."]
    for q, reply in zip(questions, replies * 4):
        answers.append({"question_id": q["question_id"], "prompt": q["text"], "text": reply, "answer_id": f"a{q['question_id']}",
                        "model_id": "llava-v1.5-13b", "metadata": {}})
    expected = {str(q["question_id"]): pope_said_yes(a["text"]) == (lab["label"] == "yes")
                for q, a, lab in zip(questions, answers, labels["adversarial"] + labels["random"])}
    answers.append({"question_id": 999, "text": "Yes"})                                  # unknown question
    questions.append({"question_id": 1000, "image": files[images[0]], "text": "Is there a cat in the image?",
                      "category": "popular"})
    answers.append({"question_id": 1000, "text": "Yes"})                                 # no popular labels
    folder = tmp_path / "coco"
    folder.mkdir()
    for category, rows in labels.items():
        (folder / f"coco_pope_{category}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "llava_pope_test.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    (tmp_path / "answers.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    summary = run_audit(tmp_path / "out", "--dictionary", str(coco_stats[0]), "--results",
                        str(tmp_path / "answers.jsonl"), "--questions", str(tmp_path / "llava_pope_test.jsonl"),
                        "--labels", str(folder))
    assert summary["parameters"]["format"] == "pope"
    items = summary["items"]
    assert (items["read"], items["valid"], items["invalid"]) == (26, 24, 2)
    assert items["invalid_by_reason"] == {"no-label": 1, "unknown-question": 1}
    assert set(items["by_group"]) == {"pope/adversarial", "pope/random"}
    rows = {r["id"]: r for r in read_jsonl(tmp_path / "out" / "items.jsonl")}
    assert {k: not r["failed"] for k, r in rows.items()} == expected
    assert 0 < items["accuracy"] < 1

    # Out of step (a label line missing): the pairs after it are label-mismatch, never misgraded.
    (folder / "coco_pope_random.json").write_text("".join(json.dumps(r) + "\n" for r in labels["random"][1:]))
    (folder / "coco_pope_adversarial.json").write_text(
        "".join(json.dumps(r) + "\n" for r in labels["adversarial"][:3]) + "{broken\n"
        + "".join(json.dumps(r) + "\n" for r in labels["adversarial"][4:]))
    summary = run_audit(tmp_path / "out2", "--dictionary", str(coco_stats[0]), "--results",
                        str(tmp_path / "answers.jsonl"), "--questions", str(tmp_path / "llava_pope_test.jsonl"),
                        "--labels", str(folder))
    reasons = summary["items"]["invalid_by_reason"]
    assert reasons["bad-label"] == 1 and reasons["label-mismatch"] >= 10 and reasons["no-label"] == 2
    assert summary["items"]["reference_lines_invalid"] == 1
    kept = {r["id"] for r in read_jsonl(tmp_path / "out2" / "items.jsonl")}
    assert kept and kept <= set(expected)
    assert all((not r["failed"]) == expected[r["id"]] for r in read_jsonl(tmp_path / "out2" / "items.jsonl"))


# ---- two dictionaries: before and after refinement --------------------------------------------

def test_two_dictionaries_show_the_failed_entities_moving(spark, coco_jsonl, coco_stats, sqa_audit, sqa_raw, tmp_path):
    """'After' = the COCO records plus records holding 300 of the failed questions (what tail-centred
    synthesis adds): their entities move from unseen/tail towards head."""
    from pipelines.stats import job as spark_stats

    corpus = tmp_path / "after.jsonl"
    extra = [{"id": f"s{i}", "conversations": [{"from": "human", "value": e["question"]}, {"from": "gpt", "value": "A"}]}
             for i, e in enumerate(sqa_raw["incorrect"][:300])]
    corpus.write_text(coco_jsonl.read_text() + "".join(json.dumps(r) + "\n" for r in extra))
    after_dir = tmp_path / "after-stats"
    execute(spark_stats.STAGE, ["--input", str(corpus), "--output", str(after_dir), *NLP_ARGS], spark)[1]
    summary = run_audit(tmp_path / "out", "--dictionary", str(coco_stats[0]), "--dictionary", str(after_dir),
                        "--results", str(SQA_RESULTS), "--perspectives", "T,W")
    assert summary["audits"][0] == {p: sqa_audit[1]["audits"][0][p] for p in ("token", "interrogation")}
    m = summary["comparison"]["token"]
    before = pq.read_table(coco_stats[0] / "dictionary").to_pandas()
    after = pq.read_table(after_dir / "dictionary").to_pandas()
    rows = read_jsonl(tmp_path / "out" / "items.jsonl")
    failed = [e for r in rows if r["failed"] for e in r["counts"][0]["token"]]
    b = dict(before[before.perspective == "token"][["entity", "count"]].itertuples(index=False))
    a = dict(after[after.perspective == "token"][["entity", "count"]].itertuples(index=False))
    distinct = set(failed)
    assert m["entities"] == len(distinct)
    assert m["rose"] == sum(a.get(e, 0) > b.get(e, 0) for e in distinct) > 0
    assert m["fell"] == 0  # only records were added
    tau = coco_stats[1]["perspectives"]["token"]["tau"]
    assert m["tail_occurrences_pct_after"] == pytest.approx(100 * np.mean([a.get(e, 0) <= tau for e in failed]))
    assert m["tail_occurrences_pct_after"] < m["tail_occurrences_pct_before"]
    assert m["moves"].get("unseen -> head", 0) + m["moves"].get("tail -> head", 0) > 0
    assert "Before and after refinement" in (tmp_path / "out" / "index.html").read_text()


# ---- the page, user mistakes, grounding ----------------------------------------------------

def test_audit_page_opens_in_headless_chromium_with_every_figure(sqa_audit):
    if not chromium():
        pytest.fail("chromium not installed: `make install` installs Debian's chromium")
    out, _ = sqa_audit
    load = open_page(out / "index.html")
    assert load.errors == []
    srcs = {i["src"] for i in load.images}
    assert {f"figures/{kind}_{p}.png" for kind in ("accuracy", "accumulation") for p in ("token", "interrogation")} \
        | {"figures/head_tail_0.png"} <= srcs
    assert all(i["complete"] and i["naturalWidth"] > 0 for i in load.images), load.images
    html = (out / "index.html").read_text()
    assert "Table 2" in html and "no item carries objects" in html


@pytest.mark.parametrize("args, message", [
    (["--dictionary", "{missing}", "--results", "{sqa}"], "no such directory"),
    (["--dictionary", "{stats}", "--results", "{missing}"], "--results: cannot read input"),
    (["--dictionary", "{stats}", "--results", "{sqa}", "--format", "nope"], "invalid choice: 'nope'"),
    (["--dictionary", "{stats}", "--results", "{sqa}", "--format", "pope"], "--format pope needs --questions"),
    (["--dictionary", "{stats}", "--results", "{sqa}", "--perspectives", "colour"], "unknown perspective 'colour'"),
    (["--dictionary", "{stats}", "--results", "{sqa}", "--pass-score", "0"], "--pass-score must be in (0, 1]"),
    (["--results", "{sqa}"], "the following arguments are required: --dictionary"),
    (["--dictionary", "{stats}", "--results", "{sqa}", "--format", "scienceqa", "--results", "{scienceqa}"],
     "not eval_science_qa.py's output"),
])
def test_user_mistakes_are_one_line_and_exit_2(coco_stats, tmp_path, capsys, args, message):
    from pipelines.cli import main

    paths = {"missing": str(tmp_path / "nothing"), "sqa": str(SQA_RESULTS), "stats": str(coco_stats[0]),
             "scienceqa": str(SCIENCEQA)}
    argv = ["audit", "--output", str(tmp_path / "o")] + [a.format(**paths) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("adr audit: error:") and "\n" not in err and message in err, err


def test_dictionaries_tagged_differently_do_not_compare(coco_stats, tmp_path, capsys):
    from pipelines.cli import main

    other = tmp_path / "other-stats"
    other.mkdir()
    manifest = {**coco_stats[1], "parameters": {**coco_stats[1]["parameters"], "nlp": "another_spacy_pipeline"}}
    (other / "manifest.json").write_text(json.dumps(manifest))
    (other / "dictionary").symlink_to(coco_stats[0] / "dictionary")
    assert main(["audit", "--dictionary", str(coco_stats[0]), "--dictionary", str(other), "--results", str(SQA_RESULTS),
                 "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "tagged by different spaCy pipelines" in err


def test_detector_grounds_items_with_images_and_no_objects(coco_stats, coco_items, tmp_path):
    from tests import tiny_models as tiny

    detector = tiny.build_zero_shot_detector(tmp_path / "owlvit", kind="owlvit")
    items = [{k: v for k, v in i.items() if k != "objects"} for i in coco_items[:6]]
    items[5]["image"] = "missing/nothing.jpg"
    items.append(coco_items[6])  # carries its own objects: not grounded
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    summary = run_audit(tmp_path / "out", "--dictionary", str(coco_stats[0]), "--results", str(path),
                        "--detector", str(detector), "--images-root", str(COCO_IMAGES), "--device", "cpu",
                        "--box-threshold", "0.0", "--text-threshold", "0.0", "--perspectives", "T,O,C")
    g = summary["grounding"]
    assert (g["grounded"], g["failed"]) == (5, 1) and g["labels"] > 0
    assert [f["id"] for f in read_jsonl(tmp_path / "out" / "grounding_failed.jsonl")] == [items[5]["id"]]
    rows = read_jsonl(tmp_path / "out" / "items.jsonl")
    assert sum(bool(r["counts"][0]["object"]) for r in rows[:5]) == 5 and rows[5]["counts"][0]["object"] == {}
    assert set(rows[6]["counts"][0]["object"]) == {normalise_object(o) for o in coco_items[6]["objects"]}
