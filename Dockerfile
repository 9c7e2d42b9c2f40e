# syntax=docker/dockerfile:1
# Sound Realty house-price service.
#
#   docker build -t housing-api:1.0.0 .
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp -v housing-model:/app/model \
#       -v housing-var:/app/var housing-api:1.0.0
#
# A first model is trained into /app/model at build time; build with
# --build-arg TRAIN_MODEL=false when the store comes from a volume instead
# (Kubernetes mounts a shared one there). See deploy/README.md.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from setup.cfg alone, so that a code change does not
# reinstall them.
COPY pyproject.toml setup.cfg ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import configparser; c = configparser.ConfigParser(); \
c.read('setup.cfg'); print(c['options']['install_requires'])" > requirements.txt \
    && pip install -r requirements.txt
COPY housing_api ./housing_api
RUN --mount=type=cache,target=/root/.cache/pip pip install --no-deps .

FROM ${PYTHON_IMAGE} AS runtime
# LightGBM's wheel links the system OpenMP runtime, absent from slim images.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app \
       --no-create-home --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv

# The package is installed, not editable: Flask would look for instance/
# inside the venv, so name it. OMP_NUM_THREADS also covers `housing-api
# train` and training jobs, which do not go through gunicorn.conf.py.
# /tmp is meant to be a tmpfs (compose `tmpfs`, Kubernetes emptyDir). HOME
# points there since the root filesystem may be read-only and Gunicorn puts
# its control socket under ~/.gunicorn. PROMETHEUS_MULTIPROC_DIR is left to
# the entrypoint (/tmp/housing-api-metrics, wiped on every start and set for
# Gunicorn only): CLI commands run with `docker exec` or `kubectl exec` must
# not leave their samples among the workers'.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=1 \
    HOUSING_INSTANCE_PATH=/app/instance \
    HOUSING_MODEL_DIR=/app/model \
    HOUSING_DATA_DIR=/app/data \
    HOUSING_DATABASE_URL=sqlite:////app/var/housing.db \
    HOUSING_PREDICTION_LOG_SPOOL_DIR=/app/var/spool \
    HOUSING_JOBS_DIR=/app/var/jobs \
    GUNICORN_CMD_ARGS="--bind 0.0.0.0:8000"

WORKDIR /app
# Code and data stay owned by root, read-only to the service; only the
# model store and var/ (the embedded SQLite database and the prediction log's
# spool; compose and Kubernetes use PostgreSQL) belong to it.
COPY gunicorn.conf.py wsgi.py ./
COPY deploy/entrypoint.sh deploy/entrypoint.sh
COPY data ./data
RUN mkdir -p instance model var/spool var/jobs \
    && chown app:app model var var/spool var/jobs

USER 10001:10001
ARG TRAIN_MODEL=true
RUN if [ "$TRAIN_MODEL" = true ]; then housing-api train; fi

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"]
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
