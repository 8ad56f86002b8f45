"""Object grounding: the detector's prompt from a record's nouns, and its detections back to
normalised object labels (spec: Object perspective, 'a zero-shot grounding detector prompted
with the record's nouns')."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from adr.entities.objects import normalise_object


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels


def prompt_labels(nouns: Iterable[str], max_labels: int) -> list[str]:
    """The labels to ask for: the record's noun lemmas, lowercased, deduplicated, sorted, capped."""
    return sorted({n.strip().lower() for n in nouns if n and n.strip()})[:max_labels]


def chunks(labels: list[str], size: int) -> list[list[str]]:
    """Labels in prompt-sized groups (models cap the text they take per image)."""
    return [labels[i:i + size] for i in range(0, len(labels), size)] or [[]]


def match_label(phrase: str, candidates: list[str]) -> str | None:
    """The candidate a detected phrase names. Grounding DINO returns the prompt's words that
    fired ('traffic light', or 'dog cat' for neighbours, or with [SEP]): the longest candidate
    inside the phrase wins; an exact match always does."""
    text = " ".join(phrase.replace("[SEP]", " ").replace(".", " ").lower().split())
    if text in candidates:
        return text
    inside = [c for c in candidates if f" {c} " in f" {text} "]
    return max(inside, key=lambda c: (len(c), c)) if inside else None


def merge(detections: Iterable[Detection], candidates: list[str], threshold: float) -> list[Detection]:
    """Detections from every prompt chunk, matched to candidate labels, kept above `threshold`,
    normalised like annotated objects, best first."""
    kept = []
    for d in detections:
        label = match_label(d.label, candidates)
        if label is not None and d.score >= threshold:
            x0, y0, x1, y1 = (round(float(v), 1) for v in d.box)
            kept.append(Detection(normalise_object(label), round(float(d.score), 4), (x0, y0, x1, y1)))
    return sorted(kept, key=lambda d: (-d.score, d.label, d.box))


def objects_of(detections: list[Detection]) -> list[str]:
    return sorted({d.label for d in detections})
