"""Planning Data Synthesis: how much each method makes, from which seeds, under which ids."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping

from adr.entities.registry import CATCH_ALLS
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


def synthetic_id(method: str, seed_key: str, seed: int, target: str | None = None) -> str:
    """A record's id: one seed may serve several tail entities (a record for each), so the
    entity it was made for is part of the id when a seed offers more than one."""
    text = f"{seed}\x1f{method}\x1f{seed_key}" + ("" if target is None else f"\x1f{target}")
    return f"adr-{method}-{hashlib.blake2b(text.encode(), digest_size=6).hexdigest()}"


def provenance(method: str, seed_key: str, seed_id: str, tail: Mapping[str, list[str]],
               models: Mapping[str, str], parameters: Mapping, made_for: tuple[str, str] | None = None) -> dict:
    """The `adr` field of a synthetic record: how it was made, from which record (its key, and its
    `id`, which in LLaVA's mix names the image and is shared by other records), and the tail
    entity (perspective, entity) the plan made it for."""
    out: dict = {"method": method, "seed_key": seed_key, "seed_id": seed_id}
    if made_for is not None:
        out["made_for"] = {"perspective": made_for[0], "entity": made_for[1]}
    return {**out, "tail_entities": {k: list(v) for k, v in tail.items()},
            "models": dict(models), "parameters": dict(parameters)}


def reassign_shortfall(target: Mapping[str, int], made: Mapping[str, int], open_methods: Iterable[str],
                       mix: Mapping[str, float]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Hand what closed methods (no seeds left, or not enabled) still owe to the open ones, in
    the mix's proportions among them (equal shares if none of them has one), so the budget is
    refilled while any method can still produce. Returns the new targets and {from: {to: n}}."""
    open_methods = [m for m in METHODS if m in set(open_methods)]
    owed = {m: target[m] - made.get(m, 0) for m in METHODS if m not in open_methods and target[m] > made.get(m, 0)}
    new, moved = dict(target), {}  # type: dict, dict
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


# ---- the plan per tail entity ---------------------------------------------------------------
# Each tail entity e may receive up to capacity(e) = ceiling - n(e) synthetic occurrences. A
# method's offers for e (seeds that can make a record carrying e) are ordered by
# order = u * offers(e) / capacity(e), u the seed's draw: taking every offer of order below t
# gives each entity t * its capacity, in expectation, so the budget is spread in proportion to
# the deficits (the rarest get most) and no entity is planned past its ceiling (offers of order
# >= 1 are never drawn). The rounds take offers by bins of that order; what the rounds then
# make is checked against the ceilings exactly, whichever method made it.


def parse_ceilings(spec: str | None, taus: Mapping[str, int]) -> dict[str, int]:
    """Per perspective, the count synthesis may lift a tail entity to: tau (the default), a
    multiple of tau ('1.5'), or counts per perspective ('token=2000,object=400'; the others tau)."""
    if not spec:
        return dict(taus)
    try:
        if "=" not in spec:
            factor = float(spec)
            if not math.isfinite(factor) or factor <= 0:
                raise ValueError
            return {p: int(factor * tau) for p, tau in taus.items()}
        given = {k.strip(): int(v) for k, v in (item.split("=", 1) for item in spec.split(",") if item.strip())}
    except ValueError:
        raise ConfigError(f"--ceiling must be a multiple of tau (1.5) or perspective=count,... (token=2000), "
                          f"got {spec!r}") from None
    unknown = set(given) - set(taus)
    if unknown or any(v < 0 for v in given.values()):
        raise ConfigError(f"--ceiling names perspectives the dictionary lacks or a negative count: {spec!r}")
    return {p: given.get(p, tau) for p, tau in taus.items()}


def capacity(count: int, ceiling: int) -> int:
    """Synthetic occurrences an entity may still receive."""
    return max(0, ceiling - count)


def is_target(perspective: str, entity: str, count: int, tau: int) -> bool:
    """A tail entity that names a concept: what synthesis is planned for."""
    return count <= tau and entity not in CATCH_ALLS.get(perspective, ())


def offer_order(u: float, offers: int, room: int) -> float | None:
    """An offer's place in the plan (see above); None: past the entity's ceiling, never drawn."""
    if room <= 0 or offers <= 0:
        return None
    order = u * offers / room
    return order if order < 1.0 else None


def planned(offers: int, room: int, reach: float) -> int:
    """Records the plan gives an entity when the method's pick reached order `reach`."""
    return int(min(offers, room, reach * room))


# ---- drawing seeds by intervals of their draw ---------------------------------------------
# A method's seeds are taken in the order of u = draw(seed, key, method). Rather than a sorted
# list of keys, the engine counts seeds per fixed bin of u; a round takes the seeds of a run of
# whole bins, so the driver holds bin counts, never keys, and any engine can select by filter.

BINS = 4096  # a power of two: u * BINS is exact, so a bin is the same float arithmetic everywhere


def draw(seed: int, key: str, method: str) -> float:
    """A seed's place in a method's order: a seeded hash of its key, the same on any runner."""
    return uniform(seed, key, "synthesis", method)


def offer_draw(seed: int, key: str, method: str, perspective: str, entity: str) -> float:
    """Each (seed, target) draws on its own: a seed's offers for two entities are not taken together."""
    return draw(seed, f"{key}\x1f{perspective}\x1f{entity}", method)


def bin_of(u: float, bins: int = BINS) -> int:
    return min(bins - 1, int(u * bins))


def next_bins(counts: Mapping[int, int], start: int, take: int, bins: int = BINS) -> int:
    """The end of the run of bins from `start` that holds at least `take` seeds (or all that are
    left): a round's seeds are those with start <= bin_of(u) < end."""
    have, end = 0, start
    while end < bins and have < take:
        have += counts.get(end, 0)
        end += 1
    # Empty bins after the last seed are swept in too, so a method is closed as soon as it has none left.
    if all(counts.get(b, 0) == 0 for b in range(end, bins)):
        end = bins
    return end


def boundary(counts: Mapping[int, int], n: int) -> tuple[int, int]:
    """Where the n smallest draws end, in bin counts: (b, k) = every candidate of bins below b,
    and the k smallest of bin b. n at or above the total keeps all of them."""
    below = 0
    for b in sorted(counts):
        if below + counts[b] >= n:
            return b, n - below
        below += counts[b]
    return 1 << 62, 0


def kept_per_bin(counts: Mapping[int, int], n: int) -> dict[int, int]:
    """Candidates kept in each bin when the n smallest draws are kept."""
    b, k = boundary(counts, n)
    out = {x: c for x, c in counts.items() if x < b}
    if k:
        out[b] = k
    return out


def shard_of_cells(cells: Iterable[tuple[tuple, int]], shards: int) -> dict[tuple, int]:
    """Ordered (cell, count) -> shard, cut so shards hold about equal counts; concatenating the
    shards in order gives the cells in order, whatever the number of shards."""
    cells = list(cells)
    total = sum(n for _, n in cells) or 1
    out, before = {}, 0
    for cell, n in cells:  # by the cell's middle, so a large cell lands where most of it falls
        out[cell] = min(shards - 1, (2 * before + n) * shards // (2 * total))
        before += n
    return out
