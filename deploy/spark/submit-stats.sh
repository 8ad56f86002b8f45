#!/usr/bin/env bash
# `adr stats` (pipelines/stats/job.py) with spark-submit on a Spark standalone cluster, YARN or
# Kubernetes.
#   deploy/spark/submit-stats.sh [spark-submit options --] adr-stats-flags
#   e.g. ADR_MASTER=yarn deploy/spark/submit-stats.sh --num-executors 20 -- --input gs://b/llava/*.jsonl --output gs://b/adr/stats
# Executors need the project installed (not zip-imported: the spaCy tagger is loaded from a
# directory), so each mode runs them on a whole environment:
#   ADR_MASTER=spark://HOST:PORT     standalone; the driver runs here (client mode: Spark runs no Python
#                                    driver inside a standalone cluster)
#   ADR_MASTER=yarn                  the driver runs in the cluster (ADR_DEPLOY_MODE=client: here)
#     on both, the executors' Python is one of:
#     ADR_ENV (default adr-env.tar.gz)  the virtualenv packed by deploy/spark/pack-env.sh, shipped with
#                                    --archives and unpacked as ./adr-env beside each executor
#     ADR_PYTHON                     instead: a Python with ADR installed at that path on every node
#   ADR_MASTER=k8s://https://HOST:443  the worker image (ADR_IMAGE) for driver and executors, started
#                                    through pod-template.yaml; ADR_K8S_SERVICE_ACCOUNT (default spark)
#                                    must be allowed to create pods
# In client mode the driver's Python is ADR_DRIVER_PYTHON (default ADR_PYTHON, else
# PYSPARK_DRIVER_PYTHON, else python3): a local Python with ADR installed. ADR_DEPLOY_MODE: cluster (default on YARN and
# Kubernetes) or client (standalone: the only mode). SPARK_SUBMIT: the spark-submit to run (default:
# spark-submit on PATH).
# Inputs and --output must be storage that the driver and every executor see (gs://, HDFS, a shared
# mount; on one machine, local paths). ADR reads gs:// inputs with gcsfs inside the Python workers
# (Application Default Credentials); Spark itself writes the Parquet outputs, so a gs:// --output needs
# the GCS connector: set ADR_GCS_CONNECTOR_JAR (README.md, Deployment).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${ADR_MASTER:?set ADR_MASTER=spark://HOST:PORT, yarn or k8s://https://HOST:PORT}"
spark_opts=()
if [[ " $* " == *" -- "* ]]; then
  while [[ "$1" != "--" ]]; do spark_opts+=("$1"); shift; done
  shift
fi

conf=(--master "$ADR_MASTER" --name adr-stats --conf spark.executorEnv.OMP_NUM_THREADS=1)

# The executors' Python (standalone and YARN): a packed env shipped with the job, or one on every node.
python_env() {
  if [[ -n "${ADR_PYTHON:-}" && -n "${ADR_ENV:-}" ]]; then
    echo "$0: set ADR_ENV (a packed env to ship) or ADR_PYTHON (a Python on every node), not both" >&2
    exit 2
  fi
  if [[ -n "${ADR_PYTHON:-}" ]]; then
    conf+=(--conf "spark.pyspark.python=$ADR_PYTHON")
  else
    conf+=(--archives "${ADR_ENV:-adr-env.tar.gz}#adr-env"
           --conf spark.pyspark.python=./adr-env/bin/python)
  fi
  # In client mode the driver runs here, outside the archive: a local Python with ADR installed.
  # (Without this, Spark would start the driver with spark.pyspark.python, which is not here.)
  if [[ "$mode" == client ]]; then
    conf+=(--conf "spark.pyspark.driver.python=${ADR_DRIVER_PYTHON:-${ADR_PYTHON:-${PYSPARK_DRIVER_PYTHON:-python3}}}")
  fi
}

case "$ADR_MASTER" in
  spark://*)
    mode="${ADR_DEPLOY_MODE:-client}"
    if [[ "$mode" != client ]]; then
      echo "$0: a Spark standalone cluster runs Python drivers in client mode only (ADR_DEPLOY_MODE=client)" >&2
      exit 2
    fi
    python_env
    app="$(cd "$here/../.." && pwd)/pipelines/stats/job.py" ;;
  yarn)
    mode="${ADR_DEPLOY_MODE:-cluster}"
    python_env
    app="$(cd "$here/../.." && pwd)/pipelines/stats/job.py" ;;
  k8s://*)
    mode="${ADR_DEPLOY_MODE:-cluster}"
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
    app=local:///opt/adr/pipelines/stats/job.py ;;
  *)
    echo "$0: ADR_MASTER must be spark://HOST:PORT, yarn or k8s://..., got '$ADR_MASTER'" >&2
    exit 2 ;;
esac
conf+=(--deploy-mode "$mode")
if [[ -n "${ADR_GCS_CONNECTOR_JAR:-}" ]]; then
  conf+=(--jars "$ADR_GCS_CONNECTOR_JAR"
         --conf spark.hadoop.fs.gs.impl=com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem
         --conf spark.hadoop.fs.AbstractFileSystem.gs.impl=com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS)
fi
exec "${SPARK_SUBMIT:-spark-submit}" "${conf[@]}" "${spark_opts[@]}" "$app" "$@"
