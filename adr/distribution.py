"""How long-tailed an entity distribution is: the measures the report compares before and after."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass


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


# ---- what synthesis did to the tail -------------------------------------------------------

@dataclass(frozen=True)
class Lift:
    """What synthesis added to one perspective. Tail = count <= tau in the statistics dictionary
    (before refinement, as the synthesis plan sees it); an entity absent from it is tail too."""
    tau: int
    ceiling: int                # the count synthesis may lift a tail entity to
    added: int                  # occurrences in the synthetic records, every entity
    tail_added_pct: float       # share of `added` that went to tail entities (catch-alls excluded)
    lifted: int                 # tail entities that received any
    new: int                    # of which absent from the dictionary
    lift_mean: float            # occurrences added per lifted entity
    lift_median: float
    highest: str | None         # the lifted entity that ended highest (before + added)
    highest_count: int
    past_ceiling: int           # lifted entities that ended above the ceiling
    catch_alls: dict[str, int]  # catch-all entity -> occurrences added

    @property
    def highest_ratio(self) -> float:
        """The highest lifted count as a multiple of the ceiling (above 1: past it)."""
        return self.highest_count / self.ceiling if self.ceiling else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "highest_ratio": self.highest_ratio}


def synthesis_lift(before: Mapping[str, int], added: Mapping[str, int], tau: int, ceiling: int | None = None,
                   catch_alls: Iterable[str] = ()) -> Lift:
    """Judge the synthetic records' counts `added` against the dictionary counts `before`."""
    ceiling = tau if ceiling is None else ceiling
    catch_alls = set(catch_alls)
    gains = {e: n for e, n in added.items() if n > 0}
    lifted = {e: n for e, n in gains.items() if e not in catch_alls and before.get(e, 0) <= tau}
    reached = {e: before.get(e, 0) + n for e, n in lifted.items()}
    highest = min(reached, key=lambda e: (-reached[e], e), default=None)
    total = sum(gains.values())
    return Lift(tau, ceiling, total, 100.0 * sum(lifted.values()) / total if total else 0.0,
                len(lifted), sum(1 for e in lifted if before.get(e, 0) == 0),
                statistics.fmean(lifted.values()) if lifted else 0.0,
                float(statistics.median(lifted.values())) if lifted else 0.0,
                highest, reached[highest] if highest is not None else 0,
                sum(1 for c in reached.values() if c > ceiling),
                {e: gains[e] for e in sorted(catch_alls) if e in gains})


@dataclass(frozen=True)
class Verdict:
    balanced: bool  # Gini down, entropy up, tail share up, and no entity pushed past its ceiling
    text: str       # "more balanced", "unchanged", or "not more balanced: " and what got worse


def verdict(before: Shape, after: Shape, lift: Lift | None = None, eps: float = 1e-9) -> Verdict:
    """Whether refinement balanced a perspective. A drop in Gini alone is not enough: lifting a
    few tail entities far past tau lowers it too while the tail's share of occurrences falls."""
    worse, flat = [], []
    for name, b, a, up, fmt in (("Gini", before.gini, after.gini, False, "{:.3f}"),
                                ("normalised entropy", before.entropy, after.entropy, True, "{:.3f}"),
                                ("tail share of occurrences", before.tail_occurrences_pct,
                                 after.tail_occurrences_pct, True, "{:.1f}%")):
        gain = a - b if up else b - a
        if gain < -eps:
            worse.append(f"{name} {'fell' if up else 'rose'} {fmt.format(b)} -> {fmt.format(a)}")
        elif gain <= eps:
            flat.append(f"{name} unchanged")
    if lift is not None and lift.past_ceiling:
        worse.append(f"synthesis pushed {lift.past_ceiling} tail entit{'y' if lift.past_ceiling == 1 else 'ies'} "
                     f"past the ceiling {lift.ceiling:,} ({lift.highest!r} to {lift.highest_count:,}, "
                     f"{lift.highest_ratio:.1f}x)")
    if not worse and len(flat) == 3:
        return Verdict(False, "unchanged")
    if worse or flat:
        return Verdict(False, "not more balanced: " + "; ".join(worse + flat))
    return Verdict(True, "more balanced")


def best_gini(counts: Mapping[str, int], tau: int, additions: int, ceiling: int | None = None) -> float:
    """The lowest Gini that `additions` occurrences, each given to a tail entity and none to the
    head, can reach: they raise the rarest tail entities to one level, never past the ceiling
    (what any synthesis of that volume could do at best, whatever its method)."""
    ceiling = tau if ceiling is None else ceiling
    tail = [c for c in counts.values() if 0 < c <= tau]
    head = [c for c in counts.values() if c > tau]

    def used(level: int) -> int:
        return sum(max(0, level - c) for c in tail)

    low, high = 0, max(ceiling, 0)  # the highest level the additions pay for
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if used(mid) <= additions else (low, mid - 1)
    filled = [max(c, low) for c in tail]
    left = additions - used(low)
    for k, c in enumerate(filled):  # the remainder, one each, to entities at the level
        if left <= 0:
            break
        if c == low < ceiling:
            filled[k], left = c + 1, left - 1
    return gini(filled + head)
