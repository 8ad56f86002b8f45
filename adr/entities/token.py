"""Token perspective: noun lemmas of every turn of a conversation."""

from __future__ import annotations

from collections.abc import Iterable

NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
_STRIP = " \t\r\n'\"`\u00b4\u2018\u2019\u201c\u201d"


def normalise_lemma(lemma: str) -> str:
    """Lowercase and strip quotes and whitespace, as the spec asks for token entities."""
    return lemma.strip(_STRIP).lower()


def noun_lemmas(tagged: Iterable[tuple[str, str]]) -> set[str]:
    """The set of normalised lemmas of (tag, lemma) pairs tagged as nouns.

    A lemma with no letter in it (a number or stray symbol mis-tagged as a noun) is not a concept.
    """
    nouns = set()
    for tag, lemma in tagged:
        if tag in NOUN_TAGS:
            word = normalise_lemma(lemma)
            if any(ch.isalpha() for ch in word):
                nouns.add(word)
    return nouns
