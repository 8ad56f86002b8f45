#!/usr/bin/env bash
# `adr stats` (pipelines/spark_stats.py) with spark-submit on YARN or Kubernetes.
#   deploy/spark/submit-stats.sh [spark-submit options --] adr-stats-flags
#   e.g. deploy/spark/submit-stats.sh --num-executors 20 -- --input gs://b/llava/*.jsonl --output gs://b/adr/stats
# Executors need the project installed (not zip-imported: the spaCy tagger is loaded from a
# directory), so each mode ships a whole environment:
#   ADR_MASTER=yarn                  the packed virtualenv from deploy/spark/pack-env.sh
#                                    (ADR_ENV, default adr-env.tar.gz), unpacked as ./adr-env
#   ADR_MASTER=k8s://https://HOST:443  the worker image (ADR_IMAGE) for driver and executors, started
#                                    through pod-template.yaml; ADR_K8S_SERVICE_ACCOUNT (default spark)
#                                    must be allowed to create pods
# ADR reads gs:// inputs with gcsfs inside the Python workers (Application Default Credentials);
# Spark itself writes the Parquet outputs, so a gs:// --output needs the GCS connector: set
# ADR_GCS_CONNECTOR_JAR (README.md, Deployment). ADR_DEPLOY_MODE: cluster (default) or client.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${ADR_MASTER:?set ADR_MASTER=yarn or k8s://https://HOST:PORT}"
spark_opts=()
if [[ " $* " == *" -- "* ]]; then
  while [[ "$1" != "--" ]]; do spark_opts+=("$1"); shift; done
  shift
fi

mode="${ADR_DEPLOY_MODE:-cluster}"
conf=(--master "$ADR_MASTER" --deploy-mode "$mode" --name adr-stats
      --conf spark.executorEnv.OMP_NUM_THREADS=1)
case "$ADR_MASTER" in
  yarn)
    conf+=(--archives "${ADR_ENV:-adr-env.tar.gz}#adr-env"
           --conf spark.pyspark.python=./adr-env/bin/python)
    # In client mode the driver runs here, outside the archive: a local Python with ADR installed.
    if [[ "$mode" == client ]]; then
      conf+=(--conf "spark.pyspark.driver.python=${ADR_DRIVER_PYTHON:-python3}")
    fi
    app="$here/../../pipelines/spark_stats.py" ;;
  k8s://*)
    : "${ADR_IMAGE:?set ADR_IMAGE to the pushed worker image}"
    if [[ "$mode" != cluster ]]; then
      echo "$0: on Kubernetes this script runs the driver in the image (ADR_DEPLOY_MODE=cluster)" >&2
      exit 2
    fi
    conf+=(--conf "spark.kubernetes.container.image=$ADR_IMAGE"
           --conf "spark.kubernetes.driver.podTemplateFile=$here/pod-template.yaml"
           --conf "spark.kubernetes.executor.podTemplateFile=$here/pod-template.yaml"
           --conf "spark.kubernetes.authenticate.driver.serviceAccountName=${ADR_K8S_SERVICE_ACCOUNT:-spark}"
           --conf spark.pyspark.python=/usr/local/bin/python)
    # Inside the image (Dockerfile: WORKDIR /opt/adr, COPY pipelines).
    app=local:///opt/adr/pipelines/spark_stats.py ;;
  *)
    echo "$0: ADR_MASTER must be yarn or k8s://..., got '$ADR_MASTER'" >&2
    exit 2 ;;
esac
if [[ -n "${ADR_GCS_CONNECTOR_JAR:-}" ]]; then
  conf+=(--jars "$ADR_GCS_CONNECTOR_JAR"
         --conf spark.hadoop.fs.gs.impl=com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem
         --conf spark.hadoop.fs.AbstractFileSystem.gs.impl=com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS)
fi
exec spark-submit "${conf[@]}" "${spark_opts[@]}" "$app" "$@"
