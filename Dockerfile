# ADR worker image: Beam's Python SDK image + a JRE (Spark) + the project with its pinned
# dependencies. One image serves as the Dataflow custom container and Flex Template launcher, the
# Flink TaskManagers' SDK worker pool, and the Spark-on-Kubernetes driver/executor image.
#   docker build -t adr-worker .                                                # CPU torch
#   docker build --build-arg TORCH_INDEX=https://pypi.org/simple -t adr-worker:gpu .
# PyPI's Linux x86_64 torch 2.13.0 wheel is the CUDA build (CUDA 13.0 libraries as dependencies);
# a PyTorch CUDA index (https://download.pytorch.org/whl/cuXXX) works the same way.
ARG BEAM_VERSION=2.77.0
# Google's Flex Template launcher, copied in so this image can also launch templates
# (https://cloud.google.com/dataflow/docs/guides/templates/configuring-flex-templates#use_custom_container_images).
ARG LAUNCHER_TAG=20240812-rc01

FROM gcr.io/dataflow-templates-base/python311-template-launcher-base:${LAUNCHER_TAG} AS template_launcher

FROM apache/beam_python3.11_sdk:${BEAM_VERSION}

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# PySpark 4 needs Java 17 or later; the distribution's default JRE is checked rather than assumed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends default-jre-headless \
    && rm -rf /var/lib/apt/lists/* \
    && java_version="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')" \
    && test "${java_version%%.*}" -ge 17

COPY --from=template_launcher /opt/google/dataflow/python_template_launcher /opt/google/dataflow/python_template_launcher

WORKDIR /opt/adr
COPY pyproject.toml README.md ./
COPY adr ./adr
COPY udfs ./udfs
COPY pipelines ./pipelines
COPY scripts/install_wordnet.py ./scripts/
# flex_main.py (template entry) and the Spark-on-Kubernetes entrypoint run from here.
COPY deploy ./deploy

# torch first, from the chosen index, so the project install never swaps it for another build;
# the project with both extras: the model stages (models) and gs:// paths (cloud).
# WordNet data for synonym synthesis goes to sys.prefix/nltk_data, where NLTK looks.
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}" \
    && pip freeze | grep -i '^torch==' > /tmp/torch-pin.txt \
    && pip install --no-cache-dir -c /tmp/torch-pin.txt '.[models,cloud]' \
    && pip check \
    && python scripts/install_wordnet.py

ENV OMP_NUM_THREADS=1 \
    PYSPARK_PYTHON=/usr/local/bin/python \
    FLEX_TEMPLATE_PYTHON_PY_FILE=/opt/adr/deploy/dataflow/flex_main.py

# The Beam SDK harness stays the entrypoint: Dataflow and the Flink worker pool start it, Dataflow
# runs the template launcher in its place, and Spark pods get their command from a pod template.
ENTRYPOINT ["/opt/apache/beam/boot"]
