"""The four perspectives, registered by name, each with its record requirements and defaults.

The token perspective needs part-of-speech tags: the engine tags the record's turn texts and
passes (tag, lemma) pairs in; everything else reads the record alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adr.entities.interrogation import CATCH_ALL, interrogation_types
from adr.entities.objects import cooccurrence_pairs, object_set
from adr.entities.token import noun_lemmas
from adr.errors import ConfigError
from adr.records import turn_texts

Tagged = list[tuple[str, str]]


@dataclass(frozen=True)
class Perspective:
    name: str
    code: str
    requires: tuple[str, ...]
    tail_share: float
    extract: Callable[[dict, Tagged], set[str]]
    needs_tagger: bool = False
    catch_alls: frozenset[str] = frozenset()  # entities that name no concept: never a synthesis target


PERSPECTIVES: dict[str, Perspective] = {}


def register(p: Perspective) -> Perspective:
    if p.name in PERSPECTIVES:
        raise ConfigError(f"perspective {p.name!r} is already registered")
    PERSPECTIVES[p.name] = p
    return p


register(Perspective("token", "T", ("conversations",), 0.9,
                     lambda record, tagged: noun_lemmas(tagged), needs_tagger=True))
register(Perspective("object", "O", ("objects",), 0.9,
                     lambda record, tagged: object_set(record.get("objects"))))
register(Perspective("cooccurrence", "C", ("objects",), 0.75,
                     lambda record, tagged: cooccurrence_pairs(object_set(record.get("objects")))))
register(Perspective("interrogation", "W", ("conversations",), 0.9,
                     lambda record, tagged: interrogation_types(turn_texts(record, "human")),
                     catch_alls=frozenset({CATCH_ALL})))

ALL = tuple(PERSPECTIVES)
CATCH_ALLS: dict[str, frozenset[str]] = {p.name: p.catch_alls for p in PERSPECTIVES.values() if p.catch_alls}


def resolve(names: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Perspective names from 'token,object' or their codes 'T,O'; all four when empty."""
    if not names:
        return ALL
    if isinstance(names, str):
        spec, names = names, [n for n in names.split(",") if n.strip()]
        if not names:
            raise ConfigError(f"no perspective in {spec!r}; choose from {', '.join(ALL)}")
    by_code = {p.code.lower(): p.name for p in PERSPECTIVES.values()}
    out = []
    for raw in names:
        key = raw.strip().lower()
        name = by_code.get(key, key)
        if name not in PERSPECTIVES:
            raise ConfigError(f"unknown perspective {raw!r}; choose from {', '.join(ALL)}")
        if name not in out:
            out.append(name)
    return tuple(sorted(out, key=ALL.index))


def tail_shares(spec: str | dict | None, perspectives: tuple[str, ...]) -> dict[str, float]:
    """rho per perspective: registry defaults overridden by 'token=0.9,cooccurrence=0.75'."""
    shares = {n: PERSPECTIVES[n].tail_share for n in perspectives}
    if isinstance(spec, str):
        items = [item.split("=", 1) for item in spec.split(",") if item.strip()]
        if any(len(item) != 2 or not item[0].strip() for item in items):
            raise ConfigError(f"--tail-share must look like token=0.9,cooccurrence=0.75, got {spec!r}")
        spec = dict(items)
    for key, value in (spec or {}).items():
        (name,) = resolve([key])
        try:
            rho = float(value)
        except (TypeError, ValueError):
            rho = None
        if rho is None or not 0.0 < rho <= 1.0:
            raise ConfigError(f"tail share for {name} must be a number in (0, 1], got {value!r}")
        shares[name] = rho
    return {n: shares[n] for n in perspectives}


def extract_record(record: dict, tagged: Tagged, perspectives: tuple[str, ...]) -> dict[str, set[str]]:
    """The entity set of every requested perspective for one record (the scalar reference)."""
    return {n: PERSPECTIVES[n].extract(record, tagged) for n in perspectives}
