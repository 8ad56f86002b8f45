"""Benchmark: `adr stats` on local Spark against the same work in one plain Python process.

Builds a corpus of >= --records LLaVA records from the official COCO val2017 captions (copies
with suffixed ids, in 8 JSON Lines shards), then in one run times
  * the single-process pass (pipelines.local_stats: same readers, udfs and counting), and
  * the Spark job on local[2],
and samples the resident memory of the driver (Python + JVM) and of the Python workers.
Run twice with different corpus sizes to see that driver memory does not grow with the corpus.

    python benchmarks/stats.py --records 200000 [--out /tmp/adr-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
COCO = ROOT.parent / "shared" / "data" / "coco2017" / "captions_val2017.json"


def build_corpus(out: Path, records: int, shards: int = 8) -> list[str]:
    from adr.coco import coco_records

    base = list(coco_records(json.loads(COCO.read_text())))
    copies = -(-records // len(base))
    out.mkdir(parents=True, exist_ok=True)
    files = [out / f"part-{i:05d}.jsonl" for i in range(shards)]
    handles = [f.open("w") for f in files]
    n = 0
    for copy in range(copies):
        for record in base:
            handles[n % shards].write(json.dumps({**record, "id": f"{record['id']}-c{copy}"}) + "\n")
            n += 1
    for h in handles:
        h.close()
    return [str(f) for f in files]


class Peaks:
    """Samples RSS of a process tree: the driver (Python, and the JVM under it) and Spark's workers."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.peak = {"driver_python": 0, "driver_jvm": 0, "workers": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                sizes = {"driver_python": self.root.memory_info().rss, "driver_jvm": 0, "workers": 0}
                for child in self.root.children(recursive=True):
                    rss = child.memory_info().rss
                    sizes["driver_jvm" if "java" in child.name() else "workers"] += rss
                for k, v in sizes.items():
                    self.peak[k] = max(self.peak[k], v)
            except psutil.Error:
                pass
            time.sleep(0.25)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return {k: round(v / 2**20) for k, v in self.peak.items()}


def timed(code: str) -> tuple[float, dict, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    peaks = Peaks(proc.pid)
    out, _ = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"benchmark step failed ({proc.returncode}): {code}")
    return seconds, peaks.stop(), out.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--out", default="/tmp/adr-bench")
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    out = Path(args.out)
    files = build_corpus(out / f"corpus-{args.records}", args.records)

    plain_s, plain_mem, plain_out = timed(
        "from pipelines.stats.local import local_stats; from adr.entities.registry import ALL\n"
        f"c, _, inv, lines = local_stats({files!r}, ALL, keep_entities=False)\n"
        "print(c.records, lines, {k: len(v) for k, v in c.counts.items()})")
    spark_s, spark_mem, spark_out = timed(
        "from pipelines.stats.job import run\n"
        f"m = run(['--input', *{files!r}, '--output', {str(out / 'stats')!r}, '--master', {args.master!r}])\n"
        "print(m['records'], m['elements_read'], {k: v['entities'] for k, v in m['perspectives'].items()})")
    records = int(plain_out.split()[0])
    assert plain_out == spark_out, (plain_out, spark_out)
    result = {
        "records": records, "master": args.master, "cores": os.cpu_count(),
        "plain_seconds": round(plain_s, 1), "plain_records_per_s": round(records / plain_s),
        "spark_seconds": round(spark_s, 1), "spark_records_per_s": round(records / spark_s),
        "speedup": round(plain_s / spark_s, 2),
        "plain_peak_mb": plain_mem["driver_python"], "spark_peak_mb": spark_mem,
        "same_counts": plain_out == spark_out,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
