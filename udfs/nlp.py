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
