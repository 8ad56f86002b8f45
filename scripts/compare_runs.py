"""Are two `adr run` directories the same run? Every output compared, but what a clock writes.

    python -m scripts.compare_runs RUN_A RUN_B

Files with the same path must be byte-identical, except: JSON files are compared without their
timings (`seconds`, `*_per_s`, `started`), Spark's Parquet parts (named by a job's random id)
are compared as the sorted rows of each folder, and the report page without its timings. Prints
each difference; exit status 1 when there is one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pyarrow.parquet as pq

VOLATILE = re.compile(r"(^|_)(seconds|started|per_s)$|_per_s$|^images_per_s$")
SPARK_PART = re.compile(r"^\.?part-\d+-[0-9a-f-]{36}")
SPARK_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def untimed(value):
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if not VOLATILE.search(k)}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    if isinstance(value, str):
        return SPARK_ID.sub("*", value)  # Spark names its parts by a random job id
    return value


def files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file()}


def spark_rows(folder: Path) -> list:
    rows = [json.dumps(r, sort_keys=True, default=str) for f in sorted(folder.glob("part-*.parquet"))
            for r in pq.read_table(f).to_pylist()]
    return sorted(rows)


def page_text(path: Path) -> str:
    # The page shows each stage's seconds and the rates computed from them.
    return re.sub(r"\d+(\.\d+)?\s*(s\b|records/s|images/s)", "#", path.read_text())


def differences(a: Path, b: Path) -> list[str]:
    fa, fb = files(a), files(b)
    plain = lambda names: {n for n in names if not SPARK_PART.match(Path(n).name)}  # noqa: E731
    out = [f"only in {a}: {n}" for n in sorted(plain(fa) - plain(fb))]
    out += [f"only in {b}: {n}" for n in sorted(plain(fb) - plain(fa))]
    for name in sorted(plain(fa) & plain(fb)):
        x, y = fa[name], fb[name]
        if name.endswith(".json"):
            same = untimed(json.loads(x.read_text())) == untimed(json.loads(y.read_text()))
        elif name.endswith(".html"):
            same = page_text(x) == page_text(y)
        else:
            same = x.read_bytes() == y.read_bytes()
        if not same:
            out.append(f"differs: {name}")
    spark_dirs = {str(Path(n).parent) for n in fa if SPARK_PART.match(Path(n).name)}
    for folder in sorted(spark_dirs):
        if spark_rows(a / folder) != spark_rows(b / folder):
            out.append(f"differs (rows): {folder}/")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    args = ap.parse_args()
    found = differences(args.a, args.b)
    print("\n".join(found) if found else f"same: {len(files(args.a))} files")
    sys.exit(1 if found else 0)
