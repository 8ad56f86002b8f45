"""Benchmark: `adr run` end to end on a corpus of LLaVA-1.5 mix665k's shape, at several scales.

For each scale (a fraction of 665,298 records) it generates the one-line JSON array with
scripts/make_llava_mix.py (not timed), runs `adr run` in a child process exactly as a user would
(local[2] Spark, DirectRunner, no models: synonym synthesis fills the budget), and records

  * wall time per stage (from the time each stage's first line reaches stderr),
  * records/s end to end and the cost per record (ms) at each scale,
  * peak resident memory of every process of the run: the driver (the `adr` Python process),
    Spark's JVM, Spark's Python workers and any other child; each process's own peak and the
    peak of all of them together (sampled every 0.2 s),
  * whether any process's peak exceeded the input file's size (no process may hold the whole file).

    python -m benchmarks.llava_mix --scales 0.125,0.25,0.5,1 [--out /tmp/adr-llava-bench]

Prints one JSON object per scale and a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
FULL = 665_298
STAGES = ("stats", "rebalance", "synthesize", "report")


def kind(proc: psutil.Process, root_pid: int) -> str:
    if proc.pid == root_pid:
        return "driver"
    if "java" in proc.name():
        return "jvm"
    if any("java" in p.name() for p in proc.parents()):
        return "spark_python_worker"
    if "multiprocessing" in " ".join(proc.cmdline()):
        return "tagging_pool_worker"
    return "other"


class Memory:
    """Per-process and whole-tree peak RSS of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.root_pid = pid
        self.per_process: dict[int, tuple[str, int]] = {}
        self.total_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float):
        root = psutil.Process(self.root_pid)
        while not self._stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            self._record(self._read(procs))
            time.sleep(interval)

    def _read(self, procs) -> dict[int, tuple[str, int]]:
        """pid -> (kind, RSS) of the processes still readable."""
        out = {}
        for proc in procs:
            try:
                rss = proc.memory_info().rss
                out[proc.pid] = (kind(proc, self.root_pid), rss)
            except psutil.Error:
                continue
        return out

    def _record(self, rss: dict[int, tuple[str, int]]) -> None:
        """One sample: each process's peak and the whole tree's."""
        for pid, (label, r) in rss.items():
            self.per_process[pid] = (label, max(self.per_process.get(pid, (label, 0))[1], r))
        self.total_peak = max(self.total_peak, sum(r for _, r in rss.values()))

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        by_kind: dict[str, list[int]] = {}
        for label, peak in self.per_process.values():
            by_kind.setdefault(label, []).append(peak)
        mib = 2 ** 20
        return {"all_processes_peak_mib": round(self.total_peak / mib),
                "largest_process_peak_mib": round(max(p for _, p in self.per_process.values()) / mib),
                "per_kind": {k: {"processes": len(v), "largest_peak_mib": round(max(v) / mib)}
                             for k, v in sorted(by_kind.items())}}


def run_adr(corpus: Path, out: Path, master: str, extra: list[str], command: str = "run",
            progress_secs: float = 10) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "ADR_PROGRESS_SECS": str(progress_secs)}
    cmd = [sys.executable, "-m", "pipelines.cli", command, "--input", str(corpus), "--output", str(out),
           "--master", master, *(["--force"] if command == "run" else []), *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = Memory(proc.pid)
    marks: dict[str, float] = {}
    progress_changes: list[tuple[float, str]] = []
    tail: list[str] = []

    def read_stdout():
        for line in proc.stdout:
            tail.append(line)

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    for line in proc.stderr:
        now = time.perf_counter() - start
        tail.append(line)
        m = re.match(r"(\w+): running", line)
        if m:
            marks[m.group(1)] = now
        if command == "stats" and not marks:
            marks["stats"] = 0.0
        m = re.search(r"stats: tagging: ([\d,]+) records", line)
        if m and (not progress_changes or progress_changes[-1][1] != m.group(1)):
            progress_changes.append((now, m.group(1)))
    proc.wait()
    reader.join()
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"adr run failed ({proc.returncode}):\n{''.join(tail[-40:])}")
    order = [s for s in STAGES if s in marks]
    ends = [marks[s] for s in order[1:]] + [seconds]
    stage_seconds = {s: round(end - marks[s], 1) for s, end in zip(order, ends)}
    gaps = [b - a for (a, _), (b, _) in zip(progress_changes, progress_changes[1:])]
    return {"seconds": round(seconds, 1), "stage_seconds": stage_seconds, "memory": memory.stop(),
            "stats_progress_changes": len(progress_changes),
            "stats_longest_progress_gap_s": round(max(gaps), 1) if gaps else None}


def known_wrong_pairs(judged: Path = ROOT / "benchmarks" / "judged_swaps.jsonl") -> set[tuple[str, str]]:
    """(noun, synonym) pairs judged wrong by reading, in any context."""
    rows = [json.loads(line) for line in judged.read_text().splitlines() if line.strip()]
    return {(r["noun"], r["synonym"]) for r in rows if r["verdict"] == "wrong"}


def synthesis_figures(run: Path) -> dict:
    """What synthesis did to the balance (the report's balance.json) and how it got there
    (synthesize/summary.json, the synthetic records' replacements)."""
    balance = json.loads((run / "report" / "balance.json").read_text())
    summary = json.loads((run / "synthesize" / "summary.json").read_text())
    wrong = known_wrong_pairs()
    replacements = known = 0
    for part in sorted((run / "synthesize" / "synthetic").glob("*.jsonl")):
        for line in part.open():
            for r in json.loads(line)["adr"]["parameters"].get("replacements", ()):
                replacements += 1
                known += (r["noun"], r["synonym"]) in wrong
    tried = summary.get("offers_tried", 0)
    out = {"budget": summary["budget"], "synthetic": summary["synthetic"], "budget_met": summary["budget_met"],
           "offers_tried": tried, "offers_failed_pct": round(100 * summary.get("offers_failed", 0) / tried, 2)
           if tried else None, "replacements": replacements,
           "known_wrong_pct": round(100 * known / replacements, 3) if replacements else None,
           "planned_entities": summary.get("planned_entities"), "met_entities": summary.get("met_entities")}
    for p, f in balance.items():
        b, a, lift = f["before"], f["after"], f["synthesis"]
        out[p] = {"gini": [round(b["gini"], 4), round(a["gini"], 4)],
                  "entropy": [round(b["entropy"], 4), round(a["entropy"], 4)],
                  "tail_occurrences_pct": [round(b["tail_occurrences_pct"], 2), round(a["tail_occurrences_pct"], 2)],
                  "added": lift["added"], "tail_added_pct": round(lift["tail_added_pct"], 1),
                  "lifted": lift["lifted"], "lift_mean": round(lift["lift_mean"], 2),
                  "highest": [lift["highest"], lift["highest_count"], lift["ceiling"]],
                  "past_ceiling": lift["past_ceiling"], "verdict": f["verdict"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="0.125,0.25,0.5,1")
    ap.add_argument("--out", default="/tmp/adr-llava-bench")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--command", default="run", choices=("run", "stats"),
                    help="stats: the statistics stage alone (e.g. with -- --partitions 4, the old 2 x cores)")
    ap.add_argument("--progress-secs", type=float, default=2,
                    help="progress line interval: the resolution of the longest-gap figure (users see 10 s)")
    ap.add_argument("extra", nargs="*", help="more `adr run` options, after --")
    args = ap.parse_args()
    from scripts.make_llava_mix import generate, write

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for scale in (float(s) for s in args.scales.split(",")):
        n = round(FULL * scale)
        corpus = out / f"llava_mix_{n}.json"
        if not corpus.exists():
            write(corpus, generate(n, seed=args.seed))
        size = corpus.stat().st_size
        result = {"scale": scale, "records": n, "input_mib": round(size / 2 ** 20), "master": args.master,
                  "command": args.command, "extra": args.extra, "progress_secs": args.progress_secs,
                  **run_adr(corpus, out / f"{args.command}_{n}", args.master, args.extra, args.command,
                            args.progress_secs)}
        result["records_per_s"] = round(n / result["seconds"], 1)
        result["ms_per_record"] = round(1000 * result["seconds"] / n, 3)
        result["no_process_held_the_file"] = result["memory"]["largest_process_peak_mib"] * 2 ** 20 < size
        if args.command == "run":
            result["synthesis"] = synthesis_figures(out / f"{args.command}_{n}")
        results.append(result)
        print(json.dumps(result), flush=True)
    print("\n| scale | records | input | adr run | records/s | ms/record | stats | rebalance | synthesize | report "
          "| all processes peak | largest process | longest progress gap |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        s = r["stage_seconds"]
        print(f"| {r['scale']} | {r['records']:,} | {r['input_mib']} MiB | {r['seconds']} s | {r['records_per_s']} "
              f"| {r['ms_per_record']} | {s.get('stats')} s | {s.get('rebalance')} s | {s.get('synthesize')} s "
              f"| {s.get('report')} s | {r['memory']['all_processes_peak_mib']} MiB "
              f"| {r['memory']['largest_process_peak_mib']} MiB | {r['stats_longest_progress_gap_s']} s |")
    synthesis = [r for r in results if "synthesis" in r]
    if synthesis:
        print("\n| records | perspective | Gini | normalised entropy | tail share of occurrences | added "
              "| to the tail | tail entities lifted | highest lifted (count / ceiling) | past ceiling | verdict |")
        print("|---:|---|---|---|---|---:|---:|---:|---|---:|---|")
    for r in synthesis:
        for p, f in r["synthesis"].items():
            if isinstance(f, dict):
                h = f["highest"]
                print(f"| {r['records']:,} | {p} | {f['gini'][0]} -> {f['gini'][1]} | {f['entropy'][0]} -> "
                      f"{f['entropy'][1]} | {f['tail_occurrences_pct'][0]}% -> {f['tail_occurrences_pct'][1]}% "
                      f"| {f['added']:,} | {f['tail_added_pct']}% | {f['lifted']:,} | {h[0]} {h[1] or 0:,} / {h[2]:,} "
                      f"| {f['past_ceiling']} | {f['verdict']} |")
        s = r["synthesis"]
        print(f"\n{r['records']:,} records: synthetic {s['synthetic']:,} of budget {s['budget']:,}; offers tried "
              f"{s['offers_tried']:,}, failed {s['offers_failed_pct']}%; {s['replacements']:,} replacements, "
              f"{s['known_wrong_pct']}% on the known-wrong list")


if __name__ == "__main__":
    main()
