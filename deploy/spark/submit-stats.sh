#!/usr/bin/env bash
# `adr stats` on a Spark cluster (YARN, Kubernetes or standalone) with spark-submit.
#
# The executors need the same Python environment as the driver: this ships a packed virtualenv
# (venv-pack) that holds the project wheel and its pinned dependencies, and points PySpark at it.
#   ADR_MASTER   yarn | k8s://https://HOST:443 | spark://HOST:7077     (required)
#   ADR_ENV      packed environment, built once by `deploy/spark/pack-env.sh` (default: adr-env.tar.gz)
# Reading gs:// in Spark itself is not needed: ADR reads inputs with fsspec/gcsfs inside the
# Python workers. Writing outputs to gs:// needs the GCS connector jar on the cluster
# (--jars gcs-connector-hadoop3-latest.jar, or Dataproc, which has it), and credentials.
# Usage: deploy/spark/submit-stats.sh --input gs://bucket/llava/*.json --output gs://bucket/adr/stats
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${ADR_MASTER:?set ADR_MASTER, e.g. yarn or k8s://https://host:443}"
ADR_ENV="${ADR_ENV:-adr-env.tar.gz}"
deploy_mode="${ADR_DEPLOY_MODE:-cluster}"
exec spark-submit \
  --master "$ADR_MASTER" \
  --deploy-mode "$deploy_mode" \
  --archives "$ADR_ENV#adr-env" \
  --conf spark.pyspark.python=./adr-env/bin/python \
  --conf spark.executorEnv.OMP_NUM_THREADS=1 \
  --conf spark.python.worker.reuse=true \
  --conf spark.sql.adaptive.enabled=true \
  ${ADR_SPARK_CONF:-} \
  "$here/../../pipelines/spark_stats.py" "$@"
