"""Benchmark: a bounded soak of the streaming rebalance, fed files as an operator's upstream would.

One `adr rebalance --streaming` child watches a directory for `--minutes` (plus a margin) and
then finishes by itself. This process feeds it `--files` files spread over the run: slices of
the COCO records the tests use (JSON Lines of varied sizes, records repeating across files) and
a few hostile ones (malformed lines among good ones, an empty file, binary garbage named .jsonl, a file
written in two halves a second apart, a record above --max-record-bytes, a JSON array). Halfway,
it replaces the live dictionary (`adr stats` A) with another one (B, other --tail-share) as an
operator would: B copied beside it, the old renamed away, the new renamed in.

After the job exits it checks (issue 13):

  (a) over the window summaries, kept + dropped + invalid + late == input == the raw elements
      written (known by construction: every non-blank line of a JSON Lines file, every element
      of a JSON array);
  (b) every fed file read once (`watch: reading PATH` in the job's log, once per file);
  (c) both dictionary versions in the windows' `dictionaries`, A before B;
  (d) memory: the child's RSS (largest of its processes, sampled as benchmarks.llava_mix.Memory
      does) after five minutes and at the end of the watch, their ratio (target, issue 23:
      within 20%), and the peak;
  (e) latency: for each file, from when it was written to when the ledger (OUT/_watch/) says
      its records are in the output, polled every second (target: within two windows);

and counts kept/ files per window. Prints a table and writes soak.json under --out.

    python -m benchmarks.soak [--files 100] [--minutes 5] [--out /tmp/adr-soak]

On the local DirectRunner the watch runs as a loop of bounded runs (pipelines/rebalance/
local_watch.py), so each window's files are written while the job runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from benchmarks.llava_mix import Memory

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ADR_SHARED_DATA", ROOT.parent / "shared" / "data"))  # as tests/conftest.py
COCO_CAPTIONS = SHARED / "coco2017" / "captions_val2017.json"
COCO_INSTANCES = SHARED / "coco_tiny" / "annotations" / "instances_val2017.json"
TAIL_SHARE_B = "token=0.5,object=0.5,cooccurrence=0.5,interrogation=0.5"
MAX_RECORD_BYTES = 1 << 20  # adr.records.DEFAULT_MAX_RECORD_BYTES: the job runs with the default
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1"}


# ---- the corpus and the two dictionaries -------------------------------------------------

def coco_corpus(path: Path, images: int) -> Path:
    """LLaVA records of the COCO images the tests use (tests/conftest.py `coco_jsonl`): the 80
    annotated ones and the next by id, `images` in all (about 5 records each). Written once."""
    if path.exists():
        return path
    from adr.coco import coco_records, objects_by_image

    captions = json.loads(COCO_CAPTIONS.read_text())
    objects = objects_by_image(json.loads(COCO_INSTANCES.read_text()))
    rest = sorted(i["id"] for i in captions["images"] if i["id"] not in objects)[:max(0, images - len(objects))]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        for record in coco_records(captions, objects, set(objects) | set(rest)):
            f.write(json.dumps(record) + "\n")
    tmp.rename(path)
    return path


def adr_stats(corpus: Path, out: Path, extra: list[str]) -> dict:
    """`adr stats` as a user runs it; an earlier output of the same input is reused."""
    from udfs.sources import fingerprint

    manifest = out / "manifest.json"
    if manifest.exists() and (json.loads(manifest.read_text()).get("input") or {}).get("fingerprint") == \
            fingerprint([str(corpus)]):
        return json.loads(manifest.read_text())
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "stats", "--input", str(corpus), "--output",
                           str(out), "--master", "local[2]", *extra], env=ENV, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"adr stats failed ({done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
    return json.loads(manifest.read_text())


# ---- the files fed ------------------------------------------------------------------------

def elements(data: bytes) -> int:
    """Raw elements of a file as udfs.sources.read_raw counts them: a JSON array's elements (the
    arrays written here are well formed), else the non-blank lines."""
    if data.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"[":
        return len(json.loads(data))
    return sum(1 for line in data.split(b"\n") if line.strip())


def plan_files(lines: list[str], n: int, rng: random.Random) -> list[tuple[str, bytes, str]]:
    """(name, content, kind) of each file to feed, in order: slices of the corpus (sizes vary
    from 5 to 150 records; consecutive slices, wrapping round, so records repeat across files)
    with the hostile files spread among them. A `slow` file is written in two halves."""
    record = json.loads(lines[0])
    hostile = {
        "malformed": "\n".join(x for pair in zip(lines[:20], ['{"id": "broken", "conversations": [', "not json",
                                                               "{}}", '{"id": 1'] * 5) for x in pair).encode() + b"\n",
        "empty": b"",
        "garbage": b"\x00" + random.Random(13).randbytes(64 * 1024),
        "slow": ("\n".join(lines[100:180]) + "\n").encode(),
        "huge": ("\n".join(lines[200:210]
                           + [json.dumps({**record, "id": "huge", "pad": "x" * (MAX_RECORD_BYTES * 3 // 2)})]
                           + lines[210:220]) + "\n").encode(),
        "array": ("[\n" + ",\n".join(lines[300:360]) + "\n]\n").encode(),
    }
    names = {"malformed": "malformed.jsonl", "empty": "empty.jsonl", "garbage": "garbage.jsonl", "slow": "slow.jsonl",
             "huge": "huge.jsonl", "array": "array.json"}
    slots = {max(1, round(n * (i + 1) / (len(hostile) + 1))): k for i, k in enumerate(hostile)}
    out, start = [], 0
    for i in range(n):
        if i in slots:
            k = slots[i]
            out.append((f"{i:04d}-{names[k]}", hostile[k], k))
            continue
        size = rng.choice((5, 20, 40, 60, 90, 150))
        chunk = [lines[(start + j) % len(lines)] for j in range(size)]
        start += size
        out.append((f"{i:04d}-slice.jsonl", ("\n".join(chunk) + "\n").encode(), "slice"))
    return out


def write(path: Path, data: bytes, slow: bool) -> None:
    if not slow:
        path.write_bytes(data)
        return
    half = len(data) // 2 + 7  # mid-line: a read of the first half alone would show a broken record
    with path.open("wb") as f:
        f.write(data[:half])
        f.flush()
        time.sleep(1.0)
        f.write(data[half:])


def swap_dictionary(live: Path, new: Path) -> None:
    """Replace a live dictionary as an operator would: the new one beside it, then renames."""
    staged = live.with_name(live.name + ".new")
    shutil.copytree(new, staged)
    live.rename(live.with_name(live.name + ".old"))
    staged.rename(live)


# ---- memory over time ----------------------------------------------------------------------

class Timeline(Memory):
    """Memory's peaks, and every sample: (seconds since start, largest process RSS, all processes RSS)."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.samples: list[tuple[float, int, int]] = []
        self.start = time.perf_counter()
        super().__init__(pid, interval)

    def _record(self, rss: dict[int, tuple[str, int]]) -> None:
        rss = {pid: v for pid, v in rss.items() if v[1]}  # 0: exited, not yet reaped
        super()._record(rss)
        if rss:
            self.samples.append((time.perf_counter() - self.start, max(r for _, r in rss.values()),
                                 sum(r for _, r in rss.values())))

    def at(self, seconds: float) -> tuple[float, int, int]:
        """The last sample taken by `seconds` after the start."""
        return [s for s in self.samples if s[0] <= seconds][-1]


# ---- the run --------------------------------------------------------------------------------

def soak(args) -> dict:
    out = Path(args.out).resolve()
    corpus = coco_corpus(out / f"coco_{args.images}.jsonl", args.images)
    lines = corpus.read_text().splitlines()
    manifests = {"A": adr_stats(corpus, out / "stats_a", []),
                 "B": adr_stats(corpus, out / "stats_b", ["--tail-share", TAIL_SHARE_B])}
    perspectives = manifests["A"]["parameters"]["perspectives"]
    tau = {v: {p: m["perspectives"][p]["tau"] for p in perspectives} for v, m in manifests.items()}
    if tau["A"] == tau["B"]:
        raise SystemExit("dictionaries A and B have the same tau: they would decide alike")

    watched, live, job_out = out / "watched", out / "live_stats", out / "rebalance"
    for path in (watched, job_out, live, live.with_name(live.name + ".new"), live.with_name(live.name + ".old")):
        shutil.rmtree(path, ignore_errors=True)
    watched.mkdir()
    shutil.copytree(out / "stats_a", live)
    files = plan_files(lines, args.files, random.Random(args.seed))
    feed_secs = args.minutes * 60
    every = feed_secs / args.files
    cmd = [sys.executable, "-m", "pipelines.cli", "rebalance", "--streaming", "--input", str(watched),
           "--dictionary", str(live), "--output", str(job_out), "--window-secs", "10", "--watch-interval-secs", "1",
           "--settle-secs", "2", "--dictionary-refresh-secs", "5",
           "--watch-for-secs", str(feed_secs + args.margin_secs)]
    log_lines: list[tuple[float, str]] = []
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    memory = Timeline(proc.pid)

    def read_log():
        for line in proc.stdout:
            log_lines.append((time.perf_counter() - start, line))

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    committed_at: dict[str, float] = {}
    watching = threading.Event()

    def poll_ledger():  # when each file's records are in the output, as the job says
        from pipelines.rebalance.ledger import Ledger

        ledger = Ledger(str(job_out / "_watch"))
        while not watching.wait(1.0):
            try:
                for path in ledger.committed():
                    committed_at.setdefault(path, time.perf_counter() - start)
            except (OSError, ValueError):
                pass  # a commit being written

    poller = threading.Thread(target=poll_ledger, daemon=True)
    poller.start()
    written: list[dict] = []
    swapped_at = None
    try:
        for i, (name, data, what) in enumerate(files):
            due = start + i * every
            if swapped_at is None and due - start >= feed_secs / 2:
                time.sleep(max(0.0, due - time.perf_counter() - every / 2))
                swap_dictionary(live, out / "stats_b")
                swapped_at = time.perf_counter() - start
            time.sleep(max(0.0, due - time.perf_counter()))
            if proc.poll() is not None:
                break
            write(watched / name, data, what == "slow")
            written.append({"path": str(watched / name), "kind": what, "bytes": len(data), "elements": elements(data),
                            "at_s": round(time.perf_counter() - start, 1)})
        code = proc.wait(timeout=feed_secs + args.margin_secs + args.finish_secs)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
        watching.set()
        poller.join(timeout=10)
        memory.stop()
    for f in written:
        f["committed_s"] = round(committed_at[f["path"]], 1) if f["path"] in committed_at else None
    wall = time.perf_counter() - start
    log_text = "".join(line for _, line in log_lines)
    (out / "job.log").write_text(log_text)
    if code:
        raise SystemExit(f"the streaming job failed ({code}):\n{log_text[-4000:]}")
    return check(out, job_out, written, tau, memory, log_lines, wall, swapped_at, args)


def check(out: Path, job_out: Path, written: list[dict], tau: dict, memory: Timeline, log_lines, wall: float,
          swapped_at: float | None, args) -> dict:
    from udfs.sources import read_raw

    # What was written, counted by construction and by the reader itself (they must agree).
    by_reader = sum(b.num_rows for f in written for b in read_raw(f["path"]))
    written_elements = sum(f["elements"] for f in written)
    windows = [json.loads(p.read_text()) for p in sorted((job_out / "summary").glob("window-*.json"))]
    total = {k: sum(w[k] for w in windows) for k in ("input", "kept", "dropped", "invalid", "late")}
    invalid_by_reason = sum((Counter(w["invalid_by_reason"]) for w in windows), Counter())
    accounted = total["kept"] + total["dropped"] + total["invalid"] + total["late"]

    reads = Counter(m.group(1) for _, line in log_lines for m in [re.search(r"watch: reading (\S+)", line)] if m)
    fed = {f["path"] for f in written}
    read_once = all(reads[p] == 1 for p in fed) and set(reads) <= fed

    # Dictionary versions by window, in window order.
    name_of = {json.dumps(t, sort_keys=True): v for v, t in tau.items()}
    per_version: Counter = Counter()
    windows_of: dict[str, list[int]] = {"A": [], "B": []}
    for i, w in enumerate(windows):
        for d in w["dictionaries"]:
            v = name_of.get(json.dumps(d["tau"], sort_keys=True), "other")
            per_version[v] += d["records"]
            windows_of.setdefault(v, []).append(i)
    a_before_b = bool(windows_of["A"] and windows_of["B"]) and max(windows_of["A"]) <= min(windows_of["B"])

    # Files per window: kept/ names carry the window's start (window-<start>-pane-...).
    spans = Counter(f.name.split("-")[1] for f in (job_out / "kept").glob("window-*") if f.is_file())
    delays = sorted(f["committed_s"] - f["at_s"] for f in written if f["committed_s"] is not None)

    mib = 2 ** 20
    reading = [t for t, line in log_lines if "watch: reading" in line]
    # The watch ends --watch-for-secs after the job read its flags, a little after the launch:
    # this is a moment just before it, when everything fed has been read and decided.
    watch_end = min(memory.samples[-1][0], args.minutes * 60 + args.margin_secs)
    one = memory.at(300.0 if watch_end > 600 else 60.0)
    end = memory.at(watch_end)
    final = memory.samples[-1]
    peak = max(memory.samples, key=lambda s: s[1])
    # Growth while fed (first minute to end of watch): a least-squares slope of the largest RSS.
    span = [(t, r) for t, r, _ in memory.samples if one[0] <= t <= watch_end]
    n = len(span)
    mean_t, mean_r = sum(t for t, _ in span) / n, sum(r for _, r in span) / n
    slope = sum((t - mean_t) * (r - mean_r) for t, r in span) / max(1e-9, sum((t - mean_t) ** 2 for t, _ in span))
    result = {
        "command": f"python -m benchmarks.soak --files {args.files} --minutes {args.minutes} --out {args.out}",
        "files": len(written), "files_by_kind": dict(Counter(f["kind"] for f in written)),
        "elements_written": written_elements, "elements_by_reader": by_reader,
        "totals": total, "accounted": accounted, "invalid_by_reason": dict(invalid_by_reason),
        "a_totals_match": total["input"] == accounted == written_elements == by_reader,
        "reads": {"files_fed": len(fed), "files_read": len(reads),
                  "read_twice": sorted(p for p, c in reads.items() if c > 1),
                  "never_read": sorted(fed - set(reads)), "unknown": sorted(set(reads) - fed)},
        "b_each_file_once": read_once and total["input"] == written_elements,
        "dictionaries": {"tau": tau, "records_by_version": dict(per_version),
                         "windows_by_version": windows_of, "swapped_at_s": round(swapped_at or 0, 1)},
        "c_a_before_b": a_before_b and set(per_version) == {"A", "B"},
        "windows": len(windows), "window_secs": 10,
        "kept_files_per_window": {"windows_with_files": len(spans), "files": sum(spans.values()),
                                  "max": max(spans.values(), default=0),
                                  "distribution": dict(Counter(spans.values()))},
        "memory": {"largest_process_rss_mib": {"reference": round(one[1] / mib), "end_of_watch": round(end[1] / mib),
                                               "at_exit": round(final[1] / mib), "peak": round(peak[1] / mib),
                                               "peak_at_s": round(peak[0], 1)},
                   "all_processes_rss_mib": {"reference": round(one[2] / mib), "end_of_watch": round(end[2] / mib)},
                   "ratio_end_of_watch_to_reference": round(end[1] / one[1], 3),
                   "growth_mib_per_min_while_fed": round(slope * 60 / mib, 2),
                   "end_of_watch_s": round(watch_end, 1), "processes": memory.stop()["per_kind"],
                   "timeline": [(round(t), round(r / mib)) for t, r, _ in memory.samples[::25]]},
        "d_memory_within_20pct": end[1] / one[1] <= 1.20,
        "memory_reference_s": round(one[0], 1),
        "latency_s": {"files_committed": len(delays), "median": delays[len(delays) // 2] if delays else None,
                      "max": delays[-1] if delays else None, "limit_two_windows": 20},
        "e_within_two_windows": len(delays) == len(written) and bool(delays) and delays[-1] <= 20,
        "wall_s": round(wall, 1), "first_read_s": round(reading[0], 1) if reading else None,
        "windows_written_s": round(wall - watch_end, 1),
    }
    (out / "soak.json").write_text(json.dumps(result, indent=2))
    return result


def table(r: dict) -> str:
    m, t, d = r["memory"]["largest_process_rss_mib"], r["totals"], r["dictionaries"]
    ok = {True: "met", False: "**not met**"}
    rows = [
        ("files fed / read", f"{r['files']} / {r['reads']['files_read']} "
                             f"(twice: {len(r['reads']['read_twice'])}, never: {len(r['reads']['never_read'])})"),
        ("raw elements written (by construction / by the reader)",
         f"{r['elements_written']:,} / {r['elements_by_reader']:,}"),
        ("input / kept / dropped / invalid / late", f"{t['input']:,} / {t['kept']:,} / {t['dropped']:,} / "
                                                    f"{t['invalid']:,} / {t['late']:,}"),
        ("invalid by reason", ", ".join(f"{k} {v}" for k, v in sorted(r["invalid_by_reason"].items()))),
        ("records by dictionary (A, B)",
         f"{d['records_by_version'].get('A', 0):,}, {d['records_by_version'].get('B', 0):,}"
                                         f" (swapped at {d['swapped_at_s']} s)"),
        ("windows (10 s) / with kept files / kept files / max per window",
         f"{r['windows']} / {r['kept_files_per_window']['windows_with_files']} / "
         f"{r['kept_files_per_window']['files']} / {r['kept_files_per_window']['max']}"),
        (f"largest process RSS: at {r['memory_reference_s']:.0f} s / end of watch / at exit / peak",
         f"{m['reference']} / {m['end_of_watch']} / {m['at_exit']} / {m['peak']} MiB"),
        ("RSS ratio end of watch / reference", f"{r['memory']['ratio_end_of_watch_to_reference']:.3f} "
                                               f"({r['memory']['growth_mib_per_min_while_fed']} MiB/min while fed)"),
        ("file written -> its records committed: median / max", f"{r['latency_s']['median']} / "
                                                                 f"{r['latency_s']['max']} s"),
        ("wall time (windows written after the watch)", f"{r['wall_s']} s ({r['windows_written_s']} s)"),
        ("(a) kept+dropped+invalid+late == input == written", ok[r["a_totals_match"]]),
        ("(b) every file read once", ok[r["b_each_file_once"]]),
        ("(c) both dictionaries, A before B", ok[r["c_a_before_b"]]),
        ("(d) RSS within 20% from the reference to end of watch", ok[r["d_memory_within_20pct"]]),
        ("(e) every file in the output within two windows (20 s)", ok[r["e_within_two_windows"]]),
    ]
    return "\n".join(["| figure | value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--out", default="/tmp/adr-soak")
    ap.add_argument("--images", type=int, default=600, help="COCO images of the corpus (~5 records each)")
    ap.add_argument("--seed", type=int, default=0, help="file sizes")
    ap.add_argument("--margin-secs", type=float, default=45.0, help="watch this long after the last file")
    ap.add_argument("--finish-secs", type=float, default=600.0, help="then give the windows this long to be written")
    args = ap.parse_args()
    if args.files < 10:
        ap.error("--files: at least 10 (six of them are hostile)")
    result = soak(args)
    print(json.dumps({k: v for k, v in result.items() if k != "memory"}, indent=1))
    print(table(result))


if __name__ == "__main__":
    main()
