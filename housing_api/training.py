"""Train model versions from the CSVs in the data folder."""
import hashlib
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_val_predict, train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import RobustScaler

from . import artifacts
from .features import NUMERIC_COLUMNS, Demographics, get_feature_set
from .model_store import DEMOGRAPHICS, ModelStore, check_predictions
from .predictor import Predictor

SALES_CSV = "kc_house_data.csv"
DEMOGRAPHICS_CSV = "zipcode_demographics.csv"
EXAMPLES_CSV = "future_unseen_examples.csv"
#: Sound Realty's split: 25% holdout, this seed.
SPLIT_SEED = 42
INTERVAL_LEVEL = 0.8


@dataclass
class Sales:
    """King County sales as client columns plus what training needs."""

    frame: pd.DataFrame
    columns: dict
    price: np.ndarray
    sha256: str

    @classmethod
    def read(cls, data_dir: Path) -> "Sales":
        path = Path(data_dir) / SALES_CSV
        frame = pd.read_csv(path, dtype={"zipcode": str})
        return cls(frame, frame_columns(frame), frame["price"].to_numpy(float),
                   hashlib.sha256(path.read_bytes()).hexdigest())

    def split(self):
        """Return (train, holdout) row indices of Sound Realty's split."""
        return train_test_split(np.arange(len(self.price)), random_state=SPLIT_SEED)


def frame_columns(frame: pd.DataFrame) -> dict:
    """Return the client columns of ``frame`` as numpy arrays."""
    columns = {c: frame[c].to_numpy(np.float64) for c in NUMERIC_COLUMNS if c in frame}
    columns["zipcode"] = frame["zipcode"].astype(str).tolist()
    return columns


def take(columns: dict, rows: np.ndarray) -> dict:
    """Return the ``rows`` of every column."""
    return {
        name: (np.asarray(values)[rows] if name != "zipcode"
               else [values[i] for i in rows])
        for name, values in columns.items()
    }


def read_examples(data_dir: Path) -> dict:
    """Return the future examples as client columns."""
    frame = pd.read_csv(Path(data_dir) / EXAMPLES_CSV, dtype={"zipcode": str})
    return frame_columns(frame)


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict:
    """R2, MAE, RMSE, MAPE and median APE of ``pred`` against ``y``."""
    err = pred - y
    ape = np.abs(err) / y
    return {
        "r2": float(1 - np.sum(err**2) / np.sum((y - y.mean()) ** 2)),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mape": float(np.mean(ape)),
        "median_ape": float(np.median(ape)),
        "n": int(len(y)),
    }


def calibrate_interval(pred, y, level=INTERVAL_LEVEL, bands=3) -> dict:
    """Fit a multiplicative interval per predicted-price band.

    ``pred`` must be out-of-fold predictions: residual quantiles of
    in-sample predictions are too narrow. Bands split at terciles of
    ``pred`` (split-conformal by band).
    """
    edges = np.quantile(pred, np.arange(1, bands) / bands)
    band = np.searchsorted(edges, pred, side="right")
    log_ratio = np.log(y / pred)
    alpha = (1 - level) / 2
    lower, upper = [], []
    for b in range(bands):
        r = log_ratio[band == b]
        lower.append(float(np.quantile(r, alpha)))
        upper.append(float(np.quantile(r, 1 - alpha)))
    return {"level": level, "edges": edges.tolist(), "lower": lower, "upper": upper,
            "method": "split-conformal on 5-fold out-of-fold log ratios, "
                      "by predicted-price tercile"}


def input_ranges(columns: dict) -> dict:
    """Smallest and largest value of each numeric client column."""
    return {
        c: [float(np.min(columns[c])), float(np.max(columns[c]))]
        for c in NUMERIC_COLUMNS if c in columns
    }


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
    predictor = Predictor(version="unsaved", metadata=metadata, estimator=estimator,
                          feature_set=feature_set, demographics=demographics,
                          context=context)
    return Fitted(files, metadata, predictor)


def fit_reference(sales: Sales, demographics: Demographics, rows: np.ndarray,
                  params: dict | None = None) -> Fitted:
    """Fit the reference pipeline on ``rows`` of ``sales`` (no parameters)."""
    feature_set = get_feature_set("reference")
    X = feature_set.transform(take(sales.columns, rows), demographics)
    y = sales.price[rows]
    model = reference_pipeline().fit(X, y)
    oof = cross_val_predict(clone(model), X, y,
                            cv=KFold(5, shuffle=True, random_state=SPLIT_SEED))
    metadata = {
        "name": "reference-knn",
        "algorithm": "make_pipeline(RobustScaler(), KNeighborsRegressor())",
        "interval": calibrate_interval(oof, y),
        "artifact": {"file": "model.skops", "format": "skops"},
    }
    return fitted({"model.skops": artifacts.dump_skops(model)}, metadata, model,
                  feature_set, demographics, sales, rows)


def fit_lightgbm(sales: Sales, demographics: Demographics, rows: np.ndarray,
                 params: dict | None = None) -> Fitted:
    """Fit the boosted model (see ``boosting``) on ``rows`` of ``sales``."""
    from . import boosting

    feature_set = get_feature_set("engineered-v1")
    columns = take(sales.columns, rows)
    data = boosting.TrainingData(
        columns, demographics.rows(columns["zipcode"]), demographics.columns,
        np.log(sales.price[rows]), sales.frame["id"].to_numpy()[rows])
    params = dict(boosting.DEFAULT_PARAMS if params is None else params)
    booster, context, interval = boosting.fit(data, params)
    metadata = {
        "name": "lightgbm-neighbourhood",
        "algorithm": "LightGBM on log price per sq ft: client columns, "
                     "demographics, engineered and out-of-fold neighbourhood "
                     "price features",
        "hyperparameters": params,
        "target": "log_price_per_sqft",
        "interval": interval,
        "artifact": {"file": "model.lgb.txt", "format": "lightgbm"},
    }
    files = {"model.lgb.txt": artifacts.dump_lightgbm(booster),
             feature_set.context_file: context.to_npz()}
    return fitted(files, metadata, artifacts.LightGBMRegressor(booster),
                  feature_set, demographics, sales, rows, context)


ALGORITHMS = {"reference": fit_reference, "lightgbm": fit_lightgbm}


def build_version(data_dir: Path, algorithm: str = "reference") -> tuple[dict, dict]:
    """Fit ``algorithm`` on Sound Realty's split; return (files, metadata)."""
    data_dir = Path(data_dir)
    sales = Sales.read(data_dir)
    demographics = Demographics.from_csv(data_dir / DEMOGRAPHICS_CSV)
    train, holdout = sales.split()
    fit = ALGORITHMS[algorithm](sales, demographics, train)
    fit.metadata["trainer"] = algorithm

    def metrics(rows):
        price = fit.predictor.predict(take(sales.columns, rows)).price
        return regression_metrics(sales.price[rows], price)

    metadata = {
        **fit.metadata,
        "metrics": {"holdout": metrics(holdout), "train": metrics(train),
                    "protocol": "train_test_split(random_state=42), 25% holdout"},
        "library_versions": library_versions(),
        "training_data_sha256": sales.sha256,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    files = {**fit.files, DEMOGRAPHICS: (data_dir / DEMOGRAPHICS_CSV).read_bytes()}
    return files, metadata


def train_version(data_dir: Path, store: ModelStore,
                  algorithm: str = "reference") -> tuple[str, dict]:
    """Train ``algorithm`` and store it as a new, inactive version."""
    files, metadata = build_version(data_dir, algorithm)
    version = store.publish(files, metadata,
                            check=check_predictions(read_examples(data_dir)))
    return version, store.metadata(version)


def promotion_decision(store: ModelStore, metadata: dict) -> tuple[bool, str]:
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
