"""What in a record must not change when its wording does: a short answer says a fact about the
image (a word or phrase, an option letter, text read from the image, a box, a number), and
instructions, option lists, OCR token lists, quoted text and coordinates are part of the task.
Synonym replacement and LLM rewrites both keep these (spec: 'Language synthesis').
"""

from __future__ import annotations

import re

from adr.records import IMAGE_TOKEN

# Cues that make an answer short (its text must not change) or a line an instruction.
_SHORT_ANSWER_CUES = ("single word", "one word", "a word or phrase", "option's letter", "options' letter",
                      "reference ocr token", "short description", "bounding box", "coordinate",
                      "short answer", "briefly answer", "one-sentence caption", "yes or no")
_INSTRUCTION = re.compile(
    r"^\s*(?:answer|please|provide|describe|give|write|explain|analy[sz]e|summari[sz]e|generate|choose|select|"
    r"what (?:do you see|is happening|are the key)|can you (?:describe|elaborate|explain)|"
    r"(?:what|which) (?:is|are) (?:shown|depicted|in the (?:image|picture|photo)))\b.*$",
    re.IGNORECASE | re.MULTILINE)
_OPTION_LINE = re.compile(r"^\s*(?:\(?[A-Ha-h][.)]|\([A-Ha-h]\))\s.*$", re.MULTILINE)
_OCR_TOKENS = re.compile(r"reference ocr tokens?:.*$", re.IGNORECASE | re.MULTILINE)
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”|'[^'\n]{2,}'(?!\w)|\[[^\]\n]*\]|\([^)\n]*\d[^)\n]*\)")
SHORT_ANSWER_WORDS = 5


def is_short_answer(question: str, answer: str) -> bool:
    q = question.lower()
    return (any(cue in q for cue in _SHORT_ANSWER_CUES) or len(answer.split()) <= SHORT_ANSWER_WORDS
            or bool(re.fullmatch(r"[\W\d_]*", answer)))


def protected_spans(turns: list[dict]) -> list[list[tuple[int, int]]]:
    """Per turn, the character ranges that must not change."""
    out = []
    question = ""
    for turn in turns:
        text = turn.get("value", "")
        if turn.get("from") == "gpt" and is_short_answer(question, text):
            out.append([(0, len(text))])
            continue
        spans = [(m.start(), m.end()) for m in re.finditer(re.escape(IMAGE_TOKEN), text)]
        spans += [(m.start(), m.end()) for m in _QUOTED.finditer(text)]
        if turn.get("from") != "gpt":
            question = text
            for pattern in (_INSTRUCTION, _OPTION_LINE, _OCR_TOKENS):
                spans += [(m.start(), m.end()) for m in pattern.finditer(text)]
        out.append(sorted(spans))
    return out


def short_answers(turns: list[dict]) -> list[tuple[int, str]]:
    """(turn index, text) of every gpt turn whose text must stay as it is."""
    out, question = [], ""
    for i, turn in enumerate(turns):
        if turn.get("from") == "gpt":
            if is_short_answer(question, turn.get("value", "")):
                out.append((i, turn.get("value", "")))
        else:
            question = turn.get("value", "")
    return out


def keeps_short_answers(seed: list[dict], rewritten: list[dict]) -> str | None:
    """Why a rewrite of `seed` would change what it says about the image, or None if it keeps it:
    the same turns, every short answer word for word."""
    if [t.get("from") for t in seed] != [t.get("from") for t in rewritten]:
        return f"{len(rewritten)} turns for the seed's {len(seed)}"
    for i, text in short_answers(seed):
        if _normal(rewritten[i].get("value", "")) != _normal(text):
            return f"short answer {text[:40]!r} became {rewritten[i].get('value', '')[:40]!r}"
    return None


def _normal(text: str) -> str:
    return " ".join(text.split()).rstrip(".").lower()
