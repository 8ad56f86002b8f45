#!/usr/bin/env bash
# For Spark (standalone or YARN): build the project wheel and pack it, pip-installed with its pinned
# dependencies, into a relocatable virtualenv that deploy/spark/submit-stats.sh ships with --archives
# (ADR_ENV); the executors run their Python from it.
# The wheel is installed, not shipped with --py-files: the shipped spaCy tagger
# (udfs/models/en_adr_ewt) is loaded from a directory, which a zip-imported wheel does not have.
# venv-pack does not copy the interpreter: the env's bin/python stays a link to the Python that built
# it, so run this with the Python 3.11 that the cluster nodes have at the same path
# (PYTHON=/usr/bin/python3.11 ...), on the nodes' OS and architecture.
#   deploy/spark/pack-env.sh [OUT.tar.gz]        (default adr-env.tar.gz)
# Environment:
#   PYTHON          the Python 3.11 that builds the env, with pip 22.3 or later (default python3.11)
#   ADR_PACK        stats (default): the project and what `adr stats` runs on, at the project's pins:
#                   spaCy, pyarrow, pandas, numpy, threadpoolctl, gcsfs (no torch, Beam or model
#                   libraries; PySpark itself comes from the cluster's Spark). full: the project with
#                   every pinned dependency and both extras (CPU torch first), several GB.
#   ADR_PACK_EXTRA  more pip requirements for the env, space-separated (e.g. the spaCy pipeline that
#                   --nlp names)
#   TORCH_INDEX     full only: the index CPU torch comes from (default https://download.pytorch.org/whl/cpu;
#                   empty: pip's own configured indexes)
#   ADR_WHEEL_DIR   where a copy of the wheel is left (default dist/ of the checkout)
#   VENV_PACK       the venv-pack command (default: venv-pack on PATH, else venv-pack 0.2.0 installed
#                   into a throwaway virtualenv for this run)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
python="${PYTHON:-python3.11}"
profile="${ADR_PACK:-stats}"
out="${1:-adr-env.tar.gz}"
[[ "$out" == /* ]] || out="$PWD/$out"
wheel_dir="${ADR_WHEEL_DIR:-$root/dist}"
read -r -a extra <<< "${ADR_PACK_EXTRA:-}"
case "$profile" in
  stats | full) ;;
  *) echo "$0: ADR_PACK must be stats or full, got '$profile'" >&2; exit 2 ;;
esac
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The wheel is built from a copy of the checkout's files (tracked, and untracked but not ignored), so a
# stale build/ directory cannot leak into it and nothing is written into the checkout.
src="$root"
if git -C "$root" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  src="$work/src"
  mkdir -p "$src"
  (cd "$root" && git ls-files -z --cached --others --exclude-standard) |
    while IFS= read -r -d '' f; do if [[ -f "$root/$f" ]]; then printf '%s\0' "$f"; fi; done |
    (cd "$root" && tar --null -T - -cf -) | tar -xf - -C "$src"
fi
"$python" -m pip wheel --no-deps -q --wheel-dir "$work/dist" "$src"
wheel="$(echo "$work"/dist/adr_refine-*.whl)"
[[ -f "$wheel" ]] || { echo "$0: no adr_refine wheel was built" >&2; exit 1; }
mkdir -p "$wheel_dir"
cp "$wheel" "$wheel_dir/"

# The env has no pip of its own (nothing installs into it on the nodes): this Python's pip fills it.
env_dir="$work/adr-env"
"$python" -m venv --without-pip "$env_dir"
env_python="$env_dir/bin/python"
pip=("$python" -m pip --python "$env_python")
if [[ "$profile" == stats ]]; then
  # The packages the stats job imports, pinned as the wheel pins them (its Requires-Dist), so the
  # env holds the versions the project is tested with; then the project without its dependencies
  # (the others serve the Beam and model stages).
  "$env_python" - "$wheel" > "$work/pins.txt" << 'EOF'
import re, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as whl:
    meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    for line in whl.read(meta).decode().splitlines():
        m = re.match(r"Requires-Dist:\s*([A-Za-z0-9_.-]+)(?:\[[^]]*\])?\s*==\s*([^\s;]+)", line)
        if m:
            print(f"{m.group(1)}=={m.group(2)}")
EOF
  "${pip[@]}" install -q -c "$work/pins.txt" spacy threadpoolctl pyarrow pandas numpy gcsfs "${extra[@]}"
  "${pip[@]}" install -q --no-deps --no-warn-conflicts "$wheel"
else
  # CPU torch first, from PyTorch's CPU index: the stats job never uses a GPU, and constraints.txt
  # (torch==2.13.0+cpu) then keeps the project install from swapping it for the CUDA build.
  torch_index="${TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
  "${pip[@]}" install -q ${torch_index:+--index-url "$torch_index"} torch==2.13.0
  "${pip[@]}" install -q -c "$root/constraints.txt" "$wheel[models,cloud]" "${extra[@]}"
  "${pip[@]}" check
fi
# Before anything is shipped: the job's modules import from the env (not from a checkout) and the
# shipped tagger loads there.
(cd "$work" && env -u PYTHONPATH "$env_python" -c '
import sys
import pipelines.stats.job, udfs.nlp
assert udfs.nlp.__file__.startswith(sys.prefix), udfs.nlp.__file__
udfs.nlp.load_nlp(None)
')

venv_pack="${VENV_PACK:-$(command -v venv-pack || true)}"
if [[ -z "$venv_pack" ]]; then
  "$python" -m venv "$work/tools"
  "$work/tools/bin/python" -m pip install -q venv-pack==0.2.0
  venv_pack="$work/tools/bin/venv-pack"
fi
"$venv_pack" -p "$env_dir" -o "$out" --force
chmod 644 "$out"
echo "packed $(basename "$wheel") ($profile) into $out"
