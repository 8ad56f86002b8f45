"""Entity counts that merge across shards, and the probability dictionary built from them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from adr.thresholds import Threshold, histogram, probability, threshold


@dataclass
class EntityCounts:
    """n_k(e) for every perspective k and entity e, over `records` records.

    `+` is associative and commutative, so shards can be counted anywhere and summed.
    """

    records: int = 0
    counts: dict[str, Counter] = field(default_factory=dict)

    def add(self, entities: Mapping[str, Iterable[str]]) -> None:
        self.records += 1
        for perspective, values in entities.items():
            self.counts.setdefault(perspective, Counter()).update(set(values))

    def __add__(self, other: EntityCounts) -> EntityCounts:
        merged = {k: Counter(v) for k, v in self.counts.items()}
        for k, v in other.counts.items():
            merged.setdefault(k, Counter()).update(v)
        return EntityCounts(self.records + other.records, merged)

    def thresholds(self, tail_shares: Mapping[str, float]) -> dict[str, Threshold]:
        return {k: threshold(histogram(self.counts.get(k, Counter()).values()), rho)
                for k, rho in tail_shares.items()}

    def dictionary(self, tail_shares: Mapping[str, float]) -> list[tuple[str, str, int, float]]:
        """(perspective, entity, count, p) rows, the artifact the filter loads."""
        taus = self.thresholds(tail_shares)
        return [(k, e, n, probability(taus[k].tau, n))
                for k in tail_shares for e, n in sorted(self.counts.get(k, Counter()).items())]
