"""Train the default English part-of-speech + lemma pipeline on Universal Dependencies EWT.

Reproducible end to end (fixed seed, CPU only, no downloads):

1. convert the EWT train and dev CoNLL-U files to spaCy DocBins (words, SpaceAfter=No
   spaces, tag = XPOS, pos = UPOS, morph = FEATS, lemma = LEMMA);
2. train ``scripts/tagger.cfg`` with ``spacy train`` (dev split for evaluation, model-best kept);
3. copy model-best into ``udfs/models/en_adr_ewt`` where ``udfs.nlp.load_nlp`` finds it;
4. report noun-lemma precision / recall / F1 and speed on dev (``scripts/eval_tagger.py``).

    python scripts/train_tagger.py [--train PATH] [--dev PATH] [--config scripts/tagger.cfg]
        [--work /tmp/tagger_work/run] [--output udfs/models/en_adr_ewt] [--set section.key=value ...]

Everything except the packaged model is written under --work.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import collections
import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.lookups import Lookups

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
for _p in (str(REPO), str(SCRIPTS)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from eval_tagger import SHARED_DATA, evaluate, read_conllu  # noqa: E402
from spacy.util import registry  # noqa: E402

DATA = SHARED_DATA / "ud_ewt"
DEFAULT_TRAIN = DATA / "en_ewt-ud-train.conllu"
DEFAULT_DEV = DATA / "en_ewt-ud-dev.conllu"
DEFAULT_CONFIG = SCRIPTS / "tagger.cfg"
DEFAULT_WORK = Path("/tmp/tagger_work/run")
DEFAULT_OUTPUT = REPO / "udfs" / "models" / "en_adr_ewt"

# XPOS whose morphological features matter to spaCy's rule lemmatizer (is_base_form).
_MORPH_TAGS = {"NN", "NNS", "NNP", "NNPS", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ",
               "JJ", "JJR", "JJS", "RB", "RBR", "RBS"}


# EWT keeps a hyphen after these prefixes inside one word (e-mail, non-profit, re-election,
# co-worker, anti-war ...), where spaCy's English infixes split every hyphen between letters.
EWT_HYPHEN_PREFIXES = ("e", "non", "pre", "anti", "mid", "re", "post", "co", "over", "pro", "multi", "ex",
                       "sub", "semi", "cross", "neo", "psycho", "socio", "counter", "intra", "inter", "vice",
                       "micro", "mis")

# Abbreviations EWT keeps with their period that spaCy's English exceptions split off
# ("Wed." even becomes "We" "d.").
EWT_ABBREVIATIONS = ("Capt.", "Lt.", "Ft.", "Sgt.", "Col.", "Drs.", "Sts.", "Reps.", "Attn.", "ext.", "approx.",
                     "dept.", "Dept.", "Mon.", "Tue.", "Tues.", "Wed.", "Thu.", "Thur.", "Thurs.", "Fri.",
                     "Sat.", "Sun.")
# Plural decades are one NNS word in EWT (60's, 1590's).
EWT_DECADES = tuple(f"{d}'s" for d in range(10, 100, 10)) + tuple(f"{d}'s" for d in range(1500, 2100, 10))


@registry.callbacks("adr_ewt.ewt_tokenizer.v1")
def ewt_tokenizer():
    """Bring spaCy's English tokenizer closer to EWT's word segmentation; saved with the pipeline."""

    def customise(nlp):
        from spacy.lang.char_classes import ALPHA, HYPHENS
        from spacy.util import compile_infix_regex

        split_hyphen = rf"(?<=[{ALPHA}0-9])(?:{HYPHENS})(?=[{ALPHA}])"
        keep = "".join(
            "(?<!^" + "".join(f"[{c}{c.upper()}]" for c in prefix) + ")" for prefix in EWT_HYPHEN_PREFIXES
        )
        infixes = [keep + pattern if pattern == split_hyphen else pattern for pattern in nlp.Defaults.infixes]
        if infixes == list(nlp.Defaults.infixes):
            raise ValueError("spaCy's English hyphen infix pattern changed; update ewt_tokenizer")
        nlp.tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
        for form in EWT_ABBREVIATIONS + EWT_DECADES:
            nlp.tokenizer.add_special_case(form, [{"ORTH": form}])
        for form in ("alot", "Alot", "ALOT"):  # UD splits it: a/DT lot/NN
            nlp.tokenizer.add_special_case(form, [{"ORTH": form[0]}, {"ORTH": form[1:]}])
        return nlp

    return customise


@registry.misc("adr_ewt.brown_cluster_norms.v1")
def brown_cluster_norms(max_words: int = 100000) -> Lookups:
    """A ``lexeme_norm`` table mapping the ``max_words`` most frequent words to their Brown cluster.

    spaCy has no struct attribute for Brown clusters, but hashes NORM into the tok2vec
    embedding: with this table a word's NORM is its cluster ("brown37") -- a distributional
    word class learnt on a large corpus (spacy-lookups-data ``en_lexeme_cluster``) -- while
    LOWER keeps the word's identity. Words outside the table keep the default norm (lowercase).
    The table is saved in the pipeline's vocab, so loading needs no code.
    """
    from spacy.lookups import Lookups, load_lookups

    data = load_lookups("en", ["lexeme_cluster", "lexeme_prob"])
    clusters = data.get_table("lexeme_cluster")
    probs = data.get_table("lexeme_prob")
    # Tables are keyed by string hash; keep the strings of the most probable words.
    words = sorted(clusters.keys(), key=lambda key: probs.get(key, -100.0), reverse=True)[:max_words]
    lookups = Lookups()
    table = lookups.add_table("lexeme_norm")
    for key in words:
        table[key] = f"brown{clusters[key]}"
    return lookups


@registry.callbacks("adr_ewt.renorm_vocab.v1")
def renorm_vocab():
    """Re-apply the ``lexeme_norm`` table to lexemes created before it was loaded."""

    def renorm(nlp):
        if "lexeme_norm" not in nlp.vocab.lookups:
            return nlp
        table = nlp.vocab.lookups.get_table("lexeme_norm")
        for lex in nlp.vocab:
            if lex.orth in table:
                lex.norm_ = table[lex.orth]
        return nlp

    return renorm


def form_cased_lemma(form: str, lemma: str) -> str:
    """The gold lemma with the capitalisation of its word form: Systems -> System, MILLIONS -> MILLION.

    EWT lowercases the lemmas of capitalised common words (Systems -> system, The -> the). The
    edit-tree lemmatizer learns one tree per edit, so case changes split each suffix rule into
    one rare tree per initial letter (S->s, P->p, ...) and it misses capitalised plurals. Training
    on form-cased lemmas keeps one tree per rule; lemmas are compared lowercased downstream
    (adr.entities.token.normalise_lemma).
    """
    if not lemma or lemma == form:
        return lemma
    if len(form) > 1 and form.isupper() and lemma.islower():
        return lemma.upper()
    if form[:1].isupper() and lemma[:1].islower() and lemma[:1].upper() == form[:1]:
        return form[:1] + lemma[1:]
    return lemma


def conllu_to_docbin(conllu: Path, out: Path, recase_lemmas: bool = False):
    """One Doc per sentence, tokenised as the treebank, with gold tag / pos / morph / lemma."""
    import spacy
    from spacy.tokens import Doc, DocBin

    vocab = spacy.blank("en").vocab
    docbin = DocBin(attrs=["ORTH", "SPACY", "TAG", "POS", "MORPH", "LEMMA"], store_user_data=False)
    n_sents = n_words = 0
    for sent in read_conllu(conllu):
        words = sent.words
        doc = Doc(
            vocab,
            words=[w.form for w in words],
            spaces=[w.space_after for w in words[:-1]] + [False],
            tags=[w.xpos for w in words],
            pos=[w.upos if w.upos != "_" else "X" for w in words],
            morphs=[w.feats if w.feats != "_" else "" for w in words],
            lemmas=[form_cased_lemma(w.form, w.lemma) if recase_lemmas else w.lemma for w in words],
        )
        docbin.add(doc)
        n_sents += 1
        n_words += len(words)
    out.parent.mkdir(parents=True, exist_ok=True)
    docbin.to_disk(out)
    return n_sents, n_words


def attribute_ruler_patterns(conllu: Path) -> list[dict]:
    """XPOS -> most frequent UPOS (and, for content-word tags, FEATS) in the treebank.

    Used only by pipeline designs with an ``attribute_ruler`` feeding spaCy's rule lemmatizer.
    Auxiliaries get their own patterns so that be/have/do/modals come out as AUX.
    """
    upos_by_tag: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    feats_by_tag: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    aux_words: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for sent in read_conllu(conllu):
        for w in sent.words:
            upos_by_tag[w.xpos][w.upos] += 1
            feats_by_tag[(w.xpos, w.upos)][w.feats] += 1
            if w.xpos.startswith("VB") or w.xpos == "MD":
                aux_words[w.form.lower()][w.upos] += 1
    patterns = []
    for tag, counts in sorted(upos_by_tag.items()):
        upos = counts.most_common(1)[0][0]
        attrs = {"POS": upos}
        if tag in _MORPH_TAGS:
            feats = feats_by_tag[(tag, upos)].most_common(1)[0][0]
            if feats != "_":
                attrs["MORPH"] = feats
        patterns.append({"patterns": [[{"TAG": tag}]], "attrs": attrs})
    aux = sorted(form for form, c in aux_words.items() if c["AUX"] > c["VERB"] and c["AUX"] >= 5)
    if aux:
        patterns.append({"patterns": [[{"TAG": {"IN": ["MD", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ"]},
                                        "LOWER": {"IN": aux}}]], "attrs": {"POS": "AUX"}})
    return patterns


def _config_has(config_path: Path, section: str, key: str) -> bool:
    from thinc.api import Config

    cfg = Config().from_disk(config_path, interpolate=False)
    return key in cfg.get(section, {})


def _parse_value(value: str):
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def package(model_best: Path, output: Path) -> None:
    """Copy the trained pipeline where ``udfs.nlp.DEFAULT_NLP`` points, with a descriptive meta."""
    if output.exists():
        shutil.rmtree(output)
    shutil.copytree(model_best, output)
    # The training data's paths are this machine's scratch files: not part of the shipped pipeline.
    from thinc.api import Config

    config = Config().from_disk(output / "config.cfg", interpolate=False)
    config["paths"].update({key: None for key in ("train", "dev", "ruler_patterns") if key in config["paths"]})
    config.to_disk(output / "config.cfg")
    meta_path = output / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(
        {
            "name": "adr_ewt",
            "version": "1.0.0",
            "description": "English XPOS tagger + lemmatizer for noun-lemma extraction, trained on "
            "UD English EWT (train split) by scripts/train_tagger.py with scripts/tagger.cfg",
            "license": "CC BY-SA 4.0 (UD English EWT)",
            "sources": [{"name": "UD English EWT", "url": "https://github.com/UniversalDependencies/UD_English-EWT",
                         "license": "CC BY-SA 4.0"}],
        }
    )
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=DEFAULT_TRAIN)
    parser.add_argument("--dev", type=Path, default=DEFAULT_DEV)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch directory (DocBins, checkpoints)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where the packaged pipeline goes")
    parser.add_argument("--no-package", action="store_true", help="train and evaluate, leave --output alone")
    parser.add_argument("--form-cased-lemmas", action="store_true",
                        help="train the lemmatizer on lemmas recased like their word (see form_cased_lemma); "
                        "the shipped pipeline was trained on the treebank's own lemma case")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. components.tok2vec.model.encode.width=64 (repeatable)")
    args = parser.parse_args(argv)

    from spacy.cli.train import train as spacy_train
    from spacy.util import load_model

    args.work.mkdir(parents=True, exist_ok=True)
    train_bin, dev_bin = args.work / "train.spacy", args.work / "dev.spacy"
    for src, dst in ((args.train, train_bin), (args.dev, dev_bin)):
        n_sents, n_words = conllu_to_docbin(src, dst, recase_lemmas=args.form_cased_lemmas)
        print(f"converted {src.name}: {n_sents} sentences, {n_words} words -> {dst}", flush=True)

    overrides = {"paths.train": str(train_bin), "paths.dev": str(dev_bin)}
    if _config_has(args.config, "paths", "ruler_patterns"):
        ruler = args.work / "attribute_ruler.json"
        ruler.write_text(json.dumps(attribute_ruler_patterns(args.train), indent=1))
        overrides["paths.ruler_patterns"] = str(ruler)
    for item in args.overrides:
        key, _, value = item.partition("=")
        overrides[key] = _parse_value(value)

    output_dir = args.work / "output"
    if output_dir.exists():
        shutil.rmtree(output_dir)
    start = time.perf_counter()
    spacy_train(args.config, output_dir, use_gpu=-1, overrides=overrides)
    train_seconds = time.perf_counter() - start
    print(f"training took {train_seconds:.0f} s", flush=True)

    model_best = output_dir / "model-best"
    target = model_best
    if not args.no_package:
        package(model_best, args.output)
        target = args.output
    nlp = load_model(target, exclude=["parser", "ner", "senter", "textcat"])
    scores = evaluate(nlp, args.dev)
    scores["train_seconds"] = round(train_seconds, 1)
    scores["model_bytes"] = sum(p.stat().st_size for p in Path(target).rglob("*") if p.is_file())
    print(json.dumps(scores, indent=2))
    (args.work / "scores.json").write_text(json.dumps(scores, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
