#!/bin/sh
# Start the service the same way everywhere (make serve, the container, CI):
# train a first model if the folder store holds none, migrate the database, give
# Prometheus a clean multiprocess folder, then exec Gunicorn so it receives
# signals directly.
set -eu

: "${HOUSING_MODEL_DIR:=model}"
export HOUSING_MODEL_DIR

# An object store (HOUSING_MODEL_STORE=s3://...) is filled on purpose, by
# `housing-api models copy` or `housing-api train`, not by every replica
# that starts: until it holds a version, readiness answers 503. (This reads
# the environment, not instance/config.py: set it there for an object store.)
if [ -z "${HOUSING_MODEL_STORE:-}" ] \
        && [ -z "$(ls -A "$HOUSING_MODEL_DIR/versions" 2>/dev/null)" ]; then
    echo "entrypoint: no model version in $HOUSING_MODEL_DIR, training one" >&2
    # The CLI is not a Gunicorn worker: keep its metrics out of the
    # workers' folder (which may not exist yet).
    env -u PROMETHEUS_MULTIPROC_DIR housing-api train
fi

# The prediction log's schema, before any worker writes to it. Safe when
# several replicas start at once (an advisory lock on PostgreSQL, a file
# lock beside a SQLite file).
env -u PROMETHEUS_MULTIPROC_DIR housing-api db upgrade

# Metric files of a previous run would be summed into this one's: wipe them
# here, before Python starts (not in a Gunicorn hook, which runs too late).
: "${PROMETHEUS_MULTIPROC_DIR:=${TMPDIR:-/tmp}/housing-api-metrics}"
case "$PROMETHEUS_MULTIPROC_DIR" in
    "" | "/") echo "entrypoint: refusing PROMETHEUS_MULTIPROC_DIR='$PROMETHEUS_MULTIPROC_DIR'" >&2; exit 2 ;;
esac
rm -rf "$PROMETHEUS_MULTIPROC_DIR"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
export PROMETHEUS_MULTIPROC_DIR

exec gunicorn --config "${GUNICORN_CONFIG:-gunicorn.conf.py}" "$@"
