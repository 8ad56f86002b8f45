#!/usr/bin/env bash
# `adr rebalance` on a Flink cluster through Beam's portable Flink runner.
#   ADR_FLINK_MASTER  host:port of the Flink REST endpoint (JobManager), e.g. flink-jobmanager:8081
#   ADR_IMAGE         the worker image built from ./Dockerfile, pushed where the task managers pull
# The job server is started by the FlinkRunner itself (it needs Java and network access to
# Maven Central for its jar, or --flink_job_server_jar pointing at a local copy).
# Streaming from Pub/Sub:  add --streaming --pubsub-subscription projects/P/subscriptions/S
set -euo pipefail
: "${ADR_FLINK_MASTER:?set ADR_FLINK_MASTER=host:8081}"
: "${ADR_IMAGE:?set ADR_IMAGE to the pushed worker image}"
exec adr rebalance "$@" \
  --runner FlinkRunner \
  --flink_master "$ADR_FLINK_MASTER" \
  --environment_type DOCKER \
  --environment_config "$ADR_IMAGE" \
  --parallelism "${ADR_PARALLELISM:-8}"
