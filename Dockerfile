# syntax=docker/dockerfile:1
# Loopline's image: one entrypoint, `loopline`, for the predictor (`loopline serve`) and every job
# (materialize, monitor, retrain, rollout). Two stages: a build stage that installs the locked
# dependencies into a virtualenv, and a slim runtime that gets only that virtualenv and the feature
# repo's definitions: no compilers, no pip cache, no build context, a non-root user.
#
#   docker build -t loopline:dev --build-arg CODE_COMMIT="$(git rev-parse HEAD)" .
#
# tests/k8s/test_image.py runs this file's COPY and RUN steps in a fresh virtualenv without Docker.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# PyTorch's CPU wheels: the default ones bundle CUDA, gigabytes a CPU predictor never loads.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY services/ services/
RUN python -m venv /opt/loopline \
 && /opt/loopline/bin/pip install --constraint requirements.lock --extra-index-url "${TORCH_INDEX_URL}" . \
 && /opt/loopline/bin/pip check

FROM ${PYTHON_IMAGE} AS runtime
ARG CODE_COMMIT=unknown
RUN groupadd --system --gid 10001 loopline \
 && useradd --system --uid 10001 --gid loopline --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin loopline \
 && mkdir -p /var/lib/loopline /var/run/loopline \
 && chown loopline:loopline /var/lib/loopline /var/run/loopline
COPY --from=build /opt/loopline /opt/loopline
# The feature repo's definitions and configs; its data/ is on a volume (see .dockerignore).
COPY feature_repo/ /app/feature_repo/
ENV PATH=/opt/loopline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    BENTOML_HOME=/tmp/bentoml \
    BENTOML_DO_NOT_TRACK=true \
    LOOPLINE_HOME=/var/lib/loopline/home \
    LOOPLINE_FEATURE_REPO=/app/feature_repo \
    LOOPLINE_MODEL_PATH=/mnt/models \
    LOOPLINE_CODE_COMMIT=${CODE_COMMIT}
WORKDIR /app
USER 10001:10001
# OIP v2 REST, health routes and /metrics; OIP v2 gRPC (h2c).
EXPOSE 3000 8081
ENTRYPOINT ["loopline"]
CMD ["serve", "--port", "3000", "--grpc-port", "8081"]
