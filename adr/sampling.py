"""The keep rule (spec: 'The keep rule'), with draws that are pure functions of their inputs."""

from __future__ import annotations

import hashlib
import math
from typing import Iterable, Mapping

NO_ENTITIES = "no-entities"
HEAD_ONLY = "head-only"
_SCALE = float(1 << 64)


def uniform(seed: int, record_id: str, perspective: str, entity: str) -> float:
    """U in [0, 1) from a 64-bit hash of (seed, record id, perspective, entity)."""
    key = f"{seed}\x1f{record_id}\x1f{perspective}\x1f{entity}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") / _SCALE


def keep_probability(ps: Iterable[float]) -> float:
    """P(keep) = 1 - prod(1 - min(1, p)); 0 for a record with no entities."""
    ps = list(ps)
    if not ps:
        return 0.0
    return 1.0 - math.prod(1.0 - min(1.0, p) for p in ps)


def decide(seed: int, record_id: str, entities: Mapping[str, Iterable[str]],
           probs: Mapping[str, Mapping[str, float]]) -> tuple[bool, str | None]:
    """(keep, reason): kept when any entity passes U < p; an entity missing from the
    dictionary is tail (p = 1)."""
    seen = False
    for perspective, values in entities.items():
        table = probs.get(perspective, {})
        for entity in values:
            seen = True
            if uniform(seed, record_id, perspective, entity) < table.get(entity, 1.0):
                return True, None
    return False, (HEAD_ONLY if seen else NO_ENTITIES)
