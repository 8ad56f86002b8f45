"""Interrogation perspective: the kinds of question a record asks, by deterministic rules.

Each human turn is split into clauses (sentences and lines); each clause is matched against
question openers, most specific first. A turn that matches nothing still yields one type: its
leading instruction verb, or 'other'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Specific phrases first: the first pattern matching at a clause's start names its type.
_PHRASES: tuple[tuple[str, str | None], ...] = (
    (r"what colou?rs?\b", "what color"),
    (r"what (?:kinds?|types?|sorts?|brands?|breeds?|species) of\b", "what kind of"),
    (r"what time\b", "what time"),
    (r"what (?:is|are) (?:the )?(?:\w+ )?(?:man|woman|person|people|boy|girl|child|dog|cat|he|she|they) "
     r"doing\b", "what doing"),
    (r"how many\b", "how many"),
    (r"how much\b", "how much"),
    (r"how (?:old|big|large|tall|long|far|high)\b", "how big"),
    (r"(?:is|are|was|were) there\b", "is there"),
    (r"(?:what|which|who|whom|whose|where|when|why|how)\b", None),  # the wh-word itself
    (r"(?:is|are|was|were|do|does|did|can|could|will|would|should|shall|has|have|had|may|might|must)\b", None),
)
_COMPILED = tuple((re.compile(p), t) for p, t in _PHRASES)
_CANONICAL_WORD = {"whom": "who", "are": "is", "was": "is", "were": "is", "does": "do", "did": "do",
                   "could": "can", "would": "will", "have": "has", "had": "has", "might": "may"}

INSTRUCTION_VERBS = frozenset({
    "describe", "explain", "summarize", "summarise", "provide", "write", "give", "list", "identify",
    "analyze", "analyse", "compare", "tell", "create", "generate", "answer", "name", "find",
    "choose", "select", "translate", "rewrite", "classify", "count", "detect", "locate", "suggest",
    "discuss", "elaborate", "interpret", "imagine", "compose", "draft", "evaluate", "outline",
    "predict", "recommend", "share", "offer", "determine", "infer", "state", "mention", "read",
    "look", "consider", "think", "use", "complete", "convert", "extract", "caption", "estimate",
    "specify", "point", "show", "assess", "examine", "observe", "note", "focus", "solve",
    "present", "relay", "render", "illustrate", "depict", "portray", "characterize", "detail",
    "clarify", "narrate", "report", "craft", "produce", "develop", "design", "propose", "sketch",
    "highlight", "enumerate", "label", "rate", "judge", "decide", "pick", "match", "fill", "rank",
    "sort", "calculate", "compute", "verify", "check", "confirm", "justify", "respond", "reply",
    "continue", "finish", "edit", "correct", "paraphrase", "simplify", "expand", "shorten",
})
# Politeness and framing in front of the real question ("Could you tell me what color ...").
_PREFIX = re.compile(
    r"^(?:(?:please|kindly|now|so|and|also|then|ok|okay|hey|question|q)\b[,:]?\s*"
    r"|(?:can|could|would|will) you(?: please)?\s+"
    r"|(?:tell|show) me\s+|let me know\s+|i (?:want|would like|wonder|need) (?:to know |you to )?"
    r"|do you (?:know|think|see)\s+)+")
_CLAUSE_SPLIT = re.compile(r"[?!.;\n]+")
_WORD = re.compile(r"[a-z]+")

# The type of a question no rule recognises: it names no concept, so synthesis never aims at it.
CATCH_ALL = "other"


def clause_type(clause: str) -> str | None:
    """The canonical question type a clause opens with, or None."""
    text = " ".join(clause.lower().replace("\u2019", "'").split())
    text = _PREFIX.sub("", text).strip(" ,:-\"'")
    for pattern, name in _COMPILED:
        match = pattern.match(text)
        if match:
            if name:
                return name
            word = match.group(0)
            return _CANONICAL_WORD.get(word, word)
    first = _WORD.match(text)
    if first and first.group(0) in INSTRUCTION_VERBS:
        return first.group(0).replace("summarise", "summarize").replace("analyse", "analyze")
    return None


def turn_types(text: str) -> set[str]:
    """All question types of one human turn; never empty."""
    found = {t for t in map(clause_type, _CLAUSE_SPLIT.split(text)) if t}
    return found or {CATCH_ALL}


def interrogation_types(human_turns: Iterable[str]) -> set[str]:
    types: set[str] = set()
    for text in human_turns:
        types |= turn_types(text)
    return types
