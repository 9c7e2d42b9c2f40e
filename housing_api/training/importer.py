"""Import a pickled model from Sound Realty's own training script.

The only place pickle is loaded: an operator names a local file on the
command line. The model is converted to skops on the way in.
"""
import json
import pickle  # nosec B403 - operator-only import of a local file (docstring)
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import formats
from ..inference.demographics import Demographics
from ..inference.features import get_feature_set
from ..store import DEMOGRAPHICS, InvalidModelError, VersionStore, check_predictions
from .data import DEMOGRAPHICS_CSV, Sales, read_examples, take
from .metrics import calibrate_interval, input_ranges, regression_metrics
from .train import library_versions


def import_pickle(pickle_path: Path, features_path: Path, data_dir: Path,
                  store: VersionStore) -> str:
    """Store the pickled estimator as a new (inactive) version."""
    try:
        with open(pickle_path, "rb") as f:
            model = pickle.load(f)  # nosec B301 - an operator-named file, see docstring
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError,
            ValueError, TypeError) as exc:
        raise InvalidModelError(f"{pickle_path} is not a loadable pickle: {exc}")
    if not callable(getattr(model, "predict", None)):
        raise InvalidModelError(f"{pickle_path} holds no model with predict()")
    demographics = Demographics.from_csv(data_dir / DEMOGRAPHICS_CSV)
    feature_set = get_feature_set("reference")
    try:
        features = json.loads(Path(features_path).read_text())
    except ValueError as exc:
        raise InvalidModelError(f"{features_path} is not JSON: {exc}") from None
    if features != feature_set.names(demographics):
        raise InvalidModelError(
            "model_features.json does not list the reference features "
            "(7 sales columns, then the demographics columns)"
        )
    _forget_feature_names(model, features)
    sales = Sales.read(data_dir)
    X = feature_set.transform(sales.columns, demographics)
    train, holdout = sales.split()
    y = sales.price
    # The script's model was fitted on the train split, so its in-sample
    # residuals are optimistic; calibrate on the holdout instead.
    try:
        holdout_pred = np.asarray(model.predict(X[holdout]), dtype=np.float64)
        train_pred = np.asarray(model.predict(X[train]), dtype=np.float64)
    except Exception as exc:
        raise InvalidModelError(
            f"the model cannot predict the reference features: {exc}") from exc
    metadata = {
        "name": "imported-" + type(model).__name__.lower(),
        "algorithm": repr(model),
        "feature_set": feature_set.name,
        "features": features,
        "inputs": list(feature_set.inputs),
        "metrics": {
            "holdout": regression_metrics(y[holdout], holdout_pred),
            "train": regression_metrics(y[train], train_pred),
            "protocol": "train_test_split(random_state=42), 25% holdout",
        },
        "interval": calibrate_interval(holdout_pred, y[holdout]),
        "input_ranges": input_ranges(take(sales.columns, train)),
        "artifact": {"file": "model.skops", "format": "skops"},
        "library_versions": library_versions(),
        "training_data_sha256": sales.sha256,
        "imported_from": str(pickle_path),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    files = {
        "model.skops": formats.dump_skops(model),
        DEMOGRAPHICS: (data_dir / DEMOGRAPHICS_CSV).read_bytes(),
    }
    return store.publish(files, metadata,
                         check=check_predictions(read_examples(data_dir)))


def _forget_feature_names(model, features: list[str]) -> None:
    """Check the column names a DataFrame-fitted model saw, then drop them.

    The script fits on a DataFrame; the service passes a numpy matrix in
    ``features`` order, on which such a model warns at every prediction.
    """
    steps = [step for _, step in getattr(model, "steps", [])] or [model]
    for step in steps:
        names = getattr(step, "__dict__", {}).get("feature_names_in_")
        if names is None:
            continue
        if list(names) != features:
            raise InvalidModelError(
                f"the model was fitted on columns {list(names)}, not on the "
                f"features in model_features.json")
        del step.feature_names_in_
