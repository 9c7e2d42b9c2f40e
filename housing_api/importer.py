"""Import a pickled model from Sound Realty's own training script.

The only place pickle is loaded: an operator names a local file on the
command line. The model is converted to skops on the way in.
"""
import json
import pickle
from datetime import datetime, timezone
from pathlib import Path

from . import artifacts
from .features import Demographics, get_feature_set
from .model_store import DEMOGRAPHICS, InvalidModelError, ModelStore, check_predictions
from .training import (
    DEMOGRAPHICS_CSV, Sales, calibrate_interval, input_ranges, library_versions,
    read_examples, regression_metrics, take,
)


def import_pickle(pickle_path: Path, features_path: Path, data_dir: Path,
                  store: ModelStore) -> str:
    """Store the pickled estimator as a new (inactive) version."""
    with open(pickle_path, "rb") as f:
        model = pickle.load(f)  # noqa: S301 - trusted local file, see docstring
    demographics = Demographics.from_csv(data_dir / DEMOGRAPHICS_CSV)
    feature_set = get_feature_set("reference")
    features = json.loads(Path(features_path).read_text())
    if features != feature_set.names(demographics):
        raise InvalidModelError(
            "model_features.json does not list the reference features "
            "(7 sales columns, then the demographics columns)"
        )
    sales = Sales.read(data_dir)
    X = feature_set.transform(sales.columns, demographics)
    train, holdout = sales.split()
    y = sales.price
    # The script's model was fitted on the train split, so its in-sample
    # residuals are optimistic; calibrate on the holdout instead.
    holdout_pred = model.predict(X[holdout])
    metadata = {
        "name": "imported-" + type(model).__name__.lower(),
        "algorithm": repr(model),
        "feature_set": feature_set.name,
        "features": features,
        "inputs": list(feature_set.inputs),
        "metrics": {
            "holdout": regression_metrics(y[holdout], holdout_pred),
            "train": regression_metrics(y[train], model.predict(X[train])),
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
        "model.skops": artifacts.dump_skops(model),
        DEMOGRAPHICS: (data_dir / DEMOGRAPHICS_CSV).read_bytes(),
    }
    return store.publish(files, metadata,
                         check=check_predictions(read_examples(data_dir)))
