#!/usr/bin/env bash
# Dataflow Flex Templates for the ADR stages that are one Beam job per launch: rebalance, annotate.
# The worker image is also the template's launcher image (Dockerfile: Google's launcher binary and
# FLEX_TEMPLATE_PYTHON_PY_FILE=deploy/dataflow/flex_main.py), as Google documents for custom
# containers (https://cloud.google.com/dataflow/docs/guides/templates/configuring-flex-templates#use_custom_container_images).
#   deploy/dataflow/flex-template.sh build rebalance|annotate
#   deploy/dataflow/flex-template.sh run rebalance|annotate name=value ...   (the template's parameters)
# Values with commas need gcloud's delimiter escape: '^~^perspectives=token,object'.
# Environment: ADR_PROJECT, ADR_REGION, ADR_BUCKET (gs://bucket: templates/, tmp/, staging/),
#   ADR_IMAGE (pushed worker image), ADR_MAX_WORKERS (default 20).
# GPU for annotate's detector step only: run annotate ... accelerator='type:nvidia-l4;count:1;machine_type:g2-standard-4;install-nvidia-driver'
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
usage="usage: $0 build|run rebalance|annotate [name=value ...]"
action="${1:?$usage}"
stage="${2:?$usage}"
shift 2
case "$stage" in
  rebalance | annotate) ;;
  synthesize)
    echo "$0: synthesize runs one Dataflow job per round and reads each round's output; a template" \
      "launch only stages one job graph. Use deploy/dataflow/submit.sh synthesize." >&2
    exit 2 ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
: "${ADR_PROJECT:?}" "${ADR_REGION:?}" "${ADR_BUCKET:?}" "${ADR_IMAGE:?}"
template="${ADR_BUCKET%/}/templates/adr-${stage}.json"
case "$action" in
  build)
    exec gcloud dataflow flex-template build "$template" \
      --project "$ADR_PROJECT" \
      --image "$ADR_IMAGE" \
      --sdk-language PYTHON \
      --metadata-file "$here/${stage}-metadata.json" ;;
  run)
    # The launcher passes these as --name=value to flex_main.py; sdk_container_image makes the
    # workers run the same image as the launcher.
    params=(--parameters "adr_command=${stage}" --parameters "sdk_container_image=${ADR_IMAGE}")
    for p in "$@"; do params+=(--parameters "$p"); done
    exec gcloud dataflow flex-template run "adr-${stage}-$(date +%Y%m%d-%H%M%S)" \
      --project "$ADR_PROJECT" \
      --region "$ADR_REGION" \
      --template-file-gcs-location "$template" \
      --temp-location "${ADR_BUCKET%/}/tmp" \
      --staging-location "${ADR_BUCKET%/}/staging" \
      --max-workers "${ADR_MAX_WORKERS:-20}" \
      "${params[@]}" ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
