"""`adr stats` on a real Spark standalone cluster, submitted as a user submits it.

A master and two one-core workers are started on 127.0.0.1 with the installed PySpark's `spark-class`;
deploy/spark/pack-env.sh packs the project into a virtualenv archive; deploy/spark/submit-stats.sh
submits the job to `spark://127.0.0.1:PORT` with that archive (`--archives`, the executors' Python
unpacked beside them). The outputs must equal a `local[2]` run of the same input. The cluster is
stopped by its process groups whatever the outcome.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pyspark
import pytest

from pipelines.stage import execute
from pipelines.stats import job as spark_stats
from tests.conftest import NLP_ARGS, write_bad_corpus

ROOT = Path(__file__).resolve().parents[1]
SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"
VENV_BIN = Path(sys.executable).parent  # spark-submit and venv-pack, as a user's PATH has them
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def master_state(ui_port: int) -> dict | None:
    """The master's own JSON status page, or None while it does not answer."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    try:
        with opener.open(f"http://{LOOPBACK}:{ui_port}/json/", timeout=5) as page:
            return json.load(page)
    except OSError:
        return None


def wait_for(what: str, condition, logs: list[Path], timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists())
    raise AssertionError(f"{what} within {timeout:.0f} s\n{tails}")


def stop(proc: subprocess.Popen):
    """Stop what we started by its process group (its id is the process's): the daemon, and any
    executor JVM and Python worker it started."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:  # the daemon is gone; sweep anything of its group left behind
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        break


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone master and two workers (1 core, 2 GB each) on 127.0.0.1, all state in tmp."""
    base = tmp_path_factory.mktemp("spark-standalone")
    env = {**os.environ, "SPARK_LOCAL_IP": LOOPBACK, "SPARK_WORKER_DIR": str(base / "work"),
           "SPARK_LOG_DIR": str(base / "logs"), "SPARK_PID_DIR": str(base / "pids")}
    started: list[subprocess.Popen] = []
    logs: list[Path] = []

    def start(name: str, *args: str):
        log = base / f"{name}.log"
        logs.append(log)
        with log.open("wb") as out:
            started.append(subprocess.Popen([str(SPARK_CLASS), *args], stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env, cwd=base, start_new_session=True))

    port, ui = free_port(), free_port()
    url = f"spark://{LOOPBACK}:{port}"
    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", LOOPBACK, "--port", str(port),
              "--webui-port", str(ui))
        wait_for("the master did not answer", lambda: master_state(ui) is not None, logs, 90)
        work_dirs = []
        for i in (1, 2):
            work_dirs.append(base / f"work{i}")
            start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", url, "--host", LOOPBACK,
                  "--port", str(free_port()), "--webui-port", str(free_port()), "--cores", "1", "--memory", "2g",
                  "--work-dir", str(work_dirs[-1]))
        wait_for("two workers did not register", lambda: (master_state(ui) or {}).get("aliveworkers") == 2, logs, 90)
        yield {"url": url, "ui": ui, "work_dirs": work_dirs, "logs": logs}
    finally:
        for proc in reversed(started):
            stop(proc)
        for unpacked in base.glob("work*/*/*/adr-env"):  # ~650 MB each; the logs beside them stay
            shutil.rmtree(unpacked, ignore_errors=True)
    assert all(p.returncode is not None for p in started)


@pytest.fixture(scope="session")
def packing(tmp_path_factory):
    """deploy/spark/pack-env.sh as the README runs it, with the Python the nodes (here: this machine)
    have. Started first (session scope: before the session's COCO records and local Spark) and
    awaited only when the job is submitted, so its downloads and compression overlap the cluster's
    start and the local run; killed if never awaited."""
    tmp = tmp_path_factory.mktemp("pack-env")
    out, log = tmp / "adr-env.tar.gz", tmp / "pack-env.log"
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
           "PYTHON": getattr(sys, "_base_executable", sys.executable), "ADR_WHEEL_DIR": str(tmp / "dist")}
    with log.open("wb") as sink:
        proc = subprocess.Popen(["bash", str(ROOT / "deploy" / "spark" / "pack-env.sh"), str(out)], cwd=tmp, env=env,
                                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def result() -> Path:
        try:
            proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"pack-env.sh ran over 600 s\n{log.read_text(errors='replace')[-5000:]}") from None
        assert proc.returncode == 0, log.read_text(errors="replace")[-6000:]
        assert out.stat().st_size > 0 and list((tmp / "dist").glob("adr_refine-*.whl"))
        return out

    try:
        yield result
    finally:
        stop(proc)
        out.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def corpus(coco_jsonl, tmp_path_factory):
    """A directory of two inputs: every fourth COCO record (~375), and a file with an exact copy and
    a bad line of each kind (so invalid/ and the keys of byte-identical records are compared too)."""
    folder = tmp_path_factory.mktemp("cluster-corpus")
    lines = coco_jsonl.read_text().splitlines()[::4]
    assert sum('"objects"' in line for line in lines) > 50  # object and co-occurrence entities too
    (folder / "coco.jsonl").write_text("\n".join(lines) + "\n")
    write_bad_corpus(folder / "bad.jsonl", lines[:40])
    return folder


class PythonWorkers(threading.Thread):
    """Every PySpark worker process that runs inside `root` while the job runs: (its executable as
    started, its working directory). Proves which Python the executors ran."""

    def __init__(self, root: Path):
        super().__init__(daemon=True)
        self.root, self.seen, self.done = str(root), set(), threading.Event()

    def run(self):
        while not self.done.wait(0.5):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    cwd = os.readlink(f"/proc/{pid}/cwd")
                except OSError:
                    continue
                if cwd.startswith(self.root) and any(b"pyspark.daemon" in c or b"pyspark.worker" in c for c in cmd):
                    self.seen.add((cmd[0].decode(), cwd))


def executor_logs(work_dirs: list[Path]) -> str:
    """The tail of every executor's stderr, for a failure message."""
    return "".join(f"\n--- {log}\n{log.read_text(errors='replace')[-3000:]}"
                   for work in work_dirs for log in sorted(work.glob("*/*/stderr")))


def sorted_rows(path: Path, key) -> list[dict]:
    return sorted(pq.read_table(path).to_pylist(), key=key)


@pytest.mark.slow
def test_stats_submitted_to_a_standalone_cluster_equal_a_local_run(packing, cluster, corpus, spark, tmp_path):
    args = ["--input", str(corpus), "--reverse-index", *NLP_ARGS]
    local = tmp_path / "local"
    expected = execute(spark_stats.STAGE, [*args, "--output", str(local)], spark)[1]
    assert spark.sparkContext.master == "local[2]"

    packed_env = packing()
    # As a user runs it: the venv's spark-submit on PATH, the packed env, the driver's Python here;
    # no PYSPARK_* variables of this session, so only what the script sets chooses the interpreters.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "ADR_", "SPARK_"))}
    env.update(PATH=f"{VENV_BIN}:{env['PATH']}", SPARK_LOCAL_IP=LOOPBACK, ADR_MASTER=cluster["url"],
               ADR_ENV=str(packed_env), ADR_DRIVER_PYTHON=sys.executable)
    workers = PythonWorkers(Path(cluster["work_dirs"][0]).parent)
    workers.start()
    try:
        proc = subprocess.run(["bash", str(ROOT / "deploy" / "spark" / "submit-stats.sh"),
                               # spark-submit options: a small corpus needs no 200 shuffle partitions
                               "--executor-memory", "1g", "--conf", "spark.sql.shuffle.partitions=4",
                               "--conf", "spark.ui.enabled=false", "--",
                               *args, "--output", "stats"],  # relative: resolved by the driver, here
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    finally:
        workers.done.set()
        workers.join()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:] + executor_logs(cluster["work_dirs"])
    assert "outputs:" in proc.stdout
    out = tmp_path / "stats"
    got = json.loads((out / "manifest.json").read_text())

    # It ran on the cluster, on both workers, with the packed env's Python.
    assert got["engine"]["master"] == cluster["url"]
    wait_for("the application did not end on the master",
             lambda: (master_state(cluster["ui"]) or {}).get("completedapps"), cluster["logs"], 30)
    apps = master_state(cluster["ui"])["completedapps"]
    assert [a["name"] for a in apps] == ["adr-stats"], apps
    for work in cluster["work_dirs"]:
        [app] = list(work.iterdir())
        [executor] = [d for d in app.iterdir() if d.is_dir()]
        assert (executor / "adr-env" / "bin" / "python").exists(), f"the env was not unpacked in {executor}"
    assert workers.seen, "no PySpark worker ran in the workers' directories"
    assert {exe for exe, _ in workers.seen} == {"./adr-env/bin/python"}, workers.seen
    assert len({cwd for _, cwd in workers.seen}) == 2, workers.seen  # both executors ran Python tasks

    # The same outputs as local[2].
    by_entity = lambda r: (r["perspective"], r["entity"])  # noqa: E731
    assert sorted_rows(out / "dictionary", by_entity) == sorted_rows(local / "dictionary", by_entity)
    by_key = lambda r: r["key"]  # noqa: E731
    assert sorted_rows(out / "entities", by_key) == sorted_rows(local / "entities", by_key)
    assert sorted_rows(out / "reverse_index", by_entity) == sorted_rows(local / "reverse_index", by_entity)
    by_position = lambda r: (r["source"], r["position"])  # noqa: E731
    assert sorted_rows(out / "invalid", by_position) == sorted_rows(local / "invalid", by_position)
    ignored = {"seconds", "engine"}

    def same(manifest):  # the dictionary's part names are new on each write; its contents are compared above
        return {**{k: v for k, v in manifest.items() if k not in ignored},
                "dictionary": {k: v for k, v in manifest["dictionary"].items() if k != "parts"}}

    assert same(got) == same(expected)
    assert len(got["dictionary"]["parts"]) == len(list((out / "dictionary").glob("*.parquet")))
    assert got["records"] > 350 and got["invalid"] >= 5 and got["exact_duplicates"] >= 1, got
