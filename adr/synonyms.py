"""Synonym replacement: swap a record's nouns for synonyms that are tail tokens of the corpus."""

from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping


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


def replace_in_text(text: str, replacements: Mapping[str, str]) -> str:
    """Whole-word, case-insensitive replacement of each noun and its plural; the first letter's
    case is kept ("Dogs" -> "Hounds")."""
    if not replacements:
        return text
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(replacements, key=len, reverse=True))
                         + r")(s|es)?\b", re.IGNORECASE)

    def swap(match: re.Match) -> str:
        word = replacements[match.group(1).lower()]
        if match.group(2):
            word += "es" if word.endswith(("s", "x", "z", "ch", "sh")) else "s"
        return word[:1].upper() + word[1:] if match.group(1)[:1].isupper() else word

    return pattern.sub(swap, text)


def replace_in_conversation(turns: list[dict], replacements: Mapping[str, str]) -> list[dict]:
    return [{**t, "value": replace_in_text(t["value"], replacements)} for t in turns]
