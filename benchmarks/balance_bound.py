"""Benchmark: how far any synthesis of a run's budget could move a perspective's Gini, at best.

Reads an `adr run` output (its stats dictionary, the rebalanced corpus's entity counts and the
budget) and prints, per perspective with entities, the Gini of the input, of the rebalanced
corpus, and the lowest Gini reachable by adding budget x k occurrences of tail entities and
none of the head (adr.distribution.best_gini: the rarest tail entities raised together, none
past its ceiling), for k = 1..6 tail entities per synthetic record. A synthetic record that
carries one tail entity and some head can only do worse than the k = 1 line.

    python -m benchmarks.balance_bound --run /tmp/bench/run_665298
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from adr.distribution import best_gini, gini
from udfs.artifacts import read_counts, read_dictionary


def bounds(run: Path, per_record=(1, 2, 3, 4, 5, 6)) -> dict:
    manifest = json.loads((run / "stats" / "manifest.json").read_text())
    budget = json.loads((run / "rebalance" / "summary.json").read_text())["budget"]
    perspectives = tuple(manifest["perspectives"])
    before = read_dictionary(str(run / "stats"), perspectives, "count")
    kept = read_counts(str(run / "rebalance" / "entity_counts"), perspectives)
    out = {"budget": budget, "perspectives": {}}
    for p in perspectives:
        if len(before[p]) < 2:
            continue
        tau = manifest["perspectives"][p]["tau"]
        g0, g1 = gini(before[p].values()), gini(kept[p].values())
        out["perspectives"][p] = {"tau": tau, "gini_input": round(g0, 4), "gini_rebalanced": round(g1, 4),
                                  "best": {k: round(best_gini(kept[p], tau, budget * k), 4) for k in per_record}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="an `adr run` output directory")
    r = bounds(Path(ap.parse_args().run))
    print(json.dumps(r))
    print(f"\nbudget {r['budget']:,} synthetic records\n")
    print("| perspective | tau | Gini input | rebalanced | best with k tail entities per record, none head "
          "(k = 1 .. 6) |\n|---|---:|---:|---:|---|")
    for p, b in r["perspectives"].items():
        best = " / ".join(f"{g:.4f} ({g - b['gini_input']:+.4f})" for g in b["best"].values())
        print(f"| {p} | {b['tau']:,} | {b['gini_input']:.4f} | {b['gini_rebalanced']:.4f} | {best} |")


if __name__ == "__main__":
    main()
