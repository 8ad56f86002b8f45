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
    name = word.replace(" ", "_")
    every = wn.synsets(name)  # every part of speech, nouns first, each in WordNet's sense order
    synsets = [s for s in every if s.pos() == wn.NOUN]
    if not synsets:
        return None

    def uses(synset) -> int:  # SemCor-tagged uses of the word in this sense
        return sum(lemma.count() for lemma in synset.lemmas() if lemma.name().lower() == name)

    noun_uses = [uses(s) for s in synsets]
    any_pos = sum(uses(s) for s in every)
    first = synsets[0]
    return Sense(first.name(), first.lexname(), tuple((lemma.name(), lemma.count()) for lemma in first.lemmas()),
                 noun_uses[0] / sum(noun_uses) if sum(noun_uses) else None,
                 sum(noun_uses) / any_pos if any_pos else None)
