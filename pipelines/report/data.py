"""What a run did, read from the aggregates its stages wrote: counts before and after, their shapes,
what synthesis lifted, and the verdict per perspective (pure measures in adr.distribution)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from adr.distribution import Lift, Verdict, shape, synthesis_lift, verdict
from adr.entities.registry import CATCH_ALLS
from adr.synthesis import METHODS
from pipelines.checks import run_outputs
from pipelines.outputs import join, read_json_or_none
from udfs.artifacts import Counts, read_counts
from udfs.entity_counts import dictionary_counts


@dataclass
class RunData:
    manifest: dict
    rebalance: dict
    synthesize: dict | None
    taus: dict[str, int]
    before: Counts
    after: Counts
    records_after: int
    added: Counts = field(default_factory=dict)  # the synthetic records' own counts

    @functools.cached_property
    def shapes(self) -> dict:
        """perspective -> (Shape before, Shape after), both cut at the statistics' tau."""
        return {p: (shape(self.before[p], tau), shape(self.after[p], tau)) for p, tau in self.taus.items()}

    @functools.cached_property
    def lifts(self) -> dict[str, Lift]:
        """perspective -> what synthesis added, against the ceilings and catch-alls it planned with
        (runs older than them: tau and the core's catch-alls)."""
        s = self.synthesize or {}
        ceilings = s.get("ceilings") or {}
        catch_alls = s.get("catch_alls", CATCH_ALLS)
        return {p: synthesis_lift(self.before[p], self.added.get(p, {}), tau, ceilings.get(p, tau),
                                  catch_alls.get(p, ())) for p, tau in self.taus.items()}

    @functools.cached_property
    def verdicts(self) -> dict[str, Verdict]:
        return {p: verdict(*self.shapes[p], self.lifts[p]) for p in self.taus}


def gather(run_dir: str) -> RunData:
    """Counts before (the dictionary) and after (the kept records' entity_counts/ from rebalance,
    plus the synthetic records' from synthesize): aggregates the stages wrote, sized by the
    distinct entities, never the records."""
    stats_dir = join(run_dir, "stats")
    manifest, rebalance = run_outputs(run_dir)
    synthesize = read_json_or_none(join(run_dir, "synthesize", "summary.json"))
    perspectives = tuple(manifest["parameters"]["perspectives"])
    taus = {p: manifest["perspectives"][p]["tau"] for p in perspectives}
    before = dictionary_counts(stats_dir, perspectives)
    after = read_counts(join(run_dir, "rebalance", "entity_counts"), perspectives)
    n_added, added = 0, {}
    if synthesize:
        added = read_counts(join(run_dir, "synthesize", "entity_counts"), perspectives)
        for p in perspectives:
            after[p].update(added[p])
        n_added = synthesize["synthetic"]
    return RunData(manifest, rebalance, synthesize, taus, before, after, rebalance["kept"] + n_added, added)


def outcome_counts(data: RunData) -> dict[str, int]:
    r = data.rebalance
    counts = {"input": r["input"], "kept": r["kept"], "dropped": r["dropped"], "invalid": r["invalid"]}
    if data.synthesize:
        counts.update({f"synthesised: {m}": data.synthesize["made"][m] for m in METHODS})
        counts["refined"] = data.synthesize["refined"]
    return counts


def balance_verdicts(data: RunData) -> list[str]:
    """One plain sentence per perspective: whether refinement balanced it (see adr.distribution.verdict),
    with the figures that say so."""
    figures = balance(data)
    return [figures[p]["line"] for p in data.taus]


def _lift_phrase(lift: Lift) -> str:
    if not lift.added:
        return "synthesis added nothing"
    words = (f"synthesis lifted {lift.lifted:,} tail entities (mean +{lift.lift_mean:.1f}, median "
             f"+{lift.lift_median:g})" if lift.lifted else "synthesis lifted no tail entity")
    if lift.highest is not None and not lift.past_ceiling:  # past it: the verdict already names it
        words += f", highest {lift.highest!r} at {lift.highest_count:,} of ceiling {lift.ceiling:,}"
    return words + f"; {lift.tail_added_pct:.1f}% of its {lift.added:,} occurrences went to the tail"


def balance(data: RunData) -> dict:
    """perspective -> the figures, the verdict and its line: what balance.json holds."""
    out = {}
    for p, tau in data.taus.items():
        (b, a), lift, v = data.shapes[p], data.lifts[p], data.verdicts[p]
        if not b.entities:
            v = Verdict(False, f"nothing to balance: no {p} entities in this corpus")
            line = f"{p}: {v.text}" + (" (no record carries objects: `adr run --detector` grounds them)"
                                        if p in ("object", "cooccurrence") else "")
        else:
            line = (f"{p}: {v.text} (Gini {b.gini:.3f} -> {a.gini:.3f}, normalised entropy {b.entropy:.3f} -> "
                    f"{a.entropy:.3f}, tail share of occurrences {b.tail_occurrences_pct:.1f}% -> "
                    f"{a.tail_occurrences_pct:.1f}%; {_lift_phrase(lift)})")
        out[p] = {"tau": tau, "before": b.to_dict(), "after": a.to_dict(), "synthesis": lift.to_dict(),
                  "balanced": v.balanced, "verdict": v.text, "line": line}
    return out
