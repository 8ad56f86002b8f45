import json
import os
import sys
from pathlib import Path

import pytest

# Offline and single-threaded before anything imports torch, transformers or Spark.
os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
                  PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ADR_SHARED_DATA", ROOT.parent / "shared" / "data"))
COCO_CAPTIONS = SHARED / "coco2017" / "captions_val2017.json"
COCO_INSTANCES = SHARED / "coco_tiny" / "annotations" / "instances_val2017.json"
COCO_IMAGES = SHARED / "coco_tiny" / "val2017"
SCIENCEQA = SHARED / "scienceqa" / "llava_test_CQM-A.json"
EWT_DEV = SHARED / "ud_ewt" / "en_ewt-ud-dev.conllu"


def pytest_configure(config):
    if not COCO_CAPTIONS.exists():
        raise pytest.UsageError(f"shared test data not found at {SHARED} (set ADR_SHARED_DATA)")


@pytest.fixture(scope="session")
def coco():
    """The official COCO captions and instances, loaded once."""
    return json.loads(COCO_CAPTIONS.read_text()), json.loads(COCO_INSTANCES.read_text())


@pytest.fixture(scope="session")
def coco_jsonl(tmp_path_factory, coco):
    """LLaVA records for the 80 annotated COCO images and the next 220 by id (~1,500 records)."""
    from adr.coco import coco_records, objects_by_image

    captions, instances = coco
    objects = objects_by_image(instances)
    rest = sorted(i["id"] for i in captions["images"] if i["id"] not in objects)[:220]
    path = tmp_path_factory.mktemp("coco") / "coco.jsonl"
    with path.open("w") as f:
        for record in coco_records(captions, objects, set(objects) | set(rest)):
            f.write(json.dumps(record) + "\n")
    return path


@pytest.fixture(scope="session")
def spark():
    from pipelines.spark_stats import spark_session

    session = spark_session("local[2]", app="adr-tests")
    yield session
    session.stop()
