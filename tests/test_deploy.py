"""Deployment files: scripts parse, and name the project's real entry points and files."""

import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "deploy").rglob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_deploy_scripts_are_valid_bash(script):
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert script.stat().st_mode & 0o111, "not executable"


def test_deploy_scripts_call_real_entry_points():
    from pipelines.cli import USAGE

    text = {p.name: p.read_text() for p in SCRIPTS}
    assert "pipelines/spark_stats.py" in text["submit-stats.sh"]
    assert (ROOT / "pipelines" / "spark_stats.py").exists()
    for name in ("rebalance.sh",):
        assert "exec adr rebalance" in (ROOT / "deploy" / "flink" / name).read_text()
        assert "exec adr rebalance" in (ROOT / "deploy" / "dataflow" / name).read_text()
    assert "rebalance" in USAGE and "stats" in USAGE


def dockerfile_instructions():
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l.strip() else "")
            for l in lines if l.strip() and not l.lstrip().startswith("#")]


def test_dockerfile_builds_from_beams_sdk_image_and_copies_files_that_exist():
    instructions = dockerfile_instructions()
    known = {"ARG", "FROM", "RUN", "WORKDIR", "COPY", "ENV", "ENTRYPOINT"}
    assert {k for k, _ in instructions} <= known
    base = next(v for k, v in instructions if k == "FROM")
    assert base.startswith("apache/beam_python3.11_sdk:")
    beam_pin = re.search(r'apache-beam\[gcp,dataframe\]==([\d.]+)', (ROOT / "pyproject.toml").read_text()).group(1)
    assert f"BEAM_VERSION={beam_pin}" in (ROOT / "Dockerfile").read_text()
    for kind, value in instructions:
        if kind == "COPY":
            *sources, _dest = shlex.split(value)
            for src in sources:
                assert (ROOT / src).exists(), src
    assert instructions[-1] == ("ENTRYPOINT", '["/opt/apache/beam/boot"]')
