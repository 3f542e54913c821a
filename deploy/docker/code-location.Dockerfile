# syntax=docker/dockerfile:1
# The code location image: the gRPC code server of the Helm chart's user deployment
# (deploy/helm/values.yaml), and the run and step pods that the K8sRunLauncher and the
# k8s_job_executor start from it, so a run executes exactly the code the UI showed.
# Build from the repository root, with a unique tag per build:
#   docker build -f deploy/docker/code-location.Dockerfile -t ml-assets-code:$(git rev-parse --short HEAD) .
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# libgomp1: the OpenMP runtime LightGBM needs.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
# torch first, the CPU wheel from PyTorch's CPU index: any looser spec pulls gigabytes of CUDA,
# and the dependency resolution below then finds torch==2.13.0 already satisfied.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /opt/ml_assets
COPY pyproject.toml README.md dagster.yaml workspace.yaml ./
COPY ml_assets ./ml_assets
# postgres: the instance storage; k8s: the run launcher and the pod-per-step executor.
RUN pip install '.[postgres,k8s]'

RUN useradd --uid 10001 --create-home ml_assets
USER 10001
ENV ML_ASSETS_HOME=/data
EXPOSE 3030
# The chart's user deployment runs `dagster api grpc -h 0.0.0.0 -p 3030 -m ml_assets.definitions`
# itself; this default makes `docker run` of the image do the same.
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "3030", "-m", "ml_assets.definitions"]
