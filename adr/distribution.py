"""How long-tailed an entity distribution is: the measures the report compares before and after."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping


def gini(counts: Iterable[int]) -> float:
    """0 when every entity is equally frequent, towards 1 when a few entities hold all the mass."""
    xs = sorted(c for c in counts if c > 0)
    n, total = len(xs), sum(xs)
    if n < 2 or total == 0:
        return 0.0
    weighted = sum(i * x for i, x in enumerate(xs, start=1))
    return 2.0 * weighted / (n * total) - (n + 1) / n


def normalised_entropy(counts: Iterable[int]) -> float:
    """Shannon entropy of the occurrence shares over log(entities): 1 is perfectly balanced."""
    xs = [c for c in counts if c > 0]
    total = sum(xs)
    if len(xs) < 2:
        return 0.0
    h = -sum(c / total * math.log(c / total) for c in xs)
    return h / math.log(len(xs))


@dataclass(frozen=True)
class Shape:
    entities: int
    occurrences: int
    tail_entities_pct: float   # entities with count <= tau
    tail_occurrences_pct: float
    gini: float
    entropy: float

    def to_dict(self) -> dict:
        return asdict(self)


def shape(counts: Mapping[str, int], tau: int) -> Shape:
    """The distribution's measures, with head and tail cut at the statistics stage's tau."""
    values = [c for c in counts.values() if c > 0]
    total = sum(values)
    tail = [c for c in values if c <= tau]
    return Shape(len(values), total,
                 100.0 * len(tail) / len(values) if values else 0.0,
                 100.0 * sum(tail) / total if total else 0.0,
                 gini(values), normalised_entropy(values))


def rank_frequency(counts: Mapping[str, int]) -> list[int]:
    """Counts in descending order: the y values of a rank-frequency plot (rank = index + 1)."""
    return sorted((c for c in counts.values() if c > 0), reverse=True)


def top_head(counts: Mapping[str, int], tau: int, k: int) -> list[tuple[str, int]]:
    """The k most frequent head entities (count above tau), ties by name."""
    head = [(e, c) for e, c in counts.items() if c > tau]
    return sorted(head, key=lambda ec: (-ec[1], ec[0]))[:k]


def sample_tail(counts: Mapping[str, int], tau: int, k: int, seed: int) -> list[tuple[str, int]]:
    """k tail entities chosen by a seeded hash (stable across runs), most frequent first."""
    from adr.sampling import uniform

    tail = [e for e, c in counts.items() if 0 < c <= tau]
    chosen = sorted(tail, key=lambda e: uniform(seed, "report", "tail-sample", e))[:k]
    return sorted(((e, counts[e]) for e in chosen), key=lambda ec: (-ec[1], ec[0]))
