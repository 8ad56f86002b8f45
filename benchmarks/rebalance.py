"""Benchmark: the Beam rebalancing pipeline against a plain Python loop of the same rule.

On a corpus of >= --records COCO-caption records with entities precomputed by `adr stats`
(run first if --stats has none), times in one run:
  * the plain loop: read lines, look each record's entities up, adr.sampling.decide, write
    kept/dropped JSON Lines;
  * `adr rebalance` on the DirectRunner, and on the multi-process direct runner (2 workers).

    python benchmarks/rebalance.py --records 200000 [--out /tmp/adr-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stats import build_corpus  # noqa: E402

PLAIN = """
import json, sys, time
import pyarrow.parquet as pq
from adr.sampling import decide
from udfs.artifacts import read_dictionary
from udfs.sources import expand_inputs
stats, corpus, out = sys.argv[1:4]
manifest = json.load(open(stats + "/manifest.json"))
perspectives = tuple(manifest["parameters"]["perspectives"])
probs = read_dictionary(stats, perspectives, "p")
table = pq.read_table(stats + "/entities")
entities = {row.pop("id"): row for row in table.to_pylist()}
kept = dropped = 0
with open(out + "/kept.jsonl", "w") as k, open(out + "/dropped.jsonl", "w") as d:
    for path in expand_inputs(corpus):
        with open(path) as f:
            for line in f:
                rid = str(json.loads(line)["id"])
                keep, reason = decide(42, rid, entities[rid], probs)
                if keep:
                    k.write(line); kept += 1
                else:
                    d.write(json.dumps({"id": rid, "reason": reason}) + "\\n"); dropped += 1
print(kept, dropped)
"""


def timed(cmd: list[str]) -> tuple[float, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--out", default="/tmp/adr-bench")
    args = ap.parse_args()
    out = Path(args.out)
    corpus = out / f"corpus-{args.records}"
    if not corpus.exists():
        build_corpus(corpus, args.records)
    stats = out / "stats"
    if not (stats / "manifest.json").exists():
        timed([sys.executable, "-m", "pipelines.cli", "stats", "--input", str(corpus), "--output", str(stats),
               "--master", "local[2]"])
    records = json.loads((stats / "manifest.json").read_text())["records"]

    plain_dir = out / "plain"
    plain_dir.mkdir(exist_ok=True)
    plain_s, plain_out = timed([sys.executable, "-c", PLAIN, str(stats), str(corpus), str(plain_dir)])
    kept = int(plain_out.split()[0])
    result = {"records": records, "plain_seconds": round(plain_s, 1), "plain_records_per_s": round(records / plain_s)}
    runs = {"direct": [], "multi_process_2": ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]}
    for name, flags in runs.items():
        seconds, _ = timed([sys.executable, "-m", "pipelines.cli", "rebalance", "--input", str(corpus),
                            "--dictionary", str(stats), "--output", str(out / f"rebalance-{name}"), *flags])
        summary = json.loads((out / f"rebalance-{name}" / "summary.json").read_text())
        assert summary["kept"] == kept, (name, summary["kept"], kept)
        result.update({f"{name}_seconds": round(seconds, 1), f"{name}_records_per_s": round(records / seconds),
                       f"{name}_over_plain": round(seconds / plain_s, 2)})
    result["kept"] = kept
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
