"""WordNet noun synonyms (NLTK's reader over WordNet 3.0; see scripts/install_wordnet.py)."""

from __future__ import annotations

import functools

from adr.errors import ConfigError


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
def noun_synonyms(lemma: str, senses: int = 1) -> tuple[str, ...]:
    """Lemma names of the first `senses` noun synsets of `lemma` (WordNet orders senses most
    frequent first): the default, the dominant sense only, keeps a replacement's meaning."""
    wn = _wordnet()
    names = []
    for synset in wn.synsets(lemma.replace(" ", "_"), pos=wn.NOUN)[:senses]:
        for name in synset.lemma_names():
            if name.lower() != lemma and name not in names:
                names.append(name)
    return tuple(names)
