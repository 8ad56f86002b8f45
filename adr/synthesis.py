"""Planning Data Synthesis: how much each method makes, from which seeds, under which ids."""

from __future__ import annotations

import hashlib
import math
from typing import Iterable, Mapping

from adr.errors import ConfigError
from adr.sampling import uniform

METHODS = ("visual", "synonym", "rewrite")
DEFAULT_MIX = {"visual": 0.6, "synonym": 0.2, "rewrite": 0.2}


def parse_mix(spec: str | Mapping[str, float] | None) -> dict[str, float]:
    """'visual=0.6,synonym=0.2,rewrite=0.2' -> shares that sum to 1 (unknown methods refused)."""
    if not spec:
        return dict(DEFAULT_MIX)
    if isinstance(spec, str):
        try:
            spec = {k.strip(): float(v) for k, v in (item.split("=", 1) for item in spec.split(",") if item.strip())}
        except ValueError:
            raise ConfigError(f"--mix must look like visual=0.6,synonym=0.2,rewrite=0.2, got {spec!r}") from None
    unknown = set(spec) - set(METHODS)
    if unknown:
        raise ConfigError(f"unknown synthesis method(s) {', '.join(sorted(unknown))}; choose from {', '.join(METHODS)}")
    total = sum(spec.values())
    if not math.isfinite(total) or total <= 0 or any(v < 0 for v in spec.values()):
        raise ConfigError(f"--mix shares must be non-negative numbers, not all zero, got {spec!r}")
    return {m: spec.get(m, 0.0) / total for m in METHODS}


def plan_budget(budget: int, mix: Mapping[str, float]) -> dict[str, int]:
    """Records per method, summing exactly to `budget` (largest remainder, ties in METHODS order)."""
    exact = {m: budget * mix.get(m, 0.0) for m in METHODS}
    plan = {m: math.floor(v) for m, v in exact.items()}
    short = budget - sum(plan.values())
    for m in sorted(METHODS, key=lambda m: (-(exact[m] - plan[m]), METHODS.index(m)))[:short]:
        plan[m] += 1
    return plan


def seed_order(seed_keys: Iterable[str], seed: int, method: str) -> list[str]:
    """The order in which a method draws seeds: a seeded hash per record key, the same on any runner."""
    return sorted(seed_keys, key=lambda key: (uniform(seed, key, "synthesis", method), key))


def synthetic_id(method: str, seed_key: str, seed: int) -> str:
    digest = hashlib.blake2b(f"{seed}\x1f{method}\x1f{seed_key}".encode(), digest_size=6).hexdigest()
    return f"adr-{method}-{digest}"


def provenance(method: str, seed_key: str, seed_id: str, tail: Mapping[str, list[str]],
               models: Mapping[str, str], parameters: Mapping) -> dict:
    """The `adr` field of a synthetic record: how it was made, from which record (its key, and its
    `id`, which in LLaVA's mix names the image and is shared by other records)."""
    return {"method": method, "seed_key": seed_key, "seed_id": seed_id,
            "tail_entities": {k: list(v) for k, v in tail.items()},
            "models": dict(models), "parameters": dict(parameters)}


def reassign_shortfall(target: Mapping[str, int], made: Mapping[str, int], open_methods: Iterable[str],
                       mix: Mapping[str, float]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Hand what closed methods (no seeds left, or not enabled) still owe to the open ones, in
    the mix's proportions among them (equal shares if none of them has one), so the budget is
    refilled while any method can still produce. Returns the new targets and {from: {to: n}}."""
    open_methods = [m for m in METHODS if m in set(open_methods)]
    owed = {m: target[m] - made.get(m, 0) for m in METHODS if m not in open_methods and target[m] > made.get(m, 0)}
    new, moved = dict(target), {}
    if not open_methods or not owed:
        return new, moved
    weights = {m: mix.get(m, 0.0) for m in open_methods}
    if not any(weights.values()):
        weights = dict.fromkeys(open_methods, 1.0)
    total = sum(weights.values())
    for source, n in owed.items():
        parts = plan_budget(n, {m: w / total for m, w in weights.items()})
        new[source] -= n
        moved[source] = {m: k for m, k in parts.items() if k}
        for m, k in parts.items():
            new[m] += k
    return new, moved
