"""The keep rule (spec: 'The keep rule'), with draws that are pure functions of their inputs."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping

from adr.errors import ConfigError

NO_ENTITIES = "no-entities"
HEAD_ONLY = "head-only"
_SCALE = float(1 << 64)


def uniform(seed: int, record_key: str, perspective: str, entity: str) -> float:
    """U in [0, 1) from a 64-bit hash of (seed, record key, perspective, entity)."""
    key = f"{seed}\x1f{record_key}\x1f{perspective}\x1f{entity}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") / _SCALE


def keep_probability(ps: Iterable[float]) -> float:
    """P(keep) = 1 - prod(1 - min(1, p)); 0 for a record with no entities."""
    ps = list(ps)
    if not ps:
        return 0.0
    return 1.0 - math.prod(1.0 - min(1.0, p) for p in ps)


def decide(seed: int, record_key: str, entities: Mapping[str, Iterable[str]],
           probs: Mapping[str, Mapping[str, float]], factor: float = 1.0) -> tuple[bool, str | None]:
    """(keep, reason): kept when any entity passes U < p (p scaled by `factor`, see
    --target-size); an entity missing from the dictionary is tail (p = 1)."""
    seen = False
    for perspective, values in entities.items():
        table = probs.get(perspective, {})
        for entity in values:
            seen = True
            p = scaled(table[entity], factor) if entity in table else 1.0
            if uniform(seed, record_key, perspective, entity) < p:
                return True, None
    return False, (HEAD_ONLY if seen else NO_ENTITIES)


def scaled(p: float, factor: float) -> float:
    """p under all tau scaled by `factor` (p = tau / n is linear in tau)."""
    return p * factor


def expected_kept(ps_by_record: Iterable[Iterable[float]], factor: float = 1.0) -> float:
    """The closed-form expected number of kept records: sum of P(keep) under scaled tau."""
    return sum(keep_probability(scaled(p, factor) for p in ps) for ps in ps_by_record)


def factor_for_target(expected_on: Callable[[list[float]], list[float]], target: float, *,
                      tolerance: float = 0.5, points: int = 33, max_passes: int = 12) -> float:
    """The tau scale factor f with expected(f) == target.

    `expected_on` evaluates a whole grid of factors in one pass over the corpus (a sum over
    records, so the engine can spread it): first a log grid from 1e-6 to 1e12, then, pass by
    pass, a finer grid between the two points that bracket the target. expected(f) is
    non-decreasing in f: every p grows with f, and so does every P(keep).
    """
    grid = [2.0 ** (k / 2) for k in range(-40, 81)]
    values = list(expected_on(grid))
    if values[-1] < target - tolerance:
        raise ConfigError(f"--target-size {target:.0f} is more than can be kept: at most about "
                          f"{values[-1]:.0f} records have entities")
    for _ in range(max_passes):
        best = min(range(len(grid)), key=lambda i: abs(values[i] - target))
        if abs(values[best] - target) <= tolerance:
            return grid[best]
        above = next(i for i, v in enumerate(values) if v >= target)
        if above == 0:
            return grid[0]
        lo, hi = grid[above - 1], grid[above]
        inner = [lo + (hi - lo) * k / (points + 1) for k in range(1, points + 1)]
        grid = [lo, *inner, hi]
        values = [values[above - 1], *expected_on(inner), values[above]]
    return grid[min(range(len(grid)), key=lambda i: abs(values[i] - target))]
