"""The default install (pyproject's dependencies, without the `models` and `cloud` extras) runs
`adr run` end to end, and a model flag without the model libraries is a one-line error.

The default install is simulated in this environment: every module of an installed distribution
that pyproject's dependencies do not pull in (torch, transformers, diffusers, gcsfs and what they
bring: huggingface_hub, sympy, ...) cannot be imported in the `adr` process nor in the Spark
workers it starts, which read the same sitecustomize.
"""

import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "coco_captions_val2017_sample.jsonl"
ADR = Path(sys.executable).with_name("adr")
KEPT = {"adr-refine", "pip", "setuptools", "wheel"}  # the project itself and the installer

# Imported first by every Python started with PYTHONPATH=<its folder> (Spark's daemon included):
# each finder of sys.meta_path is wrapped so that the modules of ADR_BLOCKED and the distributions
# of ADR_BLOCKED_DISTS are not found, the way an absent package is not (`import torch` raises
# ModuleNotFoundError, importlib.util.find_spec gives None, importlib.metadata knows no torch).
# Each process that installs it appends its pid to ADR_BLOCKED_LOG.
SITECUSTOMIZE = '''\
import os, re, sys

BLOCKED = frozenset(os.environ["ADR_BLOCKED"].split(","))
BLOCKED_DISTS = frozenset(os.environ["ADR_BLOCKED_DISTS"].split(","))


class Hiding:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        find = getattr(self.finder, "find_spec", None)
        return None if name.partition(".")[0] in BLOCKED or find is None else find(name, path, target)

    def find_distributions(self, *args, **kwargs):
        for dist in getattr(self.finder, "find_distributions", lambda *a, **k: ())(*args, **kwargs):
            if re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower() not in BLOCKED_DISTS:
                yield dist

    def __getattr__(self, name):
        return getattr(self.finder, name)


already = sorted(BLOCKED & set(sys.modules))
assert not already, f"imported before sitecustomize: {already}"
sys.meta_path[:] = [Hiding(finder) for finder in sys.meta_path]
with open(os.environ["ADR_BLOCKED_LOG"], "a") as log:
    log.write(f"{os.getpid()}\\n")
'''


def default_distributions() -> set[str]:
    """The installed distributions that pyproject's dependencies need, transitively (markers and
    extras followed)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    seen: set[tuple[str, frozenset]] = set()
    todo = [Requirement(d) for d in deps]
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.distribution(req.name).requires or []
        except metadata.PackageNotFoundError:
            continue  # an optional platform dependency, not installed here
        envs = [{"extra": e} for e in req.extras] or [{"extra": ""}]
        todo += [r for r in map(Requirement, requires) if r.marker is None or any(r.marker.evaluate(e) for e in envs)]
    return {name for name, _ in seen}


def not_in_default_install() -> tuple[set[str], set[str]]:
    """The installed distributions the default install would not have, and their top-level
    modules (a module that a kept distribution also provides, a namespace package, stays)."""
    keep = default_distributions() | KEPT
    dists = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()} - keep
    modules = {module for module, owners in metadata.packages_distributions().items()
               if not module.startswith("_") and not keep & {canonicalize_name(d) for d in owners}}
    return dists, modules


@pytest.fixture(scope="module")
def default_install(tmp_path_factory):
    """An environment for a subprocess that sees only the default install."""
    dists, modules = not_in_default_install()
    # The extras hold these; were one a default dependency again, this would not test the default.
    assert {"torch", "transformers", "diffusers", "gcsfs", "huggingface-hub"} <= dists, sorted(dists)
    assert {"torch", "transformers", "diffusers", "gcsfs", "huggingface_hub"} <= modules, sorted(modules)
    site = tmp_path_factory.mktemp("default-install")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = site / "pids.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
           "ADR_BLOCKED": ",".join(sorted(modules)), "ADR_BLOCKED_DISTS": ",".join(sorted(dists)),
           "ADR_BLOCKED_LOG": str(log), "ADR_PROGRESS_SECS": "600"}
    return env, log


def adr(env, *args, cwd):
    return subprocess.run([str(ADR), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # ~45 s on 2 cores: a Spark session and every stage
def test_adr_run_finishes_without_the_model_and_cloud_extras(default_install, tmp_path):
    env, log = default_install
    sample = tmp_path / "sample.jsonl"
    sample.write_text("".join(SAMPLE.read_text().splitlines(keepends=True)[:100]))
    out = tmp_path / "run"
    proc = adr(env, "run", "--input", str(sample), "--output", str(out), "--master", "local[1]", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    # The Spark workers ran under the same blocker as the driver (the daemon is another process).
    assert len(set(log.read_text().split())) >= 2, log.read_text()
    report = out / "report" / "index.html"
    assert report.is_file() and "<html" in report.read_text().lower()
    for stage in ("stats", "rebalance", "synthesize", "report"):
        assert (out / stage / "_ADR_DONE.json").is_file(), stage
    assert "needs --llm" in proc.stderr  # the model methods are skipped, saying how to enable them


def test_a_model_flag_without_the_models_extra_is_a_one_line_error(default_install, tmp_path):
    env, _ = default_install
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    proc = adr(env, "run", "--input", str(SAMPLE), "--output", str(tmp_path / "run"), "--llm", str(model),
               cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-4000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-4000:]
    assert lines[0].startswith("adr run: error: ") and "pip install 'adr-refine[models]'" in lines[0], lines[0]
    assert "torch" in lines[0] and "transformers" in lines[0]
    assert not (tmp_path / "run" / "stats").exists()  # refused before any stage started
