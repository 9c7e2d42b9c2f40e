"""Why a price: per-input effects in dollars, or the sales a k-NN averaged.

Two explainers, one per model family (``docs/explanations.md`` says how to
read them):

- :class:`TreeExplainer`, for LightGBM: the library's exact TreeSHAP values
  (``pred_contrib``), one per model feature, folded back onto the client
  inputs each feature is computed from, the zipcode's demographics as one
  ``neighbourhood`` effect. A model of log price per square foot explains
  in logs; the effects become dollars by the logarithmic-mean rule
  (:func:`log_mean`), which keeps every effect's sign and their sum exact.
- :class:`NeighbourExplainer`, for Sound Realty's k-NN: its prediction is the
  (weighted) mean of its neighbours' prices, so those sales are the
  explanation, each with its share.

Every amount is in whole cents, and the parts add up to the answered
prediction exactly (:func:`split_cents`).
"""
import math
from collections.abc import Mapping, Sequence

import numpy as np

from .columns import CLIENT_COLUMNS, FRACTIONAL_COLUMNS
from .comparables import similarity
from .features.base import NEIGHBOURHOOD

#: The effect of estimating as of a month other than the latest: the
#: market's level then relative to the latest month's.
MARKET = "as_of"


def cents(amount: float) -> int:
    """An amount in USD as the API shows it (rounded to cents), in cents."""
    return round(round(float(amount), 2) * 100)


def split_cents(total: int, parts: np.ndarray) -> np.ndarray:
    """Round ``parts`` (in cents) to whole cents that add up to ``total``.

    Each part goes to the nearer of its two whole neighbours first; the
    cents still missing (or too many) go to the parts whose rounding moved
    them most the other way, so no part moves by more than it must.
    """
    parts = np.asarray(parts, dtype=np.float64)
    rounded = np.round(parts)
    short = int(total - rounded.sum())
    if short:
        error = parts - rounded  # > 0: rounded down
        order = np.argsort(-error if short > 0 else error, kind="stable")
        steps, extra = divmod(abs(short), len(parts))
        rounded += math.copysign(steps, short)
        rounded[order[:extra]] += math.copysign(1, short)
    return rounded.astype(np.int64)


def log_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The logarithmic mean ``(a - b) / (ln a - ln b)``, ``a`` where a == b.

    An effect of ``e`` in log price is worth ``e * log_mean(P, P0)`` dollars
    between the baseline ``P0`` and the prediction ``P``: the effects' sum is
    then ``P - P0``, each has the sign of its log effect, and equal log
    effects are worth equal dollars, whatever their order.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = np.log(a) - np.log(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (a - b) / diff
    return np.where(np.abs(diff) > 1e-12, mean, (a + b) / 2)


def _value(columns: Mapping, name: str, i: int):
    if name == NEIGHBOURHOOD:
        name = "zipcode"
    value = columns[name][i]
    if name in ("zipcode", MARKET):
        return str(value)
    return float(value) if name in FRACTIONAL_COLUMNS else int(value)


class TreeExplainer:
    """Exact TreeSHAP effects for a LightGBM model, in dollars.

    ``estimator`` has ``contributions(X)`` (the booster's ``pred_contrib``);
    ``fold(contributions, columns)`` turns them into one column per effect
    group (the feature set's); ``target`` is the metadata's. For a model of
    log price per square foot, the log of the living area is part of the
    price too: it joins the ``sqft_living`` effect, measured from
    ``log_sqft_mean`` (the training homes' mean), which the baseline takes.
    """

    method = "tree-shap"

    def __init__(self, estimator, fold, groups: Sequence[str], target: str,
                 log_sqft_mean: float | None = None):
        self.estimator = estimator
        self.fold = fold
        self.groups = tuple(groups)
        self.target = target
        if target == "log_price_per_sqft" and log_sqft_mean is None:
            raise ValueError("a log price per sqft model needs log_sqft_mean")
        self.log_sqft_mean = log_sqft_mean

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """TreeSHAP values: one column per feature, then the expected value."""
        return np.asarray(self.estimator.contributions(features), dtype=np.float64)

    def explain(self, features, columns, price, offsets=None, months=None
                ) -> list[dict]:
        """One explanation per home whose predicted price is ``price``.

        ``offsets`` are log market levels the prices were moved by (an
        estimate as of ``months``): they are the :data:`MARKET` effect.
        """
        phi = self.contributions(features)
        folded = self.fold(phi[:, :-1], columns)
        groups = self.groups
        if offsets is not None:
            folded = np.column_stack([folded, offsets])
            groups += (MARKET,)
            columns = {**columns, MARKET: months}
        expected = phi[:, -1]
        if self.target == "log_price_per_sqft":
            folded[:, groups.index("sqft_living")] += (
                np.log(np.asarray(columns["sqft_living"], dtype=np.float64))
                - self.log_sqft_mean)
            baseline = np.exp(expected + self.log_sqft_mean)
            dollars = folded * log_mean(price, baseline)[:, None]
        elif self.target == "price":
            baseline, dollars = expected, folded
        else:
            raise ValueError(f"cannot explain target {self.target!r}")
        out = []
        for i, p in enumerate(price):
            base = cents(baseline[i])
            effects = split_cents(cents(p) - base, dollars[i] * 100)
            order = sorted(range(len(groups)),
                           key=lambda j: (-abs(int(effects[j])), j))
            out.append({
                "method": self.method,
                "baseline": base / 100,
                "effects": [{"input": groups[j],
                             "value": _value(columns, groups[j], i),
                             "effect": int(effects[j]) / 100} for j in order],
            })
        return out


class NeighbourExplainer:
    """A k-NN's prediction as its neighbours' sales, each with its share.

    ``kneighbors(X, k)`` answers (distances, rows) exactly as the fitted
    ``KNeighborsRegressor.kneighbors`` does; ``targets`` are the training
    prices by row and ``weights`` the regressor's (uniform or distance).
    """

    method = "nearest-neighbours"

    def __init__(self, kneighbors, targets: np.ndarray, n_neighbors: int,
                 weights: str | None):
        self.kneighbors = kneighbors
        self.targets = np.asarray(targets, dtype=np.float64).reshape(len(targets))
        self.n_neighbors = int(n_neighbors)
        self.weights = weights

    def shares(self, dist: np.ndarray) -> np.ndarray:
        """Each neighbour's weight in the mean (rows sum to 1)."""
        if self.weights == "distance":
            # KNeighborsRegressor: 1 / distance; a sale at distance 0 takes it all.
            with np.errstate(divide="ignore"):
                w = 1.0 / dist
            exact = np.isinf(w)
            w = np.where(exact.any(axis=1, keepdims=True), exact, w)
        else:
            w = np.ones_like(dist)
        return w / w.sum(axis=1, keepdims=True)

    def explain(self, features, columns, price, sales=None,
                neighbours=None) -> list[dict]:
        """The neighbours behind each prediction, with their shares in cents.

        ``neighbours``: ``kneighbors(features, n_neighbors)``, if known.
        """
        dist, rows = neighbours or self.kneighbors(features, self.n_neighbors)
        shares = self.shares(dist)
        out = []
        for i, p in enumerate(price):
            amounts = split_cents(cents(p), shares[i] * self.targets[rows[i]] * 100)
            if sales is not None:
                listed = sales.describe(rows[i], _home(columns, i),
                                        similarity(dist[i]))
            else:
                listed = [{"price": float(self.targets[r]),
                           "similarity": round(float(s), 4)}
                          for r, s in zip(rows[i], similarity(dist[i]))]
            for sale, share, amount in zip(listed, shares[i], amounts):
                sale["weight"] = float(share)
                sale["effect"] = int(amount) / 100
            out.append({"method": self.method, "baseline": 0.0,
                        "neighbours": listed})
        return out


def _home(columns: Mapping, i: int) -> dict:
    return {name: columns[name][i] for name in CLIENT_COLUMNS if name in columns}


class ExplanationUnavailable(TypeError):
    """The model is of a kind this module cannot explain."""


def neighbour_explainer(estimator) -> NeighbourExplainer:
    """The explainer of a k-NN: our lean one or a fitted scikit-learn pipeline."""
    if hasattr(estimator, "kneighbors") and hasattr(estimator, "targets"):
        return NeighbourExplainer(estimator.kneighbors, estimator.targets,
                                  estimator.n_neighbors, estimator.weights)
    steps = getattr(estimator, "steps", None)
    knn = steps[-1][1] if steps else None
    if not hasattr(knn, "kneighbors") or not hasattr(knn, "_y"):
        raise ExplanationUnavailable(
            f"cannot explain a {type(estimator).__name__}")
    before = estimator[:-1]

    def kneighbors(X, k):
        return knn.kneighbors(before.transform(X), n_neighbors=k)

    return NeighbourExplainer(kneighbors, knn._y, knn.n_neighbors, knn.weights)
