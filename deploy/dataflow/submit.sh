#!/usr/bin/env bash
# Run an ADR Beam stage on Dataflow directly (no template): the driver runs here and submits the
# job(s). synthesize needs this form: its driver runs one Dataflow job per round and reads each
# round's output before the next. Launch with the Beam version of the image (2.77.0), e.g. from
# the image itself (README.md, Deployment).
#   deploy/dataflow/submit.sh rebalance|synthesize|annotate [that stage's flags]
# Environment: ADR_PROJECT, ADR_REGION, ADR_TEMP (gs://bucket/tmp), ADR_IMAGE (the worker image),
#   ADR_MAX_WORKERS (default 20),
#   ADR_ACCELERATOR (synthesize/annotate only), e.g. type:nvidia-l4;count:1;machine_type:g2-standard-4;install-nvidia-driver
#   becomes the stage's --accelerator: a Beam resource hint on the model steps only, so only
#   those steps get GPU workers (Dataflow right fitting; ADR_IMAGE must be the CUDA build).
#   Not --dataflow_service_options worker_accelerator=...: that gives every worker a GPU, and
#   Google's right-fitting page says not to combine it with resource hints
#   (https://cloud.google.com/dataflow/docs/guides/right-fitting).
set -euo pipefail
command="${1:?usage: $0 rebalance|synthesize|annotate [flags]}"
shift
case "$command" in
  rebalance | synthesize | annotate) ;;
  *) echo "$0: unknown stage '$command' (rebalance, synthesize or annotate)" >&2; exit 2 ;;
esac
: "${ADR_PROJECT:?}" "${ADR_REGION:?}" "${ADR_TEMP:?}" "${ADR_IMAGE:?}"
beam=(
  --runner DataflowRunner
  --project "$ADR_PROJECT"
  --region "$ADR_REGION"
  --temp_location "$ADR_TEMP"
  --sdk_container_image "$ADR_IMAGE"
  # Custom containers need Runner v2; Beam's Python SDK turns it on anyway, this says so.
  --experiments use_runner_v2
  --max_num_workers "${ADR_MAX_WORKERS:-20}"
)
if [[ -n "${ADR_ACCELERATOR:-}" ]]; then
  if [[ "$command" == rebalance ]]; then
    echo "$0: rebalance has no model step; ADR_ACCELERATOR applies to synthesize and annotate" >&2
    exit 2
  fi
  beam+=(--accelerator "$ADR_ACCELERATOR")
fi
exec adr "$command" "$@" "${beam[@]}"
