"""How good a model is on sales it did not see: errors, intervals, input ranges."""
import numpy as np

from ..inference.columns import NUMERIC_COLUMNS
from ..inference.distribution import categorical_distribution, numeric_distribution

INTERVAL_LEVEL = 0.8


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict:
    """R2, MAE, RMSE, MAPE, median APE and bias (mean signed % error)."""
    err = pred - y
    ape = np.abs(err) / y
    return {
        "r2": float(1 - np.sum(err**2) / np.sum((y - y.mean()) ** 2)),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mape": float(np.mean(ape)),
        "median_ape": float(np.median(ape)),
        "bias": float(np.mean(err / y)),
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


def training_distribution(columns: dict, price) -> dict:
    """Each client input's distribution in training, and the predicted price's."""
    return {
        "n": len(price),
        "inputs": {name: numeric_distribution(columns[name])
                   for name in NUMERIC_COLUMNS if name in columns},
        "zipcode": categorical_distribution(columns["zipcode"]),
        "price": numeric_distribution(price),
    }
