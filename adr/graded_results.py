"""A model's graded benchmark results, one item at a time: the canonical form and LLaVA's outputs.

An item is what the audit needs of one benchmark question: the question as the model saw it (less
the answer-format instruction LLaVA's evaluation appends), its image and objects where known, and a
score in [0, 1] (1: correct). Every parser raises
InvalidRecord with a short reason, so the command writes a bad line to the dead letters with its
reason and goes on.

- canonical JSON Lines: `id`, `question` (or LLaVA `conversations`: its human turns), `correct`
  (a boolean or a score in [0, 1]), optional `answer`, `image`, `objects`, `benchmark`, `category`;
- ScienceQA: the one JSON object LLaVA's eval_science_qa.py writes (`*_output.jsonl`), with
  `correct` and `incorrect` lists of {question_id, question, pred, ...};
- POPE: LLaVA's question file ({question_id, image, text, category}), its answer file
  ({question_id, text, ...}) and POPE's label files (`coco_pope_<category>.json`, one
  {question_id, image, text, label} per line), paired as LLaVA's eval_pope.py pairs them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from adr.records import (
    BAD_CONVERSATIONS,
    BAD_OBJECTS,
    MISSING_ID,
    NOT_AN_OBJECT,
    ROLES,
    UNSAFE_IMAGE_PATH,
    InvalidRecord,
    is_safe_relative_path,
)

# The answer-format instructions LLaVA's evaluation scripts append to every question of a benchmark.
# They are not what the question is about: left in, their nouns (option, letter, choice, ...) are
# head entities of every item, so no item could be all tail, and they pull Table 2's threshold up.
ANSWER_FORMAT_PROMPTS = (
    "Answer with the option's letter from the given choices directly.",
    "Answer the question using a single word or phrase.",
    "When the provided information is insufficient, respond with 'Unanswerable'.",
    "Please answer yes or no.",
)

MISSING_QUESTION = "missing-question"
BAD_CORRECT = "bad-correct"
BAD_ANSWER = "bad-answer"
UNKNOWN_QUESTION = "unknown-question"
NO_LABEL = "no-label"
BAD_LABEL = "bad-label"
LABEL_MISMATCH = "label-mismatch"


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    score: float
    answer: str | None = None
    image: str | None = None
    objects: tuple[str, ...] | None = None
    benchmark: str | None = None
    category: str | None = None

    def record(self) -> dict:
        """The item as a one-turn LLaVA record, the shape the statistics' entity udfs read. Only
        the question: a benchmark's reference answer is not what the model was asked about."""
        record: dict[str, Any] = {"id": self.id, "conversations": [{"from": "human", "value": self.question}]}
        if self.image:
            record["image"] = self.image
        if self.objects is not None:
            record["objects"] = list(self.objects)
        return record


def strip_answer_format(question: str) -> str:
    """The question without the answer-format instructions at its end (ANSWER_FORMAT_PROMPTS)."""
    text = question.rstrip()
    while True:
        end = next((p for p in ANSWER_FORMAT_PROMPTS if text.endswith(p)), None)
        if end is None or len(text) == len(end):
            return text
        text = text[:-len(end)].rstrip()


def canonical_item(obj: Any) -> Item:
    if not isinstance(obj, dict):
        raise InvalidRecord(NOT_AN_OBJECT, type(obj).__name__)
    return Item(id=_id(obj.get("id")), question=strip_answer_format(_question(obj)),
                score=score_of(obj.get("correct")), answer=_text_or_none(obj.get("answer")),
                image=_image(obj.get("image")),
                objects=_objects(obj.get("objects")), benchmark=_text_or_none(obj.get("benchmark")),
                category=_text_or_none(obj.get("category")))


def score_of(value: Any) -> float:
    """1.0 / 0.0 for a boolean, the number itself for a score in [0, 1]."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0:
        return float(value)
    raise InvalidRecord(BAD_CORRECT, f"'correct' must be a boolean or a score in [0, 1], got {value!r}"[:200])


def scienceqa_item(entry: Any, correct: bool) -> Item:
    """One entry of eval_science_qa.py's `correct` or `incorrect` list."""
    if not isinstance(entry, dict):
        raise InvalidRecord(NOT_AN_OBJECT, type(entry).__name__)
    question = entry.get("question")
    if not isinstance(question, str) or not question.strip():
        raise InvalidRecord(MISSING_QUESTION, "no 'question' text")
    return Item(id=_id(entry.get("question_id")), question=strip_answer_format(question),
                score=1.0 if correct else 0.0, answer=_text_or_none(entry.get("pred")), benchmark="scienceqa",
                category="with image" if entry.get("is_multimodal") else "text only")


def pope_said_yes(text: str) -> bool:
    """eval_pope.py's reading of a free-form answer: its first sentence, commas dropped, is 'no'
    when a word is 'No', 'no' or 'not', and 'yes' otherwise."""
    first = text.split(".")[0] if "." in text else text
    words = first.replace(",", "").split(" ")
    return not ("No" in words or "not" in words or "no" in words)


def pope_item(answer: Any, question: Any, label: Any) -> Item:
    """An answer line with its question line and the label line eval_pope.py pairs it with."""
    if not isinstance(answer, dict):
        raise InvalidRecord(NOT_AN_OBJECT, type(answer).__name__)
    if not isinstance(answer.get("text"), str):
        raise InvalidRecord(BAD_ANSWER, "the answer line has no 'text'")
    if not isinstance(label, dict) or str(label.get("label", "")).strip().lower() not in ("yes", "no"):
        raise InvalidRecord(BAD_LABEL, f"label line {label!r}"[:200])
    text = question.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidRecord(MISSING_QUESTION, "the question line has no 'text'")
    image = _image(question.get("image"))
    # eval_pope.py pairs by position within a category: a label for another question means the
    # files are out of step, and every later pair would be graded against the wrong label.
    if (label.get("image") is not None and label.get("image") != question.get("image")) or \
            (isinstance(label.get("text"), str) and not text.strip().startswith(label["text"].strip())):
        raise InvalidRecord(LABEL_MISMATCH, f"question {text[:80]!r} on {question.get('image')!r}, label for "
                                            f"{str(label.get('text'))[:80]!r} on {label.get('image')!r}")
    truth = str(label["label"]).strip().lower() == "yes"
    return Item(id=_id(answer.get("question_id")), question=strip_answer_format(text),
                score=1.0 if pope_said_yes(answer["text"]) == truth else 0.0, answer=answer["text"],
                image=image, benchmark="pope", category=_text_or_none(question.get("category")))


def pope_category(label_file: str) -> str:
    """`coco_pope_adversarial.json` -> `adversarial` (POPE's file names); else the file's stem."""
    name = label_file.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name.split("_pope_", 1)[1] if "_pope_" in name else name


def _id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise InvalidRecord(MISSING_ID)
    return str(value)


def _question(obj: dict) -> str:
    question = obj.get("question")
    if isinstance(question, str) and question.strip():
        return question
    turns = obj.get("conversations")
    if turns is None:
        raise InvalidRecord(MISSING_QUESTION, "neither 'question' text nor 'conversations'")
    if not isinstance(turns, list) or not all(
            isinstance(t, dict) and t.get("from") in ROLES and isinstance(t.get("value"), str) for t in turns):
        raise InvalidRecord(BAD_CONVERSATIONS, "a turn needs 'from' (human|gpt) and a string 'value'")
    asked = "\n".join(t["value"] for t in turns if t["from"] == "human" and t["value"].strip())
    if not asked:
        raise InvalidRecord(MISSING_QUESTION, "no human turn")
    return asked


def _image(value: Any) -> str | None:
    if value is None:
        return None
    if not is_safe_relative_path(value):
        raise InvalidRecord(UNSAFE_IMAGE_PATH, repr(value)[:200])
    return value


def _objects(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not (isinstance(value, list) and all(isinstance(o, str) for o in value)):
        raise InvalidRecord(BAD_OBJECTS, "'objects' must be a list of strings")
    return tuple(value)


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
