"""Noun-lemma extraction quality and speed of a spaCy pipeline on a UD CoNLL-U file.

For every sentence of the file:

* gold = noun_lemmas([(XPOS, LEMMA) for every word line]) -- multiword-token range lines
  ("3-4") and empty nodes ("3.1") are skipped;
* predicted = noun_lemmas(tagged_nouns(nlp, [text])) where text is the "# text = " comment.

Sets are per sentence. TP = sum |gold & predicted|, precision = TP / sum |predicted|,
recall = TP / sum |gold|, f1 their harmonic mean. words_per_s = gold word count / seconds
spent tagging all texts as the engines do (``udfs.nlp.tagged_nouns``; one process, one thread).

    python scripts/eval_tagger.py [--nlp PATH] [--conllu PATH] [--limit N]
"""

from __future__ import annotations

import os

# One thread for BLAS / OpenMP / torch before numpy or torch get imported by anything.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from adr.entities.token import noun_lemmas  # noqa: E402
from udfs.nlp import DEFAULT_NLP, load_nlp, tagged_nouns  # noqa: E402

# The shared data beside the checkout (../shared/data), as the tests find it; ADR_SHARED_DATA elsewhere.
SHARED_DATA = Path(os.environ.get("ADR_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_DEV = str(SHARED_DATA / "ud_ewt" / "en_ewt-ud-dev.conllu")


@dataclass
class Word:
    form: str
    lemma: str
    upos: str
    xpos: str
    feats: str
    space_after: bool


@dataclass
class Sentence:
    sent_id: str
    text: str
    words: list[Word] = field(default_factory=list)


def _space_after(misc: str) -> bool:
    return "SpaceAfter=No" not in misc.split("|")


def read_conllu(path: str | os.PathLike, limit: int | None = None) -> Iterator[Sentence]:
    """Sentences of a CoNLL-U file: its text and its syntactic words.

    Range lines of multiword tokens and empty nodes are not words. Words inside a multiword
    token are written without space between them; the last takes the token's SpaceAfter.
    """
    sent_id, text, words = "", None, []
    mwt: tuple[int, int, bool] | None = None
    count = 0
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if not line:
                if words:
                    if text is None:
                        text = "".join(w.form + (" " if w.space_after else "") for w in words).rstrip()
                    yield Sentence(sent_id, text, words)
                    count += 1
                    if limit is not None and count >= limit:
                        return
                sent_id, text, words, mwt = "", None, [], None
                continue
            if line.startswith("#"):
                if line.startswith("# text ="):
                    text = line[len("# text =") :].strip()
                elif line.startswith("# sent_id ="):
                    sent_id = line[len("# sent_id =") :].strip()
                continue
            cols = line.split("\t")
            if len(cols) != 10:
                raise ValueError(f"{path}: malformed CoNLL-U line {line!r}")
            wid = cols[0]
            if "." in wid:  # empty node of enhanced dependencies
                continue
            if "-" in wid:  # multiword token range
                start, end = (int(x) for x in wid.split("-"))
                mwt = (start, end, _space_after(cols[9]))
                continue
            index = int(wid)
            if mwt is not None and mwt[0] <= index <= mwt[1]:
                space = mwt[2] if index == mwt[1] else False
            else:
                space = _space_after(cols[9])
            words.append(Word(cols[1], cols[2], cols[3], cols[4], cols[5], space))
    if words and (limit is None or count < limit):
        if text is None:
            text = "".join(w.form + (" " if w.space_after else "") for w in words).rstrip()
        yield Sentence(sent_id, text, words)


def _single_thread() -> None:
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def evaluate(nlp, conllu_path: str | os.PathLike = DEFAULT_DEV, limit: int | None = None,
             batch_size: int | None = None) -> dict:
    """Noun-lemma precision / recall / F1 of ``nlp`` against gold XPOS + LEMMA, and its speed.

    batch_size: texts per ``nlp.pipe`` batch; the pipeline's own ``nlp.batch_size`` by default.
    """
    _single_thread()
    sentences = list(read_conllu(conllu_path, limit=limit))
    texts = [s.text for s in sentences]
    gold = [noun_lemmas((w.xpos, w.lemma) for w in s.words) for s in sentences]
    n_words = sum(len(s.words) for s in sentences)

    start = time.perf_counter()
    tagged = list(tagged_nouns(nlp, texts, batch_size=batch_size or nlp.batch_size))
    seconds = time.perf_counter() - start

    tp = n_pred = n_gold = 0
    for pairs, gold_set in zip(tagged, gold):
        pred_set = noun_lemmas(pairs)
        tp += len(gold_set & pred_set)
        n_pred += len(pred_set)
        n_gold += len(gold_set)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "sentences": len(sentences),
        "words": n_words,
        "words_per_s": round(n_words / seconds, 1) if seconds > 0 else float("inf"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nlp", default=DEFAULT_NLP, help="spaCy pipeline (directory or package name)")
    parser.add_argument("--conllu", default=DEFAULT_DEV, help="CoNLL-U file with # text = comments")
    parser.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    args = parser.parse_args(argv)
    nlp = load_nlp(args.nlp)
    print(json.dumps(evaluate(nlp, args.conllu, limit=args.limit), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
