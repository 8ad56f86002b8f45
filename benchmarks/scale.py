"""Benchmark: stats and rebalance at N and 4N records: does any process's memory grow with the corpus?

For each size it runs, as a user would, in child processes on this machine:

  * `adr stats --master local[2]`: the launcher (driver), Spark's JVM and its Python workers;
  * `adr rebalance` on Beam's multi-process direct runner (two worker processes): the launcher
    and the Beam workers;

sampling every process's resident memory every 0.2 s (benchmarks.llava_mix.Memory), and reports
each process kind's largest peak, the wall time, and the ratios 4N / N. Targets (issue 12): every
per-worker and launcher peak within 15% between N and 4N; wall time within 4.6x.

    python -m benchmarks.scale --records 166324,665298 [--out /tmp/adr-scale] [--stages rebalance]
                               [--driver-memory 512m]

The corpora are LLaVA-mix-shaped (scripts/make_llava_mix.py, seed 0), generated once and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.llava_mix import Memory

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str], label: str, env: dict | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "ADR_PROGRESS_SECS": "30", **(env or {})}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    memory = Memory(proc.pid)
    output = proc.communicate()[0]
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{label} failed ({proc.returncode}):\n{output[-4000:]}")
    return {"seconds": round(seconds, 1), "memory": memory.stop()}


def measure(corpus: Path, out: Path, stages: tuple[str, ...], driver_memory: str | None = None) -> dict:
    """Run the stages; a stage not asked for reuses the previous run's output and figures.
    `driver_memory` sets the local Spark JVM's heap (driver and executor in one), as
    spark-submit's --driver-memory does; None leaves Spark's default (1g)."""
    previous = json.loads((out / "result.json").read_text()) if (out / "result.json").exists() else {}
    if "stats" in stages or not (out / "stats" / "manifest.json").exists():
        jvm = {"PYSPARK_SUBMIT_ARGS": f"--driver-memory {driver_memory} pyspark-shell"} if driver_memory else {}
        stats = run([sys.executable, "-m", "pipelines.cli", "stats", "--input", str(corpus), "--output",
                     str(out / "stats"), "--master", "local[2]"], "stats", jvm)
    else:
        stats = previous.get("stats")  # None: measured by a run before results were kept
    rebalance = run([sys.executable, "-m", "pipelines.cli", "rebalance", "--input", str(corpus), "--dictionary",
                     str(out / "stats"), "--output", str(out / "rebalance"), "--direct_num_workers", "2",
                     "--direct_running_mode", "multi_processing"], "rebalance")
    summary = json.loads((out / "rebalance" / "summary.json").read_text())
    result = {"stats": stats, "rebalance": rebalance, "kept": summary["kept"], "dropped": summary["dropped"]}
    (out / "result.json").write_text(json.dumps(result))
    return result


def peaks(stage: dict) -> dict[str, int]:
    """Largest peak per process kind, named for what the process is."""
    names = {"driver": "launcher", "jvm": "Spark JVM", "spark_python_worker": "Spark Python worker",
             "tagging_pool_worker": "Beam worker", "other": "Beam worker"}
    out: dict[str, int] = {}
    for kind, v in stage["memory"]["per_kind"].items():
        name = names.get(kind, kind)
        out[name] = max(out.get(name, 0), v["largest_peak_mib"])
    return out


def table(results: list[dict]) -> str:
    small, large = results[0], results[-1]
    lines = ["| stage | process | " + " | ".join(f"{r['records']:,} records" for r in results) + " | ratio |",
             "|---|---|" + "---:|" * (len(results) + 1)]
    for stage in ("stats", "rebalance"):
        if any(r[stage] is None for r in results):
            continue
        kinds = sorted(set().union(*(peaks(r[stage]) for r in results)))
        for kind in kinds:
            values = [peaks(r[stage]).get(kind) for r in results]
            ratio = (values[-1] / values[0]) if values[0] and values[-1] else None
            lines.append(f"| {stage} | {kind} peak | " + " | ".join(f"{v:,} MiB" if v else "-" for v in values)
                         + (f" | {ratio:.2f} |" if ratio else " | - |"))
        walls = [r[stage]["seconds"] for r in results]
        lines.append(f"| {stage} | wall time | " + " | ".join(f"{w:,.1f} s" for w in walls)
                     + f" | {walls[-1] / walls[0]:.2f} |")
    lines.append(f"\nrecords ratio {large['records'] / small['records']:.2f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", default="166324,665298")
    ap.add_argument("--out", default="/tmp/adr-scale")
    ap.add_argument("--corpora", default="/tmp/adr-llava-bench", help="where the generated corpora are kept")
    ap.add_argument("--stages", default="stats,rebalance",
                    help="stages to run; `rebalance` alone reuses the statistics (and their figures) of an earlier run")
    ap.add_argument("--driver-memory", default=None, help="the local Spark JVM's heap, e.g. 512m (default: Spark's 1g)")
    args = ap.parse_args()
    from scripts.make_llava_mix import generate, write

    results = []
    for n in (int(x) for x in args.records.split(",")):
        corpus = Path(args.corpora) / f"llava_mix_{n}.json"
        if not corpus.exists():
            corpus.parent.mkdir(parents=True, exist_ok=True)
            write(corpus, generate(n, seed=0))
        result = {"records": n, "input_mib": round(corpus.stat().st_size / 2 ** 20),
                  **measure(corpus, Path(args.out) / str(n), tuple(args.stages.split(",")), args.driver_memory)}
        results.append(result)
        print(json.dumps(result), flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
