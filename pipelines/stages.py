"""Every `adr` stage, one registry: `adr <stage>`, `adr run` and spark-submit read it."""

from __future__ import annotations

import functools

from pipelines.stage import Stage


@functools.cache
def stages() -> dict[str, Stage]:
    """name -> stage; `adr run` runs those it wires in this order. Importing a stage imports its
    engine, so the registry is read when a command needs it, not when `adr` starts."""
    from pipelines import coco_import
    from pipelines.annotate import job as annotate
    from pipelines.audit import job as audit
    from pipelines.rebalance import job as rebalance
    from pipelines.report import job as report
    from pipelines.stats import job as stats
    from pipelines.synthesize import job as synthesize

    return {s.name: s for s in (annotate.STAGE, stats.STAGE, rebalance.STAGE, synthesize.STAGE, report.STAGE,
                                audit.STAGE, coco_import.STAGE)}


def in_run() -> tuple[Stage, ...]:
    """The stages of `adr run`, in order."""
    return tuple(s for s in stages().values() if s.wiring is not None)
