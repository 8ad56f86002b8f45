#!/usr/bin/env bash
# Build adr-env.tar.gz: a relocatable virtualenv with the project and its pinned dependencies,
# for spark-submit --archives. Build it on the same OS/Python as the cluster nodes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
python3 -m venv /tmp/adr-pack-env
/tmp/adr-pack-env/bin/pip install -q torch==2.13.0 venv-pack
/tmp/adr-pack-env/bin/pip install -q -c "$root/constraints.txt" "$root"
/tmp/adr-pack-env/bin/venv-pack -p /tmp/adr-pack-env -o "${1:-adr-env.tar.gz}" --force
