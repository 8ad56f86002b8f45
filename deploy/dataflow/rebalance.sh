#!/usr/bin/env bash
# `adr rebalance` on Google Cloud Dataflow, with the worker image built from ./Dockerfile.
#   ADR_PROJECT, ADR_REGION, ADR_TEMP (gs://bucket/tmp), ADR_IMAGE (e.g. REGION-docker.pkg.dev/P/adr/worker:TAG)
# Batch:      deploy/dataflow/rebalance.sh --input gs://b/llava/*.jsonl --dictionary gs://b/adr/stats --output gs://b/adr/rebalanced
# Streaming:  add --streaming --pubsub-subscription projects/P/subscriptions/S [--dictionary-refresh-secs 3600]
set -euo pipefail
: "${ADR_PROJECT:?}" "${ADR_REGION:?}" "${ADR_TEMP:?}" "${ADR_IMAGE:?}"
exec adr rebalance "$@" \
  --runner DataflowRunner \
  --project "$ADR_PROJECT" \
  --region "$ADR_REGION" \
  --temp_location "$ADR_TEMP" \
  --sdk_container_image "$ADR_IMAGE" \
  --sdk_location container \
  --experiments use_runner_v2 \
  --max_num_workers "${ADR_MAX_WORKERS:-20}"
