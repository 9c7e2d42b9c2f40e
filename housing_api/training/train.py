"""Train model versions from the CSVs in the data folder."""
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import RobustScaler

from .. import formats
from ..inference.comparables import SALES_FILE, TrainingSales
from ..inference.demographics import Demographics
from ..inference.features import get_feature_set
from ..inference.market import sale_months
from ..inference.predictor import Predictor
from ..ops import progress
from ..store import DEMOGRAPHICS, VersionStore, check_predictions
from .data import DEMOGRAPHICS_CSV, SPLIT_SEED, Sales, read_examples, take
from .metrics import (
    calibrate_interval, input_ranges, regression_metrics, training_distribution,
)


def library_versions() -> dict:
    return {"python": platform.python_version(), "numpy": np.__version__,
            "pandas": pd.__version__, "scikit-learn": sklearn.__version__}


def reference_pipeline():
    """Sound Realty's reference estimator, exactly as their script builds it."""
    return make_pipeline(RobustScaler(), KNeighborsRegressor())


@dataclass
class Fitted:
    """A model fitted on some rows: its files and metadata, and a predictor."""

    files: dict
    metadata: dict
    predictor: Predictor


def fitted(files, metadata, estimator, feature_set, demographics, sales, rows,
           context=None):
    """Complete the metadata every version has and wrap it in a Fitted."""
    metadata = {
        **metadata,
        "feature_set": feature_set.name,
        "features": feature_set.names(demographics),
        "inputs": list(feature_set.inputs),
        "input_ranges": input_ranges(take(sales.columns, rows)),
    }
    # The training sales, row for row: comparable sales for explanations,
    # and the k-NN's neighbours.
    trained_on = TrainingSales.from_columns(
        take(sales.columns, rows), sales.price[rows],
        sales.frame["date"].to_numpy()[rows])
    predictor = Predictor(version="unsaved", metadata=metadata, estimator=estimator,
                          feature_set=feature_set, demographics=demographics,
                          context=context, sales=trained_on)
    return Fitted({**files, SALES_FILE: trained_on.to_npz()}, metadata, predictor)


def fit_reference(sales: Sales, demographics: Demographics, rows: np.ndarray,
                  params: dict | None = None, companion: bool = True) -> Fitted:
    """Fit the reference pipeline on ``rows`` of ``sales`` (no parameters).

    It reads only the minimal inputs, so it needs no ``companion``.
    """
    feature_set = get_feature_set("reference")
    X = feature_set.transform(take(sales.columns, rows), demographics)
    y = sales.price[rows]
    with progress.steps("reference model: the model, then 5 folds for its "
                        "interval", total=2) as bar:
        model = reference_pipeline().fit(X, y)
        bar.update(postfix="model fitted")
        oof = cross_val_predict(clone(model), X, y,
                                cv=KFold(5, shuffle=True, random_state=SPLIT_SEED))
        bar.update(postfix="folds done")
    metadata = {
        "name": "reference-knn",
        "algorithm": "make_pipeline(RobustScaler(), KNeighborsRegressor())",
        "interval": calibrate_interval(oof, y),
        "artifact": {"file": "model.skops", "format": "skops"},
    }
    return fitted({"model.skops": formats.dump_skops(model)}, metadata, model,
                  feature_set, demographics, sales, rows)


def fit_lightgbm(sales: Sales, demographics: Demographics, rows: np.ndarray,
                 params: dict | None = None, companion: bool = True) -> Fitted:
    """Fit the boosted model (see ``boosting``) on ``rows`` of ``sales``.

    With ``companion``, the minimal companion (see ``minimal``) too, which
    answers ``/v1/predict/minimal`` for the version.
    """
    from . import boosting

    feature_set = get_feature_set("engineered-v1")
    data = boosting.TrainingData.from_sales(sales, demographics, rows)
    params = dict(boosting.DEFAULT_PARAMS if params is None else params)
    fit = boosting.fit(data, params)
    metadata = {
        "name": "lightgbm-neighbourhood",
        "algorithm": "LightGBM on log price per sq ft: client columns, "
                     "demographics, engineered and out-of-fold neighbourhood "
                     "price features",
        "hyperparameters": params,
        "target": "log_price_per_sqft",
        # Estimates "now" are at the latest month's level; as of a month,
        # at that month's (with the narrower interval of a known market).
        "market_index": fit.market.to_dict(),
        "interval": fit.interval,
        "interval_as_of": fit.interval_as_of,
        "artifact": {"file": "model.lgb.txt", "format": "lightgbm"},
    }
    files = {"model.lgb.txt": formats.dump_lightgbm(fit.booster),
             feature_set.context_file: fit.context.to_npz()}
    minimal = fit_minimal(data, demographics) if companion else None
    if minimal is not None:
        files.update(minimal.files)
        metadata["companions"] = {"minimal": minimal.metadata}
    result = fitted(files, metadata, formats.LightGBMRegressor(fit.booster),
                    feature_set, demographics, sales, rows, fit.context)
    if minimal is not None:
        result.predictor.minimal = Predictor(
            version="unsaved", metadata=minimal.metadata,
            estimator=minimal.estimator, feature_set=minimal.feature_set,
            demographics=demographics, context=minimal.context,
            sales=result.predictor.sales)
    return result


@dataclass
class Companion:
    """A minimal companion's files and metadata, and what serving it needs."""

    files: dict
    metadata: dict
    estimator: object
    feature_set: object
    context: object


def fit_minimal(data, demographics: Demographics) -> Companion:
    """Fit the minimal companion on the boosted model's training data."""
    from . import boosting
    from .minimal import MINIMAL, MINIMAL_PARAMS

    feature_set = get_feature_set("minimal-v1")
    fit = boosting.fit(data, MINIMAL_PARAMS, recipe=MINIMAL)
    metadata = {
        "name": "lightgbm-minimal",
        "variant": "minimal",
        "algorithm": "LightGBM on log price per sq ft: the 7 sales columns, the "
                     "zipcode, its demographics and out-of-fold zipcode price "
                     "features",
        "hyperparameters": MINIMAL_PARAMS,
        "target": "log_price_per_sqft",
        "market_index": fit.market.to_dict(),
        "interval": fit.interval,
        "interval_as_of": fit.interval_as_of,
        "artifact": {"file": "minimal.lgb.txt", "format": "lightgbm"},
        "feature_set": feature_set.name,
        "features": feature_set.names(demographics),
        "inputs": list(feature_set.inputs),
        "input_ranges": input_ranges({n: data.columns[n]
                                      for n in feature_set.inputs}),
    }
    files = {"minimal.lgb.txt": formats.dump_lightgbm(fit.booster),
             feature_set.context_file: fit.context.to_npz()}
    return Companion(files, metadata, formats.LightGBMRegressor(fit.booster),
                     feature_set, fit.context)


ALGORITHMS = {"reference": fit_reference, "lightgbm": fit_lightgbm}


def build_version(data_dir: Path, algorithm: str = "reference",
                  reported: dict | None = None) -> tuple[dict, dict]:
    """Fit ``algorithm`` on Sound Realty's split; return (files, metadata).

    ``reported`` (sales reported back, see ``Sales.with_reported``) adds to
    the training rows only: the holdout stays Sound Realty's, so versions
    trained with and without them compare on the same homes.
    """
    data_dir = Path(data_dir)
    sales = Sales.read(data_dir)
    demographics = Demographics.from_csv(data_dir / DEMOGRAPHICS_CSV)
    train, holdout = sales.split()
    extra = None
    if reported is not None:
        sales, added, extra = sales.with_reported(reported)
        train = np.concatenate([train, added])
    fit = ALGORITHMS[algorithm](sales, demographics, train)
    fit.metadata["trainer"] = algorithm
    if extra is not None:
        fit.metadata["reported_sales"] = extra

    def metrics(rows, result):
        y = sales.price[rows]
        inside = (y >= result.lower) & (y <= result.upper)
        return {**regression_metrics(y, result.price),
                "coverage": float(inside.mean())}

    def predict(rows, predictor=fit.predictor):
        # Each home as of its own sale, where the version knows the market.
        months = sale_months(sales.frame["date"].to_numpy()[rows])
        columns = take(sales.columns, rows)
        return predictor.predict(
            {name: columns[name] for name in predictor.inputs},
            months if predictor.market is not None else None)

    def holdout_metrics(predictor):
        return {"holdout": metrics(holdout, predict(holdout, predictor)),
                "train": metrics(train, predict(train, predictor)),
                "protocol": "train_test_split(random_state=42), 25% holdout"
                            + (", each home as of its sale month"
                               if predictor.market is not None else "")}

    train_columns = take(sales.columns, train)
    with progress.steps(f"{fit.metadata['name']}: holdout and training metrics"):
        if fit.predictor.minimal is not None:
            fit.metadata["companions"]["minimal"]["metrics"] = holdout_metrics(
                fit.predictor.minimal)
        measured = holdout_metrics(fit.predictor)
    metadata = {
        **fit.metadata,
        "metrics": measured,
        # What drift is measured against (GET /v1/model/drift).
        # Live estimates are "now": compare them with the same on training.
        "training_distribution": training_distribution(
            train_columns, fit.predictor.predict(train_columns).price),
        "library_versions": library_versions(),
        "training_data_sha256": sales.sha256,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    files = {**fit.files, DEMOGRAPHICS: (data_dir / DEMOGRAPHICS_CSV).read_bytes()}
    return files, metadata


def train_version(data_dir: Path, store: VersionStore, algorithm: str = "reference",
                  reported: dict | None = None) -> tuple[str, dict]:
    """Train ``algorithm`` and store it as a new, inactive version."""
    files, metadata = build_version(data_dir, algorithm, reported)
    version = store.publish(files, metadata,
                            check=check_predictions(read_examples(data_dir)))
    return version, store.metadata(version)


def promotion_decision(store: VersionStore, metadata: dict) -> tuple[bool, str]:
    """Promote only if holdout R2 and MAPE are no worse than the active's."""
    current = store.current()
    if current is None:
        return True, "no version was active"
    new = metadata["metrics"]["holdout"]
    old = store.metadata(current)["metrics"]["holdout"]
    verdict = new["r2"] >= old["r2"] and new["mape"] <= old["mape"]
    return verdict, (
        f"holdout R2 {new['r2']:.4f} vs {old['r2']:.4f} and MAPE "
        f"{new['mape']:.2%} vs {old['mape']:.2%} of active {current}: "
        + ("no worse, promoted" if verdict else "worse, not promoted")
    )
