"""Paths, the two models, the targets and the progress line, shared."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "data"
LUA = HERE / "post_rows.lua"
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
CEILING_APP = "bench.ceiling:create_app()"
#: The stricter reference row: hello-JSON Flask on bare Gunicorn (hello.py).
HELLO_APP = "bench.hello:app"
HELLO = "hello-JSON Flask, bare Gunicorn"

REFERENCE = "reference-knn"
BOOSTED = "lightgbm-neighbourhood"
MODELS = (REFERENCE, BOOSTED)
LABELS = {REFERENCE: "reference (k-NN)", BOOSTED: "boosted (LightGBM)"}

#: The targets (issue 16's for throughput, latency, batches and memory, at
#: the production defaults; issue 6's for start-up and activation).
MIN_PREDICT_RATIO = {REFERENCE: 0.6, BOOSTED: 0.5}
MAX_P99_RATIO = 2.5
#: What the limiter, the key check and the prediction log may cost together.
MAX_PARTS_COST = 0.10
MIN_BATCH_RATIO = 0.9
MAX_EXTRA_USS_MB = 15.0
MAX_READY_S = 3.0
MAX_ACTIVATION_S = 3.0
#: housing-api score (issue 19): rows/s against in-process batch predict,
#: and what 1,000,000 homes may take beyond 10,000.
MIN_SCORE_RATIO = 0.9
MAX_SCORE_EXTRA_MB = 100.0

#: Requests that must name the new version in a row, each on a new
#: connection, before an activation counts as converged.
CONVERGED_STREAK = 20
MB = 1e6


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
