"""Object and co-occurrence perspectives: normalised object names and their unordered pairs."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

_IRREGULAR = {
    "people": "person", "men": "man", "women": "woman", "children": "child", "mice": "mouse",
    "geese": "goose", "teeth": "tooth", "feet": "foot", "oxen": "ox", "knives": "knife",
    "leaves": "leaf", "wolves": "wolf", "shelves": "shelf", "loaves": "loaf", "halves": "half",
    "calves": "calf", "scarves": "scarf", "wives": "wife", "lives": "life", "dice": "die",
    "buses": "bus", "skis": "ski", "lenses": "lens", "gases": "gas", "cacti": "cactus",
}
_UNCHANGED = frozenset({
    "scissors", "glasses", "pants", "jeans", "shorts", "trousers", "species", "series", "news",
    "sheep", "fish", "deer", "aircraft", "binoculars", "tongs",
})
_KEEP_ENDINGS = ("ss", "us", "is", "os")


def singular(word: str) -> str:
    """English singular of a lowercase noun by rule; uncountable and pluralia tantum stay."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word in _UNCHANGED or len(word) <= 3 or word.endswith(_KEEP_ENDINGS):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if word.endswith("oes") and word not in ("shoes", "toes", "canoes"):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def normalise_object(name: str) -> str:
    """Lowercase, whitespace collapsed, last word singular; commas removed (they join pairs)."""
    words = name.replace(",", " ").replace("_", " ").lower().split()
    if not words:
        return ""
    words[-1] = singular(words[-1])
    return " ".join(words)


def object_set(names: Iterable[str] | None) -> set[str]:
    return {n for n in (normalise_object(x) for x in names or ()) if n}


def cooccurrence_pairs(objects: Iterable[str]) -> set[str]:
    """Every unordered pair of distinct objects, written 'a,b' with a < b."""
    return {f"{a},{b}" for a, b in combinations(sorted(set(objects)), 2)}
