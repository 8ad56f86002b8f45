"""What a rebalancing run did: its statistics merged by the engine, written as summary.json (one
per window when streaming), and described for the terminal."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms import window

from adr.rebalance_stats import RebalanceStats
from pipelines.outputs import join, write_json
from pipelines.rebalance.panes import pane_name
from udfs.sources import fingerprint, input_format


def tail_entity_stats(summed):
    """Distinct tail entities per perspective, from the kept records' summed entity counts keyed
    (perspective, entity, is tail). Every record holding a tail entity is kept, so the input's
    tail entities are the kept records': before equals after by the keep rule, and no set of tail
    entities is shuffled beyond the counts."""
    return (summed
            | "TailOnly" >> beam.Filter(lambda kv: kv[0][2])
            | "TailKey" >> beam.Map(lambda kv: (kv[0][0], 1))
            | "CountTail" >> beam.CombinePerKey(sum)
            | "TailStats" >> beam.Map(lambda kv: RebalanceStats(tail_entities={kv[0]: (kv[1], kv[1])})))


class WriteSummary(beam.DoFn):
    """Check the invariant and write summary.json (one per window when streaming)."""

    def __init__(self, cfg, output: str, inputs: list[str] | None):
        self.cfg, self.output, self.inputs = cfg, output, inputs

    def process(self, stats: RebalanceStats, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        yield summarise(stats, self.cfg, self.output, self.inputs, win, pane.index)


def summarise(stats: RebalanceStats, cfg, output: str, inputs: list[str] | None, win, pane: int = 0) -> dict:
    stats.check()
    summary = stats.to_summary()
    # tau as the decisions used it: a refreshed dictionary may differ from the one of the launch.
    used = summary["dictionaries"]
    summary.update({
        "seed": cfg.seed, "perspectives": list(cfg.perspectives),
        "tau": used[0]["tau"] if len(used) == 1 else cfg.taus if not used else None,
        "tau_factor": cfg.factor, "target_size": cfg.target_size or None, "dictionary": cfg.stats_dir,
        "image_seeds": ("a stream cannot see whether another record shares an image: no seed is offered "
                        "to visual synthesis (image_shared is null)" if cfg.streaming else
                        "seeds whose image no other record uses (image_shared false)"),
        "input_fingerprint": fingerprint(inputs) if inputs else None,
        "input_format": input_format(inputs) if inputs else None,
    })
    if isinstance(win, window.GlobalWindow):
        write_json(join(output, "summary.json"), summary)
    else:
        # One per pane: a late pane's counts are its own (panes discard what fired), beside the
        # on-time pane's, never over it.
        summary["window"] = [win.start.to_utc_datetime().isoformat(), win.end.to_utc_datetime().isoformat()]
        summary["pane"] = pane
        write_json(join(output, "summary", pane_name(win.start.micros // 1_000_000, pane, ".json",
                                                      job=getattr(cfg, "job", ""))), summary)
    return summary


def describe(summary: dict) -> str:
    lines = [f"input {summary['input']}  kept {summary['kept']}  dropped {summary['dropped']}  "
             f"invalid {summary['invalid']}  (expected kept {summary['expected_kept']:.0f})  "
             f"budget {summary['budget']}"]
    if summary["tau_factor"] != 1.0:
        lines.append(f"tau scaled by {summary['tau_factor']:.6f} for target size {summary['target_size']}")
    for p, c in summary["tail_coverage"].items():
        lines.append(f"{p:<14} tail mass {c['tail_mass_pct_before']:5.1f}% -> {c['tail_mass_pct_after']:5.1f}%  "
                     f"tail entities {c['tail_entities_before']} -> {c['tail_entities_after']}")
    return "\n".join(lines)
