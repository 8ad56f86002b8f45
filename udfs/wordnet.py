"""WordNet noun synonyms (NLTK's reader over WordNet 3.0; see scripts/install_wordnet.py)."""

from __future__ import annotations

import functools

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


@functools.lru_cache(maxsize=65536)
def dominant_sense(word: str) -> Sense | None:
    """The first (most frequent) noun sense of `word`, or None if WordNet has no noun for it."""
    wn = _wordnet()
    synsets = wn.synsets(word.replace(" ", "_"), pos=wn.NOUN)
    if not synsets:
        return None
    uses = [sum(lemma.count() for lemma in s.lemmas() if lemma.name().lower() == word.replace(" ", "_"))
            for s in synsets]
    first = synsets[0]
    return Sense(first.name(), first.lexname(), tuple((lemma.name(), lemma.count()) for lemma in first.lemmas()),
                 uses[0] / sum(uses) if sum(uses) else None)
