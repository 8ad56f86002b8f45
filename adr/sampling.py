"""The keep rule (spec: 'The keep rule'), with draws that are pure functions of their inputs."""

from __future__ import annotations

import hashlib
import math
from typing import Callable, Iterable, Mapping

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


def factor_for_target(expected: Callable[[float], float], target: float, *, tolerance: float = 0.5,
                      max_iter: int = 200) -> float:
    """The tau scale factor f with expected(f) == target, by bisection.

    expected(f) is non-decreasing in f: every p grows with f, and so does every P(keep).
    """
    lo, hi = 0.0, 1.0
    while expected(hi) < target:
        hi *= 2.0
        if hi > 1e12:
            raise ValueError(f"target {target} is more than the records that have entities")
    for _ in range(max_iter):
        mid = (lo + hi) / 2.0
        value = expected(mid)
        if abs(value - target) <= tolerance:
            return mid
        lo, hi = (mid, hi) if value < target else (lo, mid)
    return (lo + hi) / 2.0
