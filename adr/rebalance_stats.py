"""What a rebalancing run did, as counts that merge across bundles and workers in any order."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RebalanceStats:
    input: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)       # reason -> records
    invalid: Counter = field(default_factory=Counter)       # reason -> records
    expected_kept: float = 0.0
    # perspective -> [tail occurrences, all occurrences] in the input and in the kept records
    mass_before: dict = field(default_factory=dict)
    mass_after: dict = field(default_factory=dict)
    # perspective -> (distinct tail entities in the input, in the kept records): counted by the
    # engine (distinct, then counted), so merging stays constant in size
    tail_entities: dict = field(default_factory=dict)
    repeated_ids: int = 0       # valid records whose id an earlier record has (normal in LLaVA's mix)
    exact_duplicates: int = 0   # valid records byte-identical to an earlier one
    late: int = 0               # streamed messages past --allowed-lateness (dead letters, not decided)
    # the dictionary version (JSON of fingerprint, tau, factor) -> records decided with it
    dictionaries: Counter = field(default_factory=Counter)

    def __add__(self, other: RebalanceStats) -> RebalanceStats:
        return RebalanceStats(
            self.input + other.input, self.kept + other.kept, self.dropped + other.dropped,
            self.invalid + other.invalid, self.expected_kept + other.expected_kept,
            _add_pairs(self.mass_before, other.mass_before), _add_pairs(self.mass_after, other.mass_after),
            _add_pairs(self.tail_entities, other.tail_entities),
            self.repeated_ids + other.repeated_ids, self.exact_duplicates + other.exact_duplicates,
            self.late + other.late, self.dictionaries + other.dictionaries)

    def to_summary(self) -> dict:
        dropped = sum(self.dropped.values())
        invalid = sum(self.invalid.values())
        coverage = {}
        for p in sorted(set(self.mass_before) | set(self.tail_entities)):
            tb, ab = self.mass_before.get(p, (0, 0))
            ta, aa = self.mass_after.get(p, (0, 0))
            coverage[p] = {
                "tail_entities_before": self.tail_entities.get(p, (0, 0))[0],
                "tail_entities_after": self.tail_entities.get(p, (0, 0))[1],
                "tail_mass_pct_before": round(100.0 * tb / ab, 3) if ab else 0.0,
                "tail_mass_pct_after": round(100.0 * ta / aa, 3) if aa else 0.0,
            }
        return {"input": self.input, "kept": self.kept, "dropped": dropped, "invalid": invalid, "late": self.late,
                "budget": dropped, "expected_kept": round(self.expected_kept, 3),
                "dropped_by_reason": dict(sorted(self.dropped.items())),
                "invalid_by_reason": dict(sorted(self.invalid.items())), "tail_coverage": coverage,
                "repeated_ids": self.repeated_ids, "exact_duplicates": self.exact_duplicates,
                "dictionaries": [{**json.loads(v), "records": n} for v, n in sorted(self.dictionaries.items())]}

    def check(self) -> None:
        """The invariant: every input record is kept, dropped, invalid or late, exactly once."""
        if self.input != self.kept + sum(self.dropped.values()) + sum(self.invalid.values()) + self.late:
            raise RuntimeError(f"records lost or duplicated: input {self.input} != kept {self.kept} + "
                               f"dropped {sum(self.dropped.values())} + invalid {sum(self.invalid.values())} + "
                               f"late {self.late}")


def _add_pairs(a: dict, b: dict) -> dict:
    return {k: tuple(x + y for x, y in zip(a.get(k, (0, 0)), b.get(k, (0, 0)))) for k in set(a) | set(b)}
