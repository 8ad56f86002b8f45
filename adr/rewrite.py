"""What of a conversation an LLM rewrites, and how the rewritten pieces are put back.

A rewrite never hands the model the parts that must not change: instruction lines ("Answer the
question using a single word or phrase."), option lists, OCR token lists, the `<image>` token and
short answers stay as the seed has them. The model is asked for one piece at a time, a question
line or a long answer, which a small model does far more reliably than a whole conversation in
a format; the record is the seed's turns with each piece replaced by its accepted rewrite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adr.protected import is_short_answer, protected_spans

QUESTION, ANSWER = "question", "answer"
# Longer answers (detailed descriptions, reasoning) stay as they are: a rewrite of several
# hundred words is beyond the reply length a rewrite is given, and checking it word by word
# against its seed is what the checks cannot do reliably.
MAX_PIECE_CHARS = 600
# A piece whose rewrite would not fit the reply (`--max-new-tokens`) is cut short and refused:
# about four characters a token, with a quarter to spare for the rewording.
CHARS_PER_TOKEN, REPLY_SLACK = 4, 1.25


def piece_chars(max_new_tokens: int) -> int:
    """The longest piece handed to a model whose replies stop at `max_new_tokens`."""
    return min(MAX_PIECE_CHARS, int(max_new_tokens * CHARS_PER_TOKEN / REPLY_SLACK))


@dataclass(frozen=True)
class Piece:
    """A span of one turn's text that the model is asked to rewrite."""
    turn: int
    start: int
    end: int
    text: str
    kind: str  # QUESTION or ANSWER


def rewritable_pieces(turns: list[dict], max_chars: int = MAX_PIECE_CHARS) -> list[Piece]:
    """The question lines and long answers (of at most `max_chars`) of `turns` that no protected
    span touches."""
    pieces: list[Piece] = []
    question = ""
    for i, (turn, spans) in enumerate(zip(turns, protected_spans(turns))):
        text = turn.get("value", "")
        if turn.get("from") == "gpt":
            if not is_short_answer(question, text) and len(text.strip()) <= max_chars:
                pieces += _unprotected(i, text, spans, ANSWER, whole=True)
            continue
        question = text
        pieces += [p for p in _unprotected(i, text, spans, QUESTION, whole=False) if len(p.text) <= max_chars]
    return pieces


def _unprotected(turn: int, text: str, spans, kind: str, whole: bool) -> list[Piece]:
    """The turn's lines (or the whole text) that hold letters and overlap no protected span
    other than quoted text inside them (which the checks then require word for word)."""
    regions = [(0, len(text))] if whole else [(m.start(), m.end()) for m in re.finditer(r"[^\n]+", text)]
    out = []
    for start, end in regions:
        line = text[start:end]
        lead = len(line) - len(line.lstrip())
        start, end = start + lead, start + len(line.rstrip())
        piece = text[start:end]
        if not re.search(r"[A-Za-z]{2}", piece):
            continue
        covering = [(a, b) for a, b in spans if a < end and b > start]
        if any(a <= start and b >= end for a, b in covering):  # an instruction, option or OCR line
            continue
        if kind == QUESTION and not piece.endswith("?"):
            continue  # a statement or task line: only questions are reworded
        out.append(Piece(turn, start, end, piece, kind))
    return out


def assembled(turns: list[dict], pieces: list[Piece], rewrites: list[str]) -> list[dict]:
    """The turns with each piece's span replaced by its rewrite (pieces in turn and span order)."""
    out = [dict(t) for t in turns]
    for piece, new in sorted(zip(pieces, rewrites), key=lambda pr: (pr[0].turn, -pr[0].start)):
        value = out[piece.turn]["value"]
        out[piece.turn]["value"] = value[:piece.start] + new + value[piece.end:]
    return out
