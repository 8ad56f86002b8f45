"""Synonym replacement: swap a record's nouns for synonyms that are tail tokens of the corpus."""

from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping

from adr.records import IMAGE_TOKEN


def tail_synonyms(noun: str, synonyms: Iterable[str], token_counts: Mapping[str, int], tau: int) -> list[str]:
    """Synonyms of `noun` that are themselves tail tokens (n_T(s) < tau_T), rarest first; equally
    rare ones keep the given order (WordNet's: most frequent sense first).

    A synonym the corpus never uses has n_T = 0: the rarest of all.
    """
    found = [s for s in dict.fromkeys(x.replace("_", " ").lower() for x in synonyms) if s != noun]
    tail = [s for s in found if token_counts.get(s, 0) < tau]
    return sorted(tail, key=lambda s: token_counts.get(s, 0))


def choose_replacements(nouns: Iterable[str], synonyms_of: Callable[[str], Iterable[str]],
                        token_counts: Mapping[str, int], tau: int) -> dict[str, str]:
    """noun -> its rarest tail synonym, for every noun of the record that has one."""
    out = {}
    for noun in sorted(nouns):
        candidates = tail_synonyms(noun, synonyms_of(noun), token_counts, tau)
        if candidates:
            out[noun] = candidates[0]
    return out


def replace_in_text(text: str, replacements: Mapping[str, str], applied: set | None = None) -> str:
    """Whole-word, case-insensitive replacement of each noun and its plural; the first letter's
    case is kept ("Dogs" -> "Hounds") and an indefinite article before it agrees ("a adult").
    The `<image>` placeholder is never touched. Nouns replaced are added to `applied`."""
    if not replacements:
        return text
    if IMAGE_TOKEN in text:
        return IMAGE_TOKEN.join(replace_in_text(part, replacements, applied) for part in text.split(IMAGE_TOKEN))
    nouns = "|".join(re.escape(n) for n in sorted(replacements, key=len, reverse=True))
    pattern = re.compile(r"\b(?:(?P<article>an?)(?P<space>\s+))?(?P<noun>" + nouns + r")(?P<plural>s|es)?\b",
                         re.IGNORECASE)

    def swap(match: re.Match) -> str:
        noun = match.group("noun")
        word = replacements[noun.lower()]
        if applied is not None:
            applied.add(noun.lower())
        if match.group("plural"):
            word += "es" if word.endswith(("s", "x", "z", "ch", "sh")) else "s"
        if noun[:1].isupper():
            word = word[:1].upper() + word[1:]
        article = match.group("article")
        if not article:
            return word
        agreed = "an" if word[:1].lower() in "aeiou" else "a"
        if article[:1].isupper():
            agreed = agreed.capitalize()
        return f"{agreed}{match.group('space')}{word}"

    return pattern.sub(swap, text)


def replace_in_conversation(turns: list[dict], replacements: Mapping[str, str]) -> tuple[list[dict], dict]:
    """The turns with nouns replaced, and the replacements that actually occurred in them."""
    applied: set[str] = set()
    new = [{**t, "value": replace_in_text(t["value"], replacements, applied)} for t in turns]
    return new, {noun: replacements[noun] for noun in sorted(applied)}
