"""Every `adr` stage, one registry: `adr <stage>`, `adr run` and spark-submit read it."""

from __future__ import annotations

import functools
from collections.abc import Callable

from pipelines.stage import Stage

# Importing a stage imports its engine (Beam, torch through Beam's RunInference, Spark), so each is
# imported when a command needs it: `adr stats` never loads torch, a mistake in its flags is
# reported in a second.


def _annotate() -> Stage:
    from pipelines.annotate.job import STAGE
    return STAGE


def _stats() -> Stage:
    from pipelines.stats.job import STAGE
    return STAGE


def _rebalance() -> Stage:
    from pipelines.rebalance.job import STAGE
    return STAGE


def _synthesize() -> Stage:
    from pipelines.synthesize.job import STAGE
    return STAGE


def _report() -> Stage:
    from pipelines.report.job import STAGE
    return STAGE


def _audit() -> Stage:
    from pipelines.audit.job import STAGE
    return STAGE


def _import_coco() -> Stage:
    from pipelines.coco_import import STAGE
    return STAGE


# In the order `adr run` runs those it wires.
LOADERS: dict[str, Callable[[], Stage]] = {
    "annotate": _annotate, "stats": _stats, "rebalance": _rebalance, "synthesize": _synthesize,
    "report": _report, "audit": _audit, "import coco": _import_coco,
}


@functools.cache
def stage(name: str) -> Stage | None:
    """The stage called `name`, or None."""
    load = LOADERS.get(name)
    return load() if load else None


def stages() -> dict[str, Stage]:
    """name -> stage, every one."""
    return {name: s for name in LOADERS if (s := stage(name)) is not None}


def in_run() -> tuple[Stage, ...]:
    """The stages of `adr run`, in order."""
    return tuple(s for s in stages().values() if s.wiring is not None)
