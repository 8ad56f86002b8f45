import json
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from pipelines.stage import execute


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Offline and single-threaded before anything imports torch, transformers or Spark. Every gs://
# URL of the session goes to a loopback emulator (started by the gcs_bucket fixture); it is set
# here, before Spark's JVM starts, because Spark's Python workers inherit the JVM's environment.
GCS_EMULATOR_PORT = _free_port()
os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
                  PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
                  STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{GCS_EMULATOR_PORT}",
                  GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT="false")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ADR_SHARED_DATA", ROOT.parent / "shared" / "data"))
COCO_CAPTIONS = SHARED / "coco2017" / "captions_val2017.json"
COCO_INSTANCES = SHARED / "coco_tiny" / "annotations" / "instances_val2017.json"
COCO_IMAGES = SHARED / "coco_tiny" / "val2017"
SCIENCEQA = SHARED / "scienceqa" / "llava_test_CQM-A.json"
EWT_DEV = SHARED / "ud_ewt" / "en_ewt-ud-dev.conllu"
# Another spaCy pipeline to test with (e.g. en_core_web_sm where it is installed); default: shipped.
NLP_ARGS = ["--nlp", os.environ["ADR_TEST_NLP"]] if os.environ.get("ADR_TEST_NLP") else []


# Without the shared data the tests that read it skip, saying so; the others (adr/, udfs/) run.
SHARED_MISSING = None if COCO_CAPTIONS.exists() else f"shared test data not found at {SHARED} (set ADR_SHARED_DATA)"


def pytest_report_header(config):
    return SHARED_MISSING and f"{SHARED_MISSING}: the tests that read it are skipped"


# What a test needs, read from what it asks for: `make test-fast` leaves out these three.
SPARK_FIXTURES = {"spark"}
SHARED_FIXTURES = {"shared_data"}  # requested by every fixture that reads SHARED


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if SPARK_FIXTURES & fixtures:
            item.add_marker(pytest.mark.spark)
        if "chromium" in item.name:
            item.add_marker(pytest.mark.browser)
        if SHARED_FIXTURES & fixtures:
            item.add_marker(pytest.mark.needs_shared)
        if SHARED_MISSING and item.get_closest_marker("needs_shared"):
            item.add_marker(pytest.mark.skip(reason=SHARED_MISSING))
    # Files holding a slow test first, then those starting Spark, the small ones last (order kept
    # otherwise): with `-n 2 --dist loadfile` a file of minutes handed out last would leave the
    # other worker idle while it runs.
    cost: dict = {}
    for item in items:
        rank = 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("spark") else 2
        cost[item.path] = min(rank, cost.get(item.path, 2))
    items.sort(key=lambda item: cost[item.path])


@pytest.fixture(scope="session")
def shared_data():
    """The shared test data folder (a test that reads it without a fixture is marked needs_shared)."""
    if SHARED_MISSING:
        pytest.skip(SHARED_MISSING)
    return SHARED


@pytest.fixture(scope="session")
def coco(shared_data):
    """The official COCO captions and instances, loaded once."""
    return json.loads(COCO_CAPTIONS.read_text()), json.loads(COCO_INSTANCES.read_text())


def once_per_run(tmp_path_factory, name: str, make) -> tuple[Path, object]:
    """(folder, what `make(folder)` returned, as JSON), made by the first pytest-xdist worker that asks and read
    by the others from the run's shared temporary folder: the costly session fixtures (the COCO
    statistics, an `adr run`) are computed once per test run, not once per worker. Their outputs
    are read-only to the tests (each test that changes one copies it first)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = root / name, root / f"{name}.json"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a worker that failed making it left
            folder.mkdir()
            done.write_text(json.dumps(make(folder)))
    return folder, json.loads(done.read_text())


@pytest.fixture(scope="session")
def coco_jsonl(tmp_path_factory, coco):
    """LLaVA records for the 80 annotated COCO images and the next 220 by id (~1,500 records)."""
    from adr.coco import coco_records, objects_by_image

    def make(folder: Path) -> None:
        captions, instances = coco
        objects = objects_by_image(instances)
        rest = sorted(i["id"] for i in captions["images"] if i["id"] not in objects)[:220]
        path = folder / "coco.jsonl"
        with path.open("w") as f:
            for record in coco_records(captions, objects, set(objects) | set(rest)):
                f.write(json.dumps(record) + "\n")

    return once_per_run(tmp_path_factory, "coco", make)[0] / "coco.jsonl"


@pytest.fixture(scope="session")
def spark():
    from pipelines.stats.job import spark_session

    session = spark_session("local[2]", app="adr-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def gcs_bucket():
    """gs://adr-test/ served by a local GCS emulator on loopback, never the network."""
    from gcp_storage_emulator.server import create_server

    server = create_server("127.0.0.1", GCS_EMULATOR_PORT, in_memory=True, default_bucket="adr-test")
    server.start()
    yield "gs://adr-test"
    server.stop()


@pytest.fixture(scope="session")
def coco_stats(spark, coco_jsonl, tmp_path_factory):
    """`adr stats` on the COCO records, all four perspectives, with the reverse index."""
    from pipelines.stats import job as spark_stats

    def make(out: Path) -> dict:
        return execute(spark_stats.STAGE, ["--input", str(coco_jsonl), "--output", str(out), "--reverse-index",
                                           *NLP_ARGS], spark)[1]

    return once_per_run(tmp_path_factory, "stats", make)


def write_bad_corpus(path: Path, good_lines: list[str]) -> Path:
    """40 good records, an exact copy of one (line 15), one of each bad kind (lines 11-14, 16 and 28)
    and a blank line."""
    record = json.loads(good_lines[0])
    lines = good_lines[:10] + [
        '{"id": "broken", "conversations": [',                                    # 11 malformed
        '[1, 2, 3]',                                                              # 12 not an object
        json.dumps({"id": "noconv"}),                                             # 13 missing conversations
        json.dumps({**record, "id": "esc", "image": "../../secret.jpg"}),         # 14 path escapes root
        good_lines[3],                                                            # 15 exact copy: valid
        json.dumps({**record, "id": "long", "pad": "x" * 5000}),                  # 16 absurdly long
        "",                                                                       # blank: not a record
    ] + good_lines[10:20]
    data = "\n".join(lines).encode() + b"\n"
    data += b'{"id": "latin1", "conversations": [{"from": "human", "value": "caf\xe9"}]}\n'  # 28 not utf-8
    path.write_bytes(data + "\n".join(good_lines[20:40]).encode() + b"\n")
    return path


BAD_LINES = {11: "malformed-json", 12: "not-an-object", 13: "bad-conversations", 14: "unsafe-image-path",
             16: "too-long", 28: "not-utf8"}


@pytest.fixture(scope="session")
def adr_run(spark, coco_jsonl, tmp_path_factory):
    """`adr run` on the COCO records with the COCO_Tiny images: (run dir, stage outcomes, stderr)."""
    import contextlib
    import io

    from pipelines import run

    def make(folder: Path) -> dict:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            outcome = run.run(["--input", str(coco_jsonl), "--output", str(folder / "run"), "--images-root",
                               str(COCO_IMAGES), *NLP_ARGS], spark=spark)
        return {"outcome": outcome, "stderr": err.getvalue()}

    folder, made = once_per_run(tmp_path_factory, "adr-run", make)
    return folder / "run", made["outcome"], made["stderr"]
