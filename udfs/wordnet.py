"""WordNet noun synonyms (NLTK's reader over WordNet 3.0; see scripts/install_wordnet.py)."""

from __future__ import annotations

import functools
import threading

from adr.errors import ConfigError
from adr.synonyms import Sense


@functools.lru_cache(maxsize=1)
def _wordnet():
    from nltk.corpus import wordnet

    try:
        wordnet.ensure_loaded()
    except LookupError:
        raise ConfigError("WordNet data not found: run `python scripts/install_wordnet.py` "
                          "(make install does) or set NLTK_DATA") from None
    return wordnet


# NLTK's reader seeks and reads shared file handles (lemma counts): one thread at a time, for
# runners that run several threads a process (multi_threading, Dataflow's SDK harness).
_READER = threading.Lock()


@functools.lru_cache(maxsize=65536)
def dominant_sense(word: str) -> Sense | None:
    """The first (most frequent) noun sense of `word`, or None if WordNet has no noun for it."""
    with _READER:
        return _dominant_sense(word)


def _dominant_sense(word: str) -> Sense | None:
    wn = _wordnet()
    synsets = wn.synsets(word.replace(" ", "_"), pos=wn.NOUN)
    if not synsets:
        return None
    uses = [sum(lemma.count() for lemma in s.lemmas() if lemma.name().lower() == word.replace(" ", "_"))
            for s in synsets]
    first = synsets[0]
    # SemCor uses of the word in every part of speech: nouns against adjectives, verbs, adverbs
    any_pos = sum(lemma.count() for s in wn.synsets(word.replace(" ", "_")) for lemma in s.lemmas()
                  if lemma.name().lower() == word.replace(" ", "_"))
    return Sense(first.name(), first.lexname(), tuple((lemma.name(), lemma.count()) for lemma in first.lemmas()),
                 uses[0] / sum(uses) if sum(uses) else None, sum(uses) / any_pos if any_pos else None)
