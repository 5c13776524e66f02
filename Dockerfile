# textclf service image: `docker build -t textclf .` then
#   docker run -p 8000:8000 -v $PWD/models/20ng:/models/model:ro textclf
# The model folder is mounted, not baked in: models are data, and a new one is served by
# replacing the folder and sending SIGHUP (or POST /v1/admin/reload), without a rebuild.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Point this at PyTorch's CPU-only wheel index to keep the image small (the default index's
# Linux torch wheels pull several GB of CUDA libraries); leave empty to use the default index.
ARG TORCH_INDEX_URL=""
ARG TORCH_VERSION=2.13.0

WORKDIR /app
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install "torch==${TORCH_VERSION}" --index-url "$TORCH_INDEX_URL"; \
    else \
        pip install "torch==${TORCH_VERSION}"; \
    fi

COPY pyproject.toml README.md ./
COPY textclf ./textclf
COPY service ./service
COPY training ./training
# The `serve` extra: the model stack and the web server, without the training-only plotting.
# DL3013 (pin versions) does not fit installing this checkout: pyproject.toml bounds its
# dependencies. tests/deploy/test_dockerfile.py keeps the file hadolint-clean otherwise.
# hadolint ignore=DL3013
RUN pip install ".[serve]" \
    && groupadd --gid 10001 textclf \
    && useradd --create-home --uid 10001 --gid 10001 textclf

# Numeric, so Kubernetes' runAsNonRoot can check it (deploy/kubernetes/deployment.yaml).
USER 10001:10001
ENV TEXTCLF_MODEL_PATH=/models/model
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
# `exec` replaces the shell, so the server is PID 1 and receives `docker stop`'s SIGTERM itself,
# draining in-flight requests before it exits.
CMD ["sh", "-c", "exec textclf serve \"$TEXTCLF_MODEL_PATH\" --host 0.0.0.0 --port 8000 --workers ${TEXTCLF_WORKERS:-1}"]
