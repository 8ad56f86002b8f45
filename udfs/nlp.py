"""Loading the part-of-speech pipeline behind token entities, once per process."""

from __future__ import annotations

import functools
from pathlib import Path

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


def tagged_tokens(doc) -> list[tuple[str, str]]:
    """(fine-grained tag, lemma) for every token of a spaCy Doc."""
    return [(tok.tag_, tok.lemma_ or tok.text) for tok in doc]
