#!/usr/bin/env bash
# For Spark on YARN: build the project wheel and pack it, pip-installed with its pinned
# dependencies, into a relocatable virtualenv that spark-submit ships with --archives.
# The wheel is installed, not shipped with --py-files: the shipped spaCy tagger
# (udfs/models/en_adr_ewt) is loaded from a directory, which a zip-imported wheel does not have.
# venv-pack does not copy the interpreter: run this with the Python 3.11 that the cluster nodes
# have at the same path (PYTHON=/usr/bin/python3.11 ...), on the nodes' OS and architecture.
#   deploy/spark/pack-env.sh [OUT.tar.gz]        (default adr-env.tar.gz; the wheel goes to dist/)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
python="${PYTHON:-python3.11}"
out="${1:-adr-env.tar.gz}"
[[ "$out" == /* ]] || out="$PWD/$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m pip wheel --no-deps --wheel-dir "$root/dist" "$root"
wheel="$(ls -t "$root"/dist/adr_refine-*.whl | head -n 1)"
"$python" -m venv "$work/adr-env"
# CPU torch first, from PyTorch's CPU index: the stats job never uses a GPU, and constraints.txt
# (torch==2.13.0+cpu) then keeps the project install from swapping it for the CUDA build.
"$work/adr-env/bin/pip" install -q --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
"$work/adr-env/bin/pip" install -q -c "$root/constraints.txt" "$wheel" venv-pack==0.2.0
"$work/adr-env/bin/pip" check
"$work/adr-env/bin/venv-pack" -p "$work/adr-env" -o "$out" --force
echo "packed $wheel into $out"
