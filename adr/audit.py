"""Where a model's failures sit in its training data: the measures of `adr audit`, as pure functions.

Each benchmark item has, per perspective, a set of entities; each entity has its training count
n_k(e) (0 when the training corpus never holds it) and is tail when that count is at most the
training tau, so an unseen entity is tail. An item fails when its score is below the pass score.

- Accuracy by bucket: items grouped by their rarest entity's training count, in log-spaced buckets
  (unseen, 1-2, 3-9, 10-29, 30-99, ...). Does accuracy fall towards the tail?
- Head/tail shares: of the failures, the share whose entities are all tail, any tail, all head;
  the same among the successes, for contrast.
- Error accumulation: every (failed item, entity) occurrence, sorted by the entity's training
  count, and the cumulative share of them at or below each count. It rises steeply at small counts
  when the failures sit in the tail.
- Table 2 (the paper's): the count at which that curve reaches half of the failed-case occurrences,
  and the shares of the training corpus's distinct entities and of its entity occurrences at or
  below that count. Half the failures' entities lie where most distinct entities but few
  occurrences are.

The last section applies them to a benchmark: its items, each item's entities per perspective,
and one or two training dictionaries (before and after refinement).
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from adr.entities.registry import PERSPECTIVES
from adr.graded_results import Item

UNSEEN, TAIL, HEAD = "unseen", "tail", "head"

# An item holds these perspectives' entities only when it carries objects (its own, or a detector's).
OBJECT_PERSPECTIVES = tuple(name for name, p in PERSPECTIVES.items() if "objects" in p.requires)

Entities = Mapping[str, Sequence[str]]  # one item's entities, by perspective
Counts = Mapping[str, Mapping[str, int]]  # a training dictionary: perspective -> entity -> count


@dataclass(frozen=True)
class Graded:
    """One item in one perspective: its entities with their training counts, and its grade."""

    entities: Mapping[str, int]
    score: float
    failed: bool


def lookup(entities: Iterable[str], counts: Mapping[str, int]) -> dict[str, int]:
    """Training count of each entity; an entity the training corpus never holds counts 0."""
    return {e: counts.get(e, 0) for e in entities}


def side(count: int, tau: int) -> str:
    return UNSEEN if count == 0 else TAIL if count <= tau else HEAD


def bucket_bounds(max_count: int) -> list[tuple[int, int]]:
    """(lo, hi) count ranges, both ends included: (0, 0) for unseen entities, then two buckets a
    decade (1-2, 3-9, 10-29, 30-99, ...) until one holds max_count."""
    bounds, lo = [(0, 0)], 1
    while lo <= max(max_count, 1):
        nxt = lo * 3 if str(lo)[0] == "1" else lo * 10 // 3
        bounds.append((lo, nxt - 1))
        lo = nxt
    return bounds


def bucket_label(lo: int, hi: int) -> str:
    return UNSEEN if hi == 0 else f"{lo}-{hi}"


def accuracy_by_bucket(items: Sequence[Graded], max_count: int) -> list[dict]:
    """Items with entities, by the training count of their rarest entity; accuracy is the mean score."""
    bounds = bucket_bounds(max(max_count, *(min(i.entities.values()) for i in items if i.entities), 0))
    los = [lo for lo, _ in bounds]
    scores: list[list[Graded]] = [[] for _ in bounds]
    for item in items:
        if item.entities:
            scores[bisect.bisect_right(los, min(item.entities.values())) - 1].append(item)
    return [{"bucket": bucket_label(lo, hi), "lo": lo, "hi": hi, "items": len(group),
             "failures": sum(i.failed for i in group),
             "accuracy": _ratio(sum(i.score for i in group), len(group))}
            for (lo, hi), group in zip(bounds, scores)]


def head_tail_shares(items: Sequence[Graded], tau: int) -> dict[str, dict]:
    """Of the failures and of the successes (items with entities): % whose entities are all tail,
    any tail, all head."""
    out = {}
    for name, failed in (("failures", True), ("successes", False)):
        group = [i for i in items if i.entities and i.failed == failed]
        all_tail = sum(all(c <= tau for c in i.entities.values()) for i in group)
        any_tail = sum(any(c <= tau for c in i.entities.values()) for i in group)
        n = len(group)
        out[name] = {"items": n, "all_tail_pct": _pct(all_tail, n), "any_tail_pct": _pct(any_tail, n),
                     "all_head_pct": _pct(n - any_tail, n)}
    return out


def accumulation(counts: Iterable[int]) -> list[list]:
    """[count, cumulative share of the occurrences at or below it] at each distinct count, ascending."""
    hist = Counter(counts)
    total = sum(hist.values())
    out, running = [], 0
    for c in sorted(hist):
        running += hist[c]
        out.append([c, running / total])
    return out


def occurrences(items: Iterable[Graded], failed: bool) -> list[int]:
    """The training count of every (item, entity) pair of the failed (or successful) items."""
    return [c for i in items if i.failed == failed for c in i.entities.values()]


def table2(failed_counts: Sequence[int], training_counts: Iterable[int], share: float = 0.5) -> dict:
    """The paper's Table-2 figures: the threshold is the smallest count at or below which `share`
    of the failed-case occurrences lie; then the % of the training corpus's distinct entities, and
    of its entity occurrences, at or below the threshold."""
    training = [c for c in training_counts if c > 0]
    n = len(failed_counts)
    if not n:
        return {"failed_occurrences": 0, "threshold": None, "failed_at_or_below_pct": None,
                "failed_unseen_pct": None, "distinct_entities_pct": None, "occurrences_pct": None}
    ordered = sorted(failed_counts)
    t = ordered[math.ceil(Fraction(str(share)) * n) - 1]
    below = [c for c in training if c <= t]
    return {"failed_occurrences": n, "threshold": t,
            "failed_at_or_below_pct": _pct(sum(c <= t for c in ordered), n),
            "failed_unseen_pct": _pct(sum(c == 0 for c in ordered), n),
            "distinct_entities_pct": _pct(len(below), len(training)),
            "occurrences_pct": _pct(sum(below), sum(training))}


def rare_failed_entities(items: Sequence[Graded], tau: int, k: int) -> list[dict]:
    """The tail entities held by the most failed items (rarest first on ties), with their failure rate."""
    failed: Counter = Counter()
    held: Counter = Counter()
    counts: dict[str, int] = {}
    for item in items:
        for e, c in item.entities.items():
            held[e] += 1
            failed[e] += item.failed
            counts[e] = c
    tail = [e for e in failed if failed[e] and counts[e] <= tau]
    top = sorted(tail, key=lambda e: (-failed[e], counts[e], e))[:k]
    return [{"entity": e, "count": counts[e], "failed_items": failed[e], "items": held[e],
             "failure_rate": failed[e] / held[e]} for e in top]


def perspective_audit(items: Sequence[Graded], training_counts: Sequence[int], tau: int, *, top: int = 15) -> dict:
    """Every measure of one perspective against one training dictionary."""
    with_entities = [i for i in items if i.entities]
    failed = occurrences(with_entities, True)
    return {
        "tau": tau,
        "items": len(with_entities),
        "items_without_entities": len(items) - len(with_entities),
        "failures": sum(i.failed for i in with_entities),
        "accuracy_by_bucket": accuracy_by_bucket(with_entities, max(training_counts, default=0)),
        "head_tail": head_tail_shares(with_entities, tau),
        "error_accumulation": {"failures": accumulation(failed),
                               "successes": accumulation(occurrences(with_entities, False))},
        "table2": table2(failed, training_counts),
        "rare_failed_entities": rare_failed_entities(with_entities, tau, top),
    }


def movement(failed_entities: Sequence[str], before: Mapping[str, int], after: Mapping[str, int], tau: int) -> dict:
    """How the failed items' entities moved between two training dictionaries (before and after
    refinement), both cut at the same tau (the first dictionary's, as the run report cuts): the
    distinct entities' moves between unseen/tail/head, how many counts rose or fell, and the share
    of the failed-case occurrences (each failed item's entities, repeats kept) that is tail."""
    distinct = sorted(set(failed_entities))
    moves = Counter(f"{side(before.get(e, 0), tau)} -> {side(after.get(e, 0), tau)}" for e in distinct)
    a = [before.get(e, 0) for e in distinct]
    b = [after.get(e, 0) for e in distinct]
    n = len(failed_entities)
    return {
        "tau": tau,
        "entities": len(distinct),
        "moves": dict(sorted(moves.items())),
        "rose": sum(y > x for x, y in zip(a, b)), "fell": sum(y < x for x, y in zip(a, b)),
        "unchanged": sum(y == x for x, y in zip(a, b)),
        "median_count_before": statistics.median(a) if a else None,
        "median_count_after": statistics.median(b) if b else None,
        "tail_occurrences_pct_before": _pct(sum(before.get(e, 0) <= tau for e in failed_entities), n),
        "tail_occurrences_pct_after": _pct(sum(after.get(e, 0) <= tau for e in failed_entities), n),
    }


# ---- a benchmark against training dictionaries ---------------------------------------------------

def graded(items: Sequence[Item], entities: Sequence[Entities], perspective: str, counts: Mapping[str, int],
           pass_score: float) -> list[Graded]:
    return [Graded(lookup(e[perspective], counts), item.score, item.score < pass_score)
            for item, e in zip(items, entities)]


def dictionary_audit(items: Sequence[Item], entities: Sequence[Entities], perspectives: Sequence[str],
                     counts: Counts, taus: Mapping[str, int], pass_score: float, *, top: int = 15) -> dict[str, dict]:
    """Every measure of every perspective against one training dictionary."""
    return {p: perspective_audit(graded(items, entities, p, counts[p], pass_score), list(counts[p].values()),
                                 taus[p], top=top) for p in perspectives}


def comparison(items: Sequence[Item], entities: Sequence[Entities], perspectives: Sequence[str], before: Counts,
               after: Counts, taus: Mapping[str, int], pass_score: float) -> dict[str, dict]:
    """Per perspective, how the failed items' entities moved from `before` to `after`, both cut at `taus`."""
    return {p: movement([e for item, ents in zip(items, entities) if item.score < pass_score for e in ents[p]],
                        before[p], after[p], taus[p])
            for p in perspectives}


def item_summary(items: Sequence[Item], pass_score: float) -> dict:
    """How many failed, the accuracy (mean score), and items and accuracy per benchmark/category."""
    scores = [i.score for i in items]
    groups: dict[str, list[float]] = {}
    for item in items:
        name = "/".join(x for x in (item.benchmark, item.category) if x) or "all"
        groups.setdefault(name, []).append(item.score)
    return {
        "failed": sum(s < pass_score for s in scores), "accuracy": sum(scores) / len(scores) if scores else None,
        "by_group": {k: {"items": len(v), "accuracy": sum(v) / len(v)} for k, v in sorted(groups.items())},
    }


def item_rows(items: Sequence[Item], entities: Sequence[Entities], perspectives: Sequence[str],
              dictionaries: Sequence[Counts], pass_score: float) -> list[dict]:
    """Each item with its grade and its entities' training counts, in each dictionary."""
    return [{"id": item.id, "benchmark": item.benchmark, "category": item.category, "score": item.score,
             "failed": item.score < pass_score, "question": item.question, "answer": item.answer, "image": item.image,
             "counts": [{p: lookup(ents[p], counts[p]) for p in perspectives} for counts in dictionaries]}
            for item, ents in zip(items, entities)]


def _pct(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None
