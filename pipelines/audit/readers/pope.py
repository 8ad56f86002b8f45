"""POPE as LLaVA grades it: LLaVA's answer and question files and POPE's label files, paired as
eval_pope.py pairs them: by position among the answers of the same category (the question file
says which), in file order."""

from __future__ import annotations

from collections import Counter

from adr.graded_results import BAD_LABEL, NO_LABEL, UNKNOWN_QUESTION, Item, pope_category, pope_item
from adr.records import MISSING_ID, NOT_AN_OBJECT, UNSAFE_IMAGE_PATH, InvalidRecord, is_safe_relative_path
from pipelines.audit.readers.items import Items, dead_letter, json_rows, parsed, raw_rows

Labels = dict[str, list[dict | None]]  # category -> its label lines in order; None where a line is malformed


def read_pope(answer_files: list[str], question_files: list[str], label_files: list[str], max_record_bytes: int,
              out: Items) -> None:
    questions = pope_questions(question_files, max_record_bytes, out.reference_invalid)
    labels = pope_labels(label_files, out.reference_invalid)
    used: Counter = Counter()  # answers seen per category: the next one pairs with the label at that index
    for url in answer_files:
        for source, position, answer in json_rows(url, max_record_bytes, out.invalid, out.tally):
            try:
                out.items.append(paired_item(answer, questions, labels, used))
            except InvalidRecord as err:
                out.invalid.append(dead_letter(source, position, err, answer))
    out.labels_unmatched = sum(max(0, len(rows) - used[c]) for c, rows in labels.items())


def pope_questions(question_files: list[str], max_record_bytes: int, dead: list[dict]) -> dict[str, dict]:
    """question_id -> question line; a line with an unsafe image path keeps its place without its image."""
    questions: dict[str, dict] = {}
    for url in question_files:
        for source, position, q in json_rows(url, max_record_bytes, dead):
            if not isinstance(q, dict) or q.get("question_id") is None:
                dead.append(dead_letter(source, position, InvalidRecord(MISSING_ID, "question line"), q))
                continue
            if q.get("image") is not None and not is_safe_relative_path(q["image"]):
                dead.append(dead_letter(source, position, InvalidRecord(UNSAFE_IMAGE_PATH, repr(q["image"])[:200]), q))
                q = {**q, "image": None}  # audited without its image, which is not read
            questions[str(q["question_id"])] = q
    return questions


def pope_labels(label_files: list[str], dead: list[dict]) -> Labels:
    labels: Labels = {}
    for url in label_files:
        rows = labels.setdefault(pope_category(url), [])
        for source, position, raw, error in raw_rows(url):
            try:
                rows.append(parsed(raw, error))
            except InvalidRecord as err:  # keeps its place: later lines still pair by position
                dead.append(dead_letter(source, position, err, raw))
                rows.append(None)
    return labels


def paired_item(answer, questions: dict[str, dict], labels: Labels, used: Counter) -> Item:
    """The answer graded against its category's next label. Once its category is known the answer
    takes that label's place even if it cannot be graded, so later answers pair as eval_pope.py's do."""
    if not isinstance(answer, dict):
        raise InvalidRecord(NOT_AN_OBJECT, type(answer).__name__)
    question = questions.get(str(answer.get("question_id")))
    if question is None:
        raise InvalidRecord(UNKNOWN_QUESTION, f"question_id {answer.get('question_id')!r} is not in --questions")
    category = str(question.get("category"))
    rows, index = labels.get(category), used[category]
    used[category] += 1
    if rows is None or index >= len(rows):
        raise InvalidRecord(NO_LABEL, f"answer {index + 1} of category {category!r}: "
                                      f"{0 if rows is None else len(rows)} labels given")
    if rows[index] is None:
        raise InvalidRecord(BAD_LABEL, f"label line {index + 1} of category {category!r} is malformed")
    return pope_item(answer, question, rows[index])
