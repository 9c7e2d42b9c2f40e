#!/bin/sh
# The smoke test the way CI uses it: freshly trained models in a temporary
# folder, real Gunicorn with 2 workers on a free loopback port, every future
# example posted and checked, each one reported back as a sale and the live
# figures checked, then a clean stop.
set -eu

tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

export HOUSING_MODEL_DIR="$tmp/model"
# Its own instance folder: the prediction log's SQLite file and spool.
export HOUSING_INSTANCE_PATH="$tmp/instance"
unset PROMETHEUS_MULTIPROC_DIR
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The store starts empty: the entrypoint trains the default models into it,
# as on a first 'make serve', except that the boosted trees are served
# through LightGBM and so not compiled: compiling takes about 5 minutes here,
# and tests/inference/test_compiled.py trains, compiles and serves them.
export HOUSING_COMPILED_TREES=false
# The default limits: the smoke client keeps to them (it waits when a
# window is used up, and retries a 429 after its Retry-After).
WEB_CONCURRENCY=2 GUNICORN_CMD_ARGS="--bind 127.0.0.1:$port" \
    PROMETHEUS_MULTIPROC_DIR="$tmp/metrics" deploy/entrypoint.sh >"$tmp/gunicorn.log" 2>&1 &
pid=$!

if ! housing-api smoke --url "http://127.0.0.1:$port" --wait 900 --report-sales; then
    echo "--- gunicorn log ---" >&2
    cat "$tmp/gunicorn.log" >&2
    exit 1
fi
