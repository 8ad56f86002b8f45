"""Loading the part-of-speech pipeline behind token entities, once per process."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from pathlib import Path

from adr.entities.token import NOUN_TAGS
from adr.errors import ConfigError

DEFAULT_NLP = str(Path(__file__).parent / "models" / "en_adr_ewt")


@functools.lru_cache(maxsize=4)
def load_nlp(name_or_path: str | None = None):
    """A spaCy pipeline by installed package name or directory; the shipped EWT tagger by default.

    Cached per process: Spark Python workers and Beam DoFns call this in their batch loop
    and pay the load once.
    """
    import spacy
    from thinc.api import set_current_ops
    from thinc.backends.numpy_ops import NumpyOps
    from threadpoolctl import threadpool_limits

    # The tok2vec layers are matrix products: numpy's BLAS does them about 3x faster than thinc's
    # default (blis) on the machines measured, with identical tags (0 of 181K tokens differ; see
    # benchmarks/RESULTS.md). One BLAS thread: the engines run one tagger per core already.
    threadpool_limits(1, user_api="blas")
    set_current_ops(NumpyOps(use_blis=False))  # layers take the current ops when they are built
    target = name_or_path or DEFAULT_NLP
    try:
        nlp = spacy.load(target, exclude=["parser", "ner", "senter", "textcat"])
    except OSError as err:
        raise ConfigError(f"cannot load spaCy pipeline {target!r}: {err}") from None
    if not any(nlp.get_pipe(name).__class__.__name__ == "Tagger" for name in nlp.pipe_names):
        raise ConfigError(f"spaCy pipeline {target!r} has no tagger; token entities need part-of-speech tags")
    return nlp


def tagged_nouns(nlp, texts, batch_size: int = 256) -> Iterator[tuple[tuple[str, str], ...]]:
    """Per text, (fine-grained tag, lemma) of its noun tokens: all the token perspective reads.

    An edit-tree lemmatizer fed by the pipeline's tok2vec (the shipped one's) is run on the noun
    tokens alone: scoring every token and testing its best tree was an eighth of the tagging
    time, and three tokens in four are not nouns. Same layer, same rows, same trees: the lemmas
    are the pipeline's own (tests/test_tagger.py compares them). Other pipelines run whole.
    """
    lemmatizer = _noun_lemmatizer(nlp)
    if lemmatizer is None:
        for doc in nlp.pipe(texts, batch_size=batch_size):
            yield tuple((t.tag_, t.lemma_ or t.text) for t in doc if t.tag_ in NOUN_TAGS)
        return
    name, component = lemmatizer
    docs = nlp.pipe(texts, batch_size=batch_size, disable=[name])
    while batch := list(itertools.islice(docs, batch_size)):
        yield from _lemmatize_nouns(batch, component)


def _noun_lemmatizer(nlp):
    """(name, component) of a trainable lemmatizer that reads the tok2vec's vectors, or None."""
    from spacy.pipeline import EditTreeLemmatizer

    names = nlp.pipe_names
    for name, component in nlp.pipeline:
        if (isinstance(component, EditTreeLemmatizer) and component.top_k == 1
                and not component.overwrite and component.backoff == "orth" and "tok2vec" in names
                and names.index("tok2vec") < names.index(name)
                and component.model.get_ref("tok2vec").name == "tok2vec-listener"):
            return name, component
    return None


def _lemmatize_nouns(docs, lemmatizer) -> list[tuple[tuple[str, str], ...]]:
    import numpy as np

    nouns = [[t for t in doc if t.tag_ in NOUN_TAGS] for doc in docs]
    rows = [doc.tensor[[t.i for t in found]] for doc, found in zip(docs, nouns) if found]
    if not rows:
        return [() for _ in docs]
    scores = lemmatizer.model.get_ref("output_layer").predict(np.concatenate(rows))
    labels, trees = lemmatizer.cfg["labels"], lemmatizer.trees
    best = iter(scores.argmax(axis=1).tolist())
    out = []
    for found in nouns:
        pairs = []
        for token in found:
            lemma = trees.apply(labels[next(best)], token.text)  # None: no tree fits, back off to the word
            pairs.append((token.tag_, lemma or token.text))
        out.append(tuple(pairs))
    return out
