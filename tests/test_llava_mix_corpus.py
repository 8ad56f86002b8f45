"""The LLaVA-1.5-mix-shaped corpus generator (scripts/make_llava_mix.py) keeps the real file's facts."""

import collections
import copy
import json
import re
from pathlib import Path

import pytest

from scripts import make_llava_mix as mix
from scripts.make_llava_mix import generate, write

N = 20_000
REAL = {  # records by image prefix in llava_v1_5_mix665k.json (None: no image key)
    "coco/train2017/": 364_100,
    "vg/": 86_417,
    "gqa/images/": 72_140,
    "ocr_vqa/images/": 80_000,
    "textvqa/train_images/": 21_953,
    None: 40_688,
}
SHORT = "\nAnswer the question using a single word or phrase."
MC = re.compile(r"^<image>\n[^\n]+\nA\. [^\n]+\nB\. [^\n]+\nC\. [^\n]+\nD\. [^\n]+\n"
                r"Answer with the option's letter from the given choices directly\.$")
BOX = r"\[(\d\.\d\d), (\d\.\d\d), (\d\.\d\d), (\d\.\d\d)\]"


def prefix(record):
    image = record.get("image")
    if image is None:
        return None
    return next(p for p in REAL if p and image.startswith(p))


def spans(text):
    """(start, end) of each top-level record in the array text."""
    dec, out, i = json.JSONDecoder(), [], 1
    while text[i] != "]":
        _, end = dec.raw_decode(text, i)
        out.append((i, end))
        i = end + 2 if text[end] == "," else end
    return out


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("mix") / "mix.json"
    stats = write(path, generate(N, seed=0))
    text = path.read_text(encoding="ascii")
    return path, stats, text, json.loads(text)


def test_one_json_array_as_json_dump_writes_it(corpus):
    path, stats, text, records = corpus
    assert "\n" not in text and text.startswith("[{") and text.endswith("}]")
    assert isinstance(records, list) and len(records) == N == stats["records"]
    assert json.dumps(records) == text            # default separators, ensure_ascii, no indent
    assert path.stat().st_size == stats["bytes"]
    assert all("objects" not in r for r in records)


def test_prefix_proportions(corpus):
    _, _, _, records = corpus
    got = collections.Counter(prefix(r) for r in records)
    total = sum(REAL.values())
    for p, real in REAL.items():
        assert abs(got[p] / N - real / total) < 0.01, p
    assert sum(got.values()) == N
    counts = mix.source_counts(N)
    assert got["coco/train2017/"] == counts["coco"] and got[None] == counts["sharegpt"]
    vg_dirs = collections.Counter(r["image"].split("/")[1] for r in records if prefix(r) == "vg/")
    assert set(vg_dirs) == {"VG_100K", "VG_100K_2"}


def test_full_scale_counts_are_the_real_ones():
    assert sum(c for _, c in mix.SOURCES) == mix.FULL_RECORDS == 665_298
    assert sum(c for _, c in mix.COCO_KINDS) == 364_100
    got = mix.source_counts(mix.FULL_RECORDS)
    assert got == {"coco": 364_100, "vg": 86_417, "gqa": 72_140, "ocr_vqa": 80_000,
                   "textvqa": 21_953, "sharegpt": 40_688}
    assert sum(mix.source_counts(12_345).values()) == 12_345


def test_ids_and_repeats(corpus):
    _, stats, _, records = corpus
    seen, repeats, last, gaps, adjacent = set(), 0, {}, [], 0
    per_source = collections.Counter()
    for i, r in enumerate(records):
        if r["id"] in seen:
            repeats += 1
            per_source[prefix(r)] += 1
            gaps.append(i - last[r["id"]])
            adjacent += i - last[r["id"]] == 1
        seen.add(r["id"])
        last[r["id"]] = i
    assert abs(repeats / N - 0.376) < 0.02 and repeats == stats["repeated_ids"]
    coco = [r for r in records if prefix(r) == "coco/train2017/"]
    assert 2.9 < len(coco) / len({r["id"] for r in coco}) < 3.5     # ~118K images, 364K records
    for p in ("vg/", "gqa/images/", "ocr_vqa/images/", "textvqa/train_images/", None):
        assert per_source[p] <= 0.002 * N, p                         # nearly unique: duplicates only
    assert adjacent < 0.01 * repeats and sum(gaps) / len(gaps) > N / 10   # spread through the file
    for r in records:
        p, rid = prefix(r), r["id"]
        if p is not None:
            assert r["image"] == f"{p}{rid}.jpg" or (p == "vg/" and r["image"].endswith(f"/{rid}.jpg"))
        if p == "coco/train2017/":
            assert re.fullmatch(r"\d{12}", rid)
        elif p == "vg/":
            assert re.fullmatch(r"vg/VG_100K(_2)?/\d+\.jpg", r["image"])
        elif p == "gqa/images/":
            assert re.fullmatch(r"n?\d+", rid)
        elif p == "ocr_vqa/images/":
            assert re.fullmatch(r"\d{9}[\dX]", rid)
        elif p == "textvqa/train_images/":
            assert re.fullmatch(r"[0-9a-f]{16}", rid)
        else:
            assert re.fullmatch(r"[A-Za-z0-9]{7}_\d+", rid)


def test_every_record_is_valid(corpus):
    _, _, _, records = corpus
    placements = collections.Counter()
    for r in records:
        assert set(r) <= {"id", "image", "conversations"} and isinstance(r["id"], str) and r["id"]
        conv = r["conversations"]
        assert conv and len(conv) % 2 == 0
        for i, turn in enumerate(conv):
            assert set(turn) == {"from", "value"} and turn["from"] == ("human", "gpt")[i % 2]
            assert isinstance(turn["value"], str) and turn["value"].strip()
        text = [t["value"] for t in conv]
        if "image" in r:
            assert isinstance(r["image"], str)
            assert text[0].count("<image>") == 1 and all("<image>" not in v for v in text[1:])
            first = text[0]
            assert first.startswith("<image>\n") or first.endswith("\n<image>")
            placements[first.startswith("<image>\n")] += 1
        else:
            assert all("<image>" not in v for v in text)
    assert placements[True] and placements[False]


def test_record_kinds(corpus):
    _, stats, _, records = corpus
    grouped = collections.Counter()
    mc = boxes = regions = 0
    for r in records:
        humans = [t["value"] for t in r["conversations"][::2]]
        gpts = [t["value"] for t in r["conversations"][1::2]]
        if len(humans) >= 2 and all(h.endswith(SHORT) for h in humans) and humans[0].startswith("<image>\n"):
            grouped[prefix(r)] += 1
        if MC.match(humans[0]):
            mc += 1
            assert gpts[0] in "ABCD" and len(gpts[0]) == 1
        for h, g in zip(humans, gpts):
            m = re.fullmatch(BOX, g)
            if "Please provide the bounding box coordinate of the region this sentence describes: " in h:
                assert m, g
                x1, y1, x2, y2 = map(float, m.groups())
                assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
                boxes += 1
            if re.search(r"Please provide a short description for this region: " + BOX + "$", h):
                regions += 1
    assert grouped["coco/train2017/"] and grouped["gqa/images/"] and grouped["ocr_vqa/images/"]
    assert mc > 0.05 * N and boxes and regions
    ocr_questions = collections.Counter(t["value"] for r in records if prefix(r) == "ocr_vqa/images/"
                                        for t in r["conversations"][::2])
    assert ocr_questions.most_common(1)[0][1] > 0.2 * sum(1 for r in records if prefix(r) == "ocr_vqa/images/")
    assert any("Reference OCR token: " in r["conversations"][0]["value"]
               for r in records if prefix(r) == "textvqa/train_images/")
    assert 110 < stats["mean_words"] < 132                              # real file: ~121 words/record


def test_text_only_records_are_long_and_the_tail(corpus):
    _, _, _, records = corpus
    text_only = [r for r in records if "image" not in r]
    chars = [sum(len(t["value"]) for t in r["conversations"]) for r in text_only]
    assert sum(chars) / len(chars) > 2000
    assert max(len(r["conversations"]) for r in text_only) >= 8
    words = sorted(records, key=lambda r: -sum(len(t["value"].split()) for t in r["conversations"]))
    top = words[: N // 100]
    assert sum("image" not in r for r in top) > 0.8 * len(top)


def test_exact_duplicates_are_byte_identical(corpus):
    _, stats, text, records = corpus
    raw = [text[a:b] for a, b in spans(text)]
    assert len(raw) == N
    first, dups = {}, []
    for i, s in enumerate(raw):
        if s in first:
            dups.append((first[s], i))
        else:
            first[s] = i
    assert len(dups) == round(0.0005 * N) == stats["exact_duplicates"]
    assert all(records[a] == records[b] for a, b in dups)


@pytest.mark.needs_shared
def test_deterministic_for_a_seed(tmp_path):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    write(a, generate(3000, seed=7))
    write(b, generate(3000, seed=7))
    write(c, generate(3000, seed=8))
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


@pytest.mark.needs_shared
def test_derived_coco_ids_keep_one_real_images_captions():
    """Past the real val ids, COCO ids are real id + k * 1,000,000 with that image's captions."""
    real = mix.load_corpus()
    small = copy.copy(real)
    small.coco_ids, small.coco_caps = real.coco_ids[:200], real.coco_caps[:200]
    small._facts = [None] * 200
    key = str(Path("/nonexistent/llava-mix-test-corpus").resolve())
    mix._CORPORA[key] = small
    try:
        records = list(generate(6000, seed=3, data_dir=key))
    finally:
        del mix._CORPORA[key]
    caps = dict(zip(small.coco_ids, small.coco_caps))
    coco = [r for r in records if prefix(r) == "coco/train2017/"]
    ids = {int(r["id"]) for r in coco}
    assert max(ids) > 1_000_000 and all(i % 1_000_000 in caps for i in ids)
    details = [r for r in coco if len(r["conversations"]) == 2 and r["conversations"][1]["value"].startswith(
        "The image shows ")]
    assert details
    for r in details:
        answer = r["conversations"][1]["value"]
        assert sum(c in answer for c in caps[int(r["id"]) % 1_000_000]) >= 2


@pytest.mark.needs_shared
def test_cli_scale(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert mix.main(["--output", str(out), "--scale", "0.01", "--seed", "2"]) == 0
    assert len(json.loads(out.read_text())) == round(0.01 * 665_298)
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and f"records={round(0.01 * 665_298)}" in line and "mean_words=" in line
