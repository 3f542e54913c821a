# syntax=docker/dockerfile:1
# The scoring endpoint image (deploy/k8s/endpoint.yaml): `python -m ml_assets.serving`, the
# ASGI app on uvicorn that never imports Dagster. It reads the champion from the MLflow
# registry and features from the online store, both named by ml-assets-env.
# Build from the repository root:
#   docker build -f deploy/docker/endpoint.Dockerfile -t ml-assets-endpoint:$(git rev-parse --short HEAD) .
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# libgomp1: the OpenMP runtime LightGBM needs.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
# torch first, the CPU wheel from PyTorch's CPU index (the student model is a torch MLP): any
# looser spec pulls gigabytes of CUDA.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /opt/ml_assets
COPY pyproject.toml README.md ./
COPY ml_assets ./ml_assets
RUN pip install .

RUN useradd --uid 10001 --create-home ml_assets
USER 10001
ENV ML_ASSETS_HOME=/data
EXPOSE 8000
ENTRYPOINT ["python", "-m", "ml_assets.serving"]
CMD ["--host", "0.0.0.0", "--port", "8000"]
