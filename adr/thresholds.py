"""Head/tail cut per perspective from a tail share rho (spec: 'Head and tail')."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Threshold:
    tau: int
    rho: float
    entities: int
    mass: int
    tail_entities_pct: float
    tail_mass_pct: float

    def to_dict(self) -> dict:
        return asdict(self)


def histogram(counts: Iterable[int]) -> dict[int, int]:
    """count value -> number of entities with that count."""
    hist: dict[int, int] = {}
    for c in counts:
        hist[c] = hist.get(c, 0) + 1
    return hist


def threshold(hist: Mapping[int, int], rho: float) -> Threshold:
    """tau = the count at the first rank (counts descending) where the running total of counts
    reaches rho of the grand total; entities with count > tau are head, the rest tail.

    Works on the count histogram, so the engine only ever collects (count, entities) pairs.
    """
    mass = sum(c * n for c, n in hist.items())
    entities = sum(hist.values())
    if mass == 0:
        return Threshold(0, rho, 0, 0, 0.0, 0.0)
    target = Fraction(str(rho)) * mass
    running = 0
    tau = 0
    for c in sorted(hist, reverse=True):
        running += c * hist[c]
        if running >= target:
            tau = c
            break
    tail_entities = sum(n for c, n in hist.items() if c <= tau)
    tail_mass = sum(c * n for c, n in hist.items() if c <= tau)
    return Threshold(tau, rho, entities, mass, round(100.0 * tail_entities / entities, 4),
                     round(100.0 * tail_mass / mass, 4))


def probability(tau: int, count: int) -> float:
    """p_k(e) = tau_k / n_k(e): above 1 for tail entities, below 1 for head ones."""
    return tau / count
