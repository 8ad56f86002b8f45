"""The turns a synthetic record keeps: those that carry the tail it was made for.

A grouped VQA record (VQAv2, GQA, OCR-VQA, RefCOCO, VG regions: "single word or phrase", option
letters, boxes) is a list of independent question-answer pairs about one image. Each pair is
true about the image on its own, and none refers back to another, so any subset of the pairs is
still true about the image; keeping only the pairs that hold the tail entity stops a synthetic
record from carrying five to ten head questions along with its one tail word. A free-form
conversation (detailed description, reasoning, chat) is kept whole: its later turns lean on
the earlier ones ("it", "they", "the second one").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from adr.protected import is_short_answer
from adr.records import IMAGE_TOKEN


def pairs(turns: list[dict]) -> list[tuple[dict, dict]] | None:
    """(human, gpt) pairs, or None when the turns do not alternate human, gpt, human, gpt."""
    if len(turns) < 2 or len(turns) % 2:
        return None
    out = list(zip(turns[0::2], turns[1::2]))
    if any(h.get("from") != "human" or g.get("from") != "gpt" for h, g in out):
        return None
    return out


def independent_pairs(turns: list[dict]) -> bool:
    """Whether the record is several independent question-answer pairs: every answer short."""
    found = pairs(turns)
    return found is not None and len(found) > 1 and all(
        is_short_answer(h.get("value", ""), g.get("value", "")) for h, g in found)


def _without_image_token(text: str) -> str:
    return text.replace(IMAGE_TOKEN + "\n", "").replace(IMAGE_TOKEN, "").lstrip("\n")


def turns_holding(turns: list[dict], holds: Callable[[str], object], with_image: bool) -> list[dict]:
    """The pairs whose question or answer `holds` the entity, for a record of independent pairs
    (the first kept question opens with the `<image>` token when the record has an image); the
    whole conversation otherwise, or when no single pair holds it."""
    found = pairs(turns)
    if found is None or not independent_pairs(turns):
        return [dict(t) for t in turns]
    kept = [(h, g) for h, g in found if holds(h.get("value", "")) or holds(g.get("value", ""))]
    if not kept or len(kept) == len(found):
        return [dict(t) for t in turns]
    out = []
    for i, (h, g) in enumerate(kept):
        question = _without_image_token(h.get("value", ""))
        if i == 0 and with_image:
            question = f"{IMAGE_TOKEN}\n{question}"
        out += [{**h, "value": question}, dict(g)]
    return out


@functools.lru_cache(maxsize=65536)  # re's own cache holds 512; offers look up every noun of a seed
def word_pattern(word: str) -> re.Pattern:
    """A lemma as a whole word, singular or plural, any case: what `turns_holding` looks for."""
    from adr.synonyms import plural

    forms = sorted({word, plural(word), word + "s"}, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, forms)) + r")(?![\w-])", re.IGNORECASE)


def turns_for(record: dict, word: str) -> list[dict]:
    """The turns a synthetic record of `record` keeps for `word` (`turns_holding`)."""
    return turns_holding(record["conversations"], word_pattern(word).search, bool(record.get("image")))
