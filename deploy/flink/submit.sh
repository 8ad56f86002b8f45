#!/usr/bin/env bash
# Run an ADR Beam stage on the Flink session cluster (flink-deployment.yaml) through the Beam job
# server (job-server.yaml). This side builds the pipeline and stages its artifacts; the Python
# code runs in the TaskManagers' worker-pool sidecars (EXTERNAL environment, localhost:50000 of
# each TaskManager pod). Inputs, outputs and the dictionary must be on storage every pod sees (gs://).
#   deploy/flink/submit.sh rebalance|synthesize|annotate [that stage's flags]
# Environment: ADR_JOB_ENDPOINT (default beam-job-server:8099, the in-cluster Service),
#   ADR_ARTIFACT_ENDPOINT (default beam-job-server:8098), ADR_PARALLELISM (default 8).
# Run it in the cluster from the ADR image (same Beam version), or through
# `kubectl port-forward svc/beam-job-server 8099 8098` with the endpoints at localhost.
set -euo pipefail
command="${1:?usage: $0 rebalance|synthesize|annotate [flags]}"
shift
case "$command" in
  rebalance | synthesize | annotate) ;;
  *) echo "$0: unknown stage '$command' (rebalance, synthesize or annotate)" >&2; exit 2 ;;
esac
exec adr "$command" "$@" \
  --runner PortableRunner \
  --job_endpoint "${ADR_JOB_ENDPOINT:-beam-job-server:8099}" \
  --artifact_endpoint "${ADR_ARTIFACT_ENDPOINT:-beam-job-server:8098}" \
  --environment_type EXTERNAL \
  --environment_config localhost:50000 \
  --parallelism "${ADR_PARALLELISM:-8}"
