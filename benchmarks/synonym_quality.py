"""Quality check of synonym synthesis, independent of adr/synonyms.py: diff each synonym record
against its seed, word by word, and measure what the replacements did to the record's truth.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.synonym_quality \
        [--records 4000] [--seed 0] [--input CORPUS | --run RUN_DIR] [--work DIR] [--sample 20] [--json]

Without --run it writes a LLaVA-shaped corpus (scripts/make_llava_mix.py; or takes --input) and
runs `adr run --master local[2] --force` on it in a child process (minutes on 2 cores). --run
reads an existing run directory; its corpus is --input or the one its stats manifest names.
The replacements are recovered from the text (difflib on word tokens), not from provenance;
provenance is only checked against them. Targets: 0 % of records change a short answer, 0 %
replace a stoplist noun (or put one in), under 5 % of replacements are multiword phrases.
"""

from __future__ import annotations

import argparse
import collections
import difflib
import functools
import glob
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

from adr.records import IMAGE_TOKEN, content_digest, record_key

ROOT = Path(__file__).resolve().parents[1]
TOKEN = re.compile(r"\n|\w+(?:['’-]\w+)*|[^\w\s]")
ARTICLES = frozenset({"a", "an", "the"})
SHORT_PROMPTS = ("single word or phrase", "option's letter", "reference ocr token")
NUMBER_OR_BOX = re.compile(r"^[\[(]?\s*-?\d[\d.,\s-]*[\])]?\.?$")
# Abstract, temporal, positional, colour, media, quantity, template and pronoun-like nouns.
STOPLIST = frozenset("""
image picture photo photograph photography snapshot shot scene view frame background foreground
camera video screen color colour shade hue tone side top bottom front back rear left right middle
center centre corner edge end inside outside surface level direction position place spot area
region part piece section portion time day night morning afternoon evening year month week hour
minute moment season today date period while thing stuff object item kind type sort form style
number amount total count lot group couple pair bunch set way manner person people someone
somebody something anything everything nothing one ones other others self question answer word
phrase letter option choice reference token text sentence caption description detail title name
box coordinate example fact idea reason purpose use point""".split())
FLAGS = ("multiword", "stop", "proper", "not_synonym", "unlisted")  # per replacement
BAD_LEXNAMES = frozenset({"noun.cognition", "noun.communication", "noun.time", "noun.attribute",
                          "noun.quantity", "noun.relation", "noun.shape"})


@functools.cache
def wn():
    from nltk.corpus import wordnet  # data: NLTK_DATA or sys.prefix/nltk_data (scripts/install_wordnet.py)

    wordnet.ensure_loaded()
    return wordnet


def lemma(words: list[str]) -> str:
    """WordNet noun lemma of a (possibly multiword) token run: lower case, possessive and plural gone."""
    s = "_".join(re.sub(r"['’]s$", "", w.lower()) for w in words)
    return (wn().morphy(s, wn().NOUN) or s).replace("_", " ")


def is_stop(words: list[str], senses: bool = True) -> bool:
    """In the stoplist or, with `senses`, a noun whose dominant WordNet sense is abstract
    (noun.location: only positional words, those also adjectives or adverbs: top, left, north)."""
    if lemma(words) in STOPLIST or " ".join(w.lower() for w in words) in STOPLIST:
        return True
    if not senses:
        return False
    name = lemma(words).replace(" ", "_")
    senses = wn().synsets(name, wn().NOUN)
    lex = senses[0].lexname() if senses else ""
    positional = lex == "noun.location" and bool(wn().synsets(name, "a") or wn().synsets(name, "r"))
    return lex in BAD_LEXNAMES or positional


def synonymous(old: list[str], new: list[str]) -> bool:
    """Do the two share a WordNet noun synset? ('cares' -> 'autos' does not: care is not car)."""
    a, b = (lemma(w).replace(" ", "_") for w in (old, new))
    return bool(set(wn().synsets(a, wn().NOUN)) & set(wn().synsets(b, wn().NOUN)))


def absorb(aw, bw, i1, i2, j1, j2):
    """A pure insertion/deletion is part of a multiword swap: join it to the neighbouring word
    with which it makes a WordNet lemma ('football' + 'game'), else to the previous word."""
    options = []
    if i1 > 0 and j1 > 0 and aw[i1 - 1] == bw[j1 - 1] and aw[i1 - 1][0].isalnum() and aw[i1 - 1] not in ARTICLES:
        options.append((i1 - 1, i2, j1 - 1, j2))
    if i2 < len(aw) and j2 < len(bw) and aw[i2] == bw[j2] and aw[i2][0].isalnum() and aw[i2] not in ARTICLES:
        options.append((i1, i2 + 1, j1, j2 + 1))
    for o in options:
        longer = bw[o[2]:o[3]] if i1 == i2 else aw[o[0]:o[1]]
        if wn().synsets("_".join(w.replace("'s", "") for w in longer)):
            return o
    return options[0] if options else (i1, i2, j1, j2)


def hunks(a_text: str, b_text: str) -> list[dict]:
    """The replacements that turn a_text into b_text: old/new words and character spans."""
    a, b = ([(m.group(), m.start(), m.end()) for m in TOKEN.finditer(t)] for t in (a_text, b_text))
    aw, bw = [t[0].lower() for t in a], [t[0].lower() for t in b]
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, aw, bw, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        while i1 < i2 and j1 < j2 and aw[i1] in ARTICLES and bw[j1] in ARTICLES:  # "a" -> "an"
            i1, j1 = i1 + 1, j1 + 1
        if i1 == i2 and j1 == j2:
            continue
        if i1 == i2 or j1 == j2:
            i1, i2, j1, j2 = absorb(aw, bw, i1, i2, j1, j2)
        pairs = [(i, i + 1, j, j + 1) for i, j in zip(range(i1, i2), range(j1, j2))] \
            if i2 - i1 == j2 - j1 > 1 else [(i1, i2, j1, j2)]
        for p1, p2, q1, q2 in pairs:
            at = a[p1][1] if p1 < len(a) else len(a_text)
            start = p1 == 0 or a[p1 - 1][0] in (".", "!", "?", ":", "\n")
            out.append({"old": [t[0] for t in a[p1:p2]], "new": [t[0] for t in b[q1:q2]],
                        "span": (at, a[p2 - 1][2]) if p1 < p2 else (at, at),
                        "new_span": (b[q1][1], b[q2 - 1][2]) if q1 < q2 else (0, 0),
                        "proper": p1 < p2 and a[p1][0][:1].isupper() and not start})
    return out


def is_short_answer(turns: list[dict], i: int) -> bool:
    text = turns[i]["value"].strip()
    prompt = turns[i - 1]["value"].lower() if i and turns[i - 1]["from"] == "human" else ""
    return (turns[i]["from"] == "gpt" and (1 <= len(text.split()) <= 3 or bool(NUMBER_OR_BOX.match(text))
            or any(p in prompt for p in SHORT_PROMPTS)))


def listed(h: dict, prov: dict | list) -> bool:
    """Does provenance ({noun: synonym}, or [{noun, synonym, ...}]) name this replacement, inflected
    or ending a hyphenated word ('16-nation')?"""
    def names(words: list[str], noun: str) -> bool:
        text = " ".join(words).lower()
        last = text.rsplit("-", 1)[-1]
        return any(w in (noun, noun + "s", noun + "es") for w in (text, last, lemma(words), lemma([last])))

    pairs = prov.items() if isinstance(prov, dict) else [(p["noun"], p["synonym"]) for p in prov]
    return any(names(h["old"], k) and names(h["new"], v) for k, v in pairs)


def analyse(seed: dict, synth: dict) -> dict:
    """Per-record flags and the replacements found, turn by turn."""
    a_turns, b_turns = seed["conversations"], synth["conversations"]
    if [t["from"] for t in a_turns] != [t["from"] for t in b_turns]:
        return {"mismatch": True, "hunks": [], "turns": [], "short": False}
    found, turns, short = [], [], False
    for i, (ta, tb) in enumerate(zip(a_turns, b_turns)):
        a_text, b_text = ta["value"].replace(IMAGE_TOKEN, ""), tb["value"].replace(IMAGE_TOKEN, "")
        if a_text == b_text:
            continue
        hs = hunks(a_text, b_text)
        short = short or is_short_answer(a_turns, i)
        found += hs
        turns.append((i, ta["from"], a_text, b_text, hs))
    prov = synth["adr"].get("parameters", {}).get("replacements", {})
    for h in found:
        h["stop"] = is_stop(h["old"]) or is_stop(h["new"], senses=False)
        h["multiword"] = len(h["old"]) == 1 and len(h["new"]) > 1
        h["not_synonym"] = not synonymous(h["old"], h["new"])
        h["unlisted"] = not listed(h, prov)
    return {"mismatch": False, "hunks": found, "turns": turns, "short": short}


def marked(a_text: str, b_text: str, hs: list[dict], ctx: int = 60) -> str:
    """The seed turn with each change shown as [old -> new], long stretches between cut short."""
    pieces, pos = [], 0
    for h in sorted(hs, key=lambda h: h["span"]):
        s, e = h["span"]
        pieces += [a_text[pos:s], f"[{a_text[s:e]} -> {b_text[slice(*h['new_span'])]}]"]
        pos = max(pos, e)
    pieces.append(a_text[pos:])
    last = len(pieces) - 1
    for k in range(0, len(pieces), 2):
        p = pieces[k]
        if len(p) > 2 * ctx:
            pieces[k] = "…" + p[-ctx:] if k == 0 else p[:ctx] + "…" if k == last else f"{p[:ctx]} … {p[-ctx:]}"
    return "".join(pieces).replace("\n", "⏎ ")


def seeds_by_key(paths: list[str]) -> dict[str, dict]:
    """Record key -> record of the corpus (a JSON array or JSON Lines per file), keyed as the pipeline
    keys them: content digest, plus the occurrence number of byte-identical copies in input order."""
    seen, out = collections.Counter(), {}
    for name in (n for path in paths for n in (sorted(glob.glob(path)) or [path])):
        text = Path(name).read_text(encoding="utf-8")
        lines = [json.loads(x) for x in text.splitlines() if x.strip()] if text.lstrip()[:1] != "[" else None
        for r in lines if lines is not None else json.loads(text):
            d = content_digest(r)
            out[record_key(d, seen[d])] = r
            seen[d] += 1
    return out


def token_frequency(run: Path) -> tuple[dict, int]:
    """The corpus' token counts (OUT/stats/dictionary) and the token perspective's tau."""
    import pyarrow.parquet as pq

    table = pq.read_table(str(run / "stats" / "dictionary"), columns=["entity", "count"],
                          filters=[("perspective", "==", "token")])
    tau = json.loads((run / "stats" / "manifest.json").read_text())["perspectives"]["token"]["tau"]
    return dict(zip(table["entity"].to_pylist(), table["count"].to_pylist())), tau


def run_adr(corpus: Path, out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pipelines.cli", "run", "--input", str(corpus), "--output", str(out),
           "--master", "local[2]", "--force"]
    print("running:", " ".join(cmd), file=sys.stderr)
    rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=sys.stderr).returncode
    if rc:
        raise SystemExit(f"adr run failed (exit {rc})")


def jsonl(pattern: Path) -> list[dict]:
    return [json.loads(line) for name in sorted(glob.glob(str(pattern)))
            for line in Path(name).read_text(encoding="utf-8").splitlines() if line.strip()]


def pair(run: Path, corpus: list[str]) -> tuple[list[tuple], int]:
    """(synthetic record, its analysis) for every synonym record whose seed is in the corpus; unpaired."""
    seeds = seeds_by_key(corpus)
    synth = [r for r in jsonl(run / "synthesize" / "synthetic" / "*.jsonl")
             if r.get("adr", {}).get("method") == "synonym"]
    paired = [(r, analyse(seeds[r["adr"]["seed_key"]], r)) for r in synth if r["adr"]["seed_key"] in seeds]
    return paired, len(synth) - len(paired)


def sample(paired: list[tuple], k: int, seed: int) -> list[dict]:
    changed = sorted((x for x in paired if x[1]["hunks"]), key=lambda x: x[0]["id"])
    return [{"id": r["id"], "seed_key": r["adr"]["seed_key"],
             "turns": [{"turn": i, "from": who, "text": marked(a, b, hs)} for i, who, a, b, hs in res["turns"]]}
            for r, res in random.Random(seed).sample(changed, min(k, len(changed)))]


def measure(run: Path, corpus: list[str], sample_n: int, seed: int) -> dict:
    """The report: counts per record and per replacement, synonym frequency bands (tail: 1..tau, as
    adr/thresholds.py has it), failures, a sample and the targets."""
    paired, unpaired = pair(run, corpus)
    counts, tau = token_frequency(run)
    n, hs = len(paired), [h for _, res in paired for h in res["hunks"]]
    per = [len(res["hunks"]) for _, res in paired]

    def records(flag) -> int:
        return sum(1 for _, res in paired if any(h[flag] for h in res["hunks"]))

    def band(h) -> str:
        c = counts.get(lemma(h["new"]), 0)
        return "unseen" if c == 0 else "tail" if c <= tau else "head"

    freq = collections.Counter(map(band, hs))
    failed = jsonl(run / "synthesize" / "failed" / "*.jsonl")
    failed = collections.Counter(f"{f['method']}:{f['reason']}" for f in failed)
    stops = collections.Counter(f"{' '.join(h['old'])} -> {' '.join(h['new'])}".lower() for h in hs if h["stop"])
    report = {
        "run": str(run), "synonym_records": n, "unpaired": unpaired,
        "records": {"short_answer_changed": sum(bool(res["short"]) for _, res in paired),
                    "stoplist_replacement": records("stop"), "multiword_replacement": records("multiword"),
                    "proper_noun_replaced": records("proper"), "not_a_wordnet_synonym": records("not_synonym"),
                    "provenance_incomplete": records("unlisted"),
                    "turn_structure_changed": sum(res["mismatch"] for _, res in paired),
                    "no_change_found": sum(not res["hunks"] for _, res in paired)},
        "replacements": {"total": len(hs), **{k: sum(h[k] for h in hs) for k in FLAGS},
                         "per_record_mean": round(sum(per) / n, 2) if n else 0.0,
                         "per_record_max": max(per, default=0)},
        "synonym_frequency": {"tau": tau, **{k: freq[k] for k in ("tail", "unseen", "head")}},
        "top_stoplist_replacements": dict(stops.most_common(15)),
        "failed_by_reason": dict(sorted(failed.items())), "sample": sample(paired, sample_n, seed)}
    report["targets"] = {
        "short answers changed == 0%": n > 0 and report["records"]["short_answer_changed"] == 0,
        "stoplist replacements == 0%": n > 0 and report["records"]["stoplist_replacement"] == 0,
        "multiword replacements < 5%": n > 0 and report["replacements"]["multiword"] < 0.05 * max(len(hs), 1)}
    return report


def describe(rep: dict) -> str:
    def pct(count: int, total: int) -> str:
        return f"{count:>7} ({100 * count / total:5.1f}%)" if total else f"{count:>7}"

    n, r, f = rep["synonym_records"], rep["replacements"], rep["synonym_frequency"]
    lines = [f"{rep['run']}: {n} synonym records paired with their seeds ({rep['unpaired']} unpaired)", "",
             "records (share of synonym records):"]
    lines += [f"  {k.replace('_', ' '):<30}{pct(v, n)}" for k, v in rep["records"].items()]
    lines += ["", f"replacements found by the diff: {r['total']} (per record: mean {r['per_record_mean']}, "
                  f"max {r['per_record_max']}); share of them:"]
    lines += [f"  {label:<30}{pct(r[k], r['total'])}" for k, label in (
        ("multiword", "one word -> a phrase"), ("stop", "stoplist noun, or by one"),
        ("proper", "proper noun (capitalised)"), ("not_synonym", "not a WordNet synonym"),
        ("unlisted", "missing from provenance"))]
    lines += ["", f"synonyms by corpus token count (tau {f['tau']}):"]
    lines += [f"  {k:<30}{pct(f[k], r['total'])}" for k in ("tail", "unseen", "head")]
    lines += ["", "most frequent stoplist replacements: "
              + ", ".join(f"{k} ({v})" for k, v in rep["top_stoplist_replacements"].items()),
              "failed: " + (", ".join(f"{k} {v}" for k, v in rep["failed_by_reason"].items()) or "none"), "",
              f"sample of {len(rep['sample'])} synonym records (changed turns only, [seed -> synthetic]):"]
    for s in rep["sample"]:
        lines.append(f"- {s['id']} (seed {s['seed_key']})")
        lines += [f"    turn {t['turn']} {t['from']}: {t['text']}" for t in s["turns"]]
    lines += ["", "targets:"] + [f"  {k:<32}{'met' if ok else 'NOT MET'}" for k, ok in rep["targets"].items()]
    return "\n".join(lines)


def tagged_corpus(records: list[dict], cache: Path) -> list[list[str]]:
    """Each record's noun lemmas as the token perspective tags them (cached: tagging is minutes)."""
    if cache.exists():
        return json.loads(cache.read_text())
    from udfs.entities import entities_of

    out = [found["token"] for found in entities_of(records, ("token",))]
    cache.write_text(json.dumps(out))
    return out


def offered_swaps(records: list[dict], nouns: list[list[str]], fits) -> list[dict]:
    """What the synonym step offers per record (pipelines.synthesize.offers.synonym_choices), with
    `fits` as the evidence rule (fits=lambda *_: True is the rule before evidence), without a run."""
    from adr.entities.registry import PERSPECTIVES
    from adr.thresholds import histogram, threshold
    from pipelines.synthesize.offers import sense_evidence, synonym_choices

    counts = collections.Counter(n for ns in nouns for n in set(ns))
    tau = threshold(histogram(counts.values()), PERSPECTIVES["token"].tail_share).tau
    out = []
    for i, (record, found) in enumerate(zip(records, nouns)):
        turns, image = record["conversations"], bool(record.get("image"))
        for choice in synonym_choices(turns, found, counts, tau, image, fits):
            noun = choice["noun"]
            text = " ".join(t["value"] for t in turns).replace(IMAGE_TOKEN, "").replace("\n", " ")
            m = re.search(r"[^.?!]*\b" + re.escape(noun) + r"(?:e?s)?\b[^.?!]*[.?!]?", text, re.IGNORECASE)
            out.append({"record": i, "noun": noun, "synonym": choice["synonym"],
                        "context": sorted(sense_evidence(turns, noun, found, image)),
                        "text": (m.group().strip() if m else text)[:200]})
    return out


def evidence(n: int, seed: int, work: Path, judged: Path, sample_n: int) -> dict:
    """Offers before (dominant sense only) and after (context evidence) on n generated records."""
    from scripts.make_llava_mix import generate
    from udfs.wordnet import sense_fits

    work.mkdir(parents=True, exist_ok=True)
    records = list(generate(n, seed=seed))
    nouns = tagged_corpus(records, work / f"nouns-{n}-{seed}.json")
    verdicts = {}
    if judged.exists():
        for line in judged.read_text().splitlines():
            if line.strip():
                j = json.loads(line)
                verdicts[(j["noun"], j["synonym"])] = j["verdict"]
    report = {"records": n}
    for name, fits in (("before", lambda *_: True), ("after", sense_fits)):
        swaps = offered_swaps(records, nouns, fits)
        (work / f"swaps-{name}-{n}-{seed}.jsonl").write_text("".join(json.dumps(s) + "\n" for s in swaps))
        pairs = [verdicts.get((s["noun"], s["synonym"])) for s in swaps]
        report[name] = {"replacements": len(swaps), "seeds": len({s["record"] for s in swaps}),
                        "judged_wrong": sum(v == "wrong" for v in pairs), "judged_right": sum(v == "right" for v in pairs),
                        "sample": random.Random(seed).sample(swaps, min(sample_n, len(swaps)))}
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=4000, help="size of the generated corpus")
    ap.add_argument("--seed", type=int, default=0, help="corpus generator and sample seed")
    ap.add_argument("--input", help="corpus to use instead of a generated one")
    ap.add_argument("--run", type=Path, help="an existing `adr run` output directory (no run)")
    ap.add_argument("--work", type=Path, help="where corpus and run go (default /tmp/adr-synonym-quality-*)")
    ap.add_argument("--sample", type=int, default=20)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--evidence", action="store_true",
                    help="no run: the synonym offers before and after the context-evidence rule, "
                         "scored against benchmarks/judged_swaps.jsonl")
    args = ap.parse_args(argv)
    if args.evidence:
        rep = evidence(args.records, args.seed, args.work or Path("/tmp/adr-synonym-evidence"),
                       ROOT / "benchmarks" / "judged_swaps.jsonl", args.sample)
        print(json.dumps(rep, ensure_ascii=False, indent=1))
        return 0
    name = Path(args.input).stem if args.input else f"{args.records}-{args.seed}"
    work = args.work or Path(f"/tmp/adr-synonym-quality-{name}")
    run = args.run or work / "run"
    if args.input:
        corpus = [args.input]
    elif args.run:
        corpus = json.loads((run / "stats" / "manifest.json").read_text())["input"]["files"]
    else:
        from scripts.make_llava_mix import generate, write

        work.mkdir(parents=True, exist_ok=True)
        corpus = [str(work / "llava_mix.json")]
        write(corpus[0], generate(args.records, seed=args.seed))
    if not args.run:
        run_adr(Path(corpus[0]), run)
    report = measure(run, corpus, args.sample, args.seed)
    print(json.dumps(report, ensure_ascii=False) if args.json else describe(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
