# ADR worker image: Beam's Python SDK harness + Java (for Spark) + the project and its pinned
# dependencies. Usable as a Dataflow / Flink custom container and for spark-submit on Kubernetes.
#   docker build -t adr-worker .                                  # CPU torch
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t adr-worker:gpu .
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python3.11_sdk:${BEAM_VERSION}

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/adr
COPY pyproject.toml constraints.txt README.md ./
COPY adr ./adr
COPY udfs ./udfs
COPY pipelines ./pipelines

# torch first, from the chosen index, so the project install never swaps it for another build.
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}" \
    && pip freeze | grep -i '^torch==' > /tmp/torch-pin.txt \
    && pip install --no-cache-dir -c /tmp/torch-pin.txt . \
    && pip check

ENV OMP_NUM_THREADS=1 \
    PYSPARK_PYTHON=/usr/local/bin/python \
    PYSPARK_DRIVER_PYTHON=/usr/local/bin/python

# The Beam SDK harness stays the entrypoint (Dataflow/Flink start workers through it).
ENTRYPOINT ["/opt/apache/beam/boot"]
