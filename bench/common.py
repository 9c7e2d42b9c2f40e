"""Paths, the two models, issue 6's targets and the progress line, shared."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "data"
LUA = HERE / "post_rows.lua"
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
CEILING_APP = "bench.ceiling:create_app()"

REFERENCE = "reference-knn"
BOOSTED = "lightgbm-neighbourhood"
MODELS = (REFERENCE, BOOSTED)
LABELS = {REFERENCE: "reference (k-NN)", BOOSTED: "boosted (LightGBM)"}

#: Issue 6's targets.
MIN_PREDICT_RATIO = 0.5
MAX_P99_RATIO = 2.0
MIN_BATCH_RATIO = 0.8
MAX_EXTRA_USS_MB = 15.0
MAX_READY_S = 3.0
MAX_ACTIVATION_S = 3.0

#: Requests that must name the new version in a row, each on a new
#: connection, before an activation counts as converged.
CONVERGED_STREAK = 20
MB = 1e6


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
