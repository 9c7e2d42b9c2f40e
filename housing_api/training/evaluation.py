"""How well does a model generalize? Every protocol refits from scratch.

Each protocol fits the version's algorithm (with the version's own
hyperparameters) on its training rows only, so anything fitted on targets
(neighbourhood prices, interval calibration) never sees the rows it is
scored on.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, KFold

from ..inference.adaptive import simulate
from ..inference.demographics import Demographics
from ..inference.market import month_numbers, sale_months
from ..ops import progress
from .data import DEMOGRAPHICS_CSV, SPLIT_SEED, Sales, take
from .metrics import regression_metrics
from .train import ALGORITHMS

#: Sales before this date train the time split; later ones test it.
TIME_CUTOFF = "20150101"
#: Rolling origin: for each month, train on the sales before it and score
#: the sales from it on, estimated "now" (the training data's latest level).
ROLLING_CUTOFFS = ("2014-09", "2014-11", "2015-01", "2015-03")
LEARNING_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
THIRDS = ["lower third", "middle third", "upper third"]


@dataclass
class Scored:
    """Predictions of one model on some rows, and their metrics."""

    rows: np.ndarray
    actual: np.ndarray
    price: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    metrics: dict = field(init=False)
    #: The same estimates with the intervals the service would have given
    #: had each sale been reported the day it sold (``inference.adaptive``).
    adapted: "Scored | None" = None

    def __post_init__(self):
        self.metrics = regression_metrics(self.actual, self.price)
        inside = (self.actual >= self.lower) & (self.actual <= self.upper)
        self.metrics["coverage"] = float(inside.mean())
        self.metrics["mean_width"] = float(np.mean(self.upper - self.lower))


@dataclass
class Evaluation:
    """Everything the report says about one model."""

    name: str
    version: str
    trainer: str
    #: Whether the version estimates as of a month (it has a market index).
    market: bool
    holdout: Scored
    train: Scored
    #: The minimal companion on the same holdout, if the version has one.
    minimal: Scored | None = None
    learning_curve: list = field(default_factory=list)
    cv: list = field(default_factory=list)
    time_split: dict | None = None
    rolling: list = field(default_factory=list)
    group_split: dict | None = None
    by_third: list = field(default_factory=list)
    by_zipcode_tier: list = field(default_factory=list)
    worst_zipcodes: list = field(default_factory=list)


def score(predictor, sales: Sales, rows: np.ndarray, now: bool = False) -> Scored:
    """Predict ``rows`` of ``sales`` with ``predictor``: each home as of its
    own sale month, or with ``now`` (and for a version without a market
    index) at the latest level the version knows, as the service answers."""
    months = None
    if predictor.market is not None and not now:
        months = sale_months(sales.frame["date"].to_numpy()[rows])
    result = predictor.predict(take(sales.columns, rows), months)
    return Scored(rows, sales.price[rows], result.price, result.lower, result.upper)


def refit_and_score(trainer, params, sales, demographics, train, test,
                    now=False) -> Scored:
    """Refit on ``train`` and score ``test``; estimated ``now``, with the
    intervals adapted to the test sales as they sell, too."""
    # The companion answers minimal requests; the protocols score the model.
    fit = ALGORITHMS[trainer](sales, demographics, train, params, companion=False)
    scored = score(fit.predictor, sales, test, now)
    if now:
        scored.adapted = adapted(fit.predictor, scored,
                                 sales.frame["date"].astype(str).str[:8]
                                 .to_numpy()[test])
    return scored


def adapted(predictor, scored: Scored, days: np.ndarray) -> Scored:
    """``scored`` with the intervals of a service told each sale's price
    the day it sold (the default step; ``inference.adaptive``)."""
    interval = predictor.interval
    lower, upper = simulate(
        scored.actual, scored.price, scored.lower, scored.upper,
        interval.band(scored.price), days, len(interval.edges) + 1,
        interval.level)
    return Scored(scored.rows, scored.actual, scored.price, lower, upper)


def price_thirds(actual: np.ndarray) -> np.ndarray:
    """0, 1, 2 for the lower, middle and upper third of actual prices."""
    return np.searchsorted(np.quantile(actual, [1 / 3, 2 / 3]), actual, side="right")


def breakdown(scored: Scored, groups: np.ndarray, labels) -> list[dict]:
    """Metrics and interval coverage of ``scored`` per group."""
    out = []
    for g, label in enumerate(labels):
        mask = groups == g
        if mask.sum() < 2:
            continue
        part = Scored(scored.rows[mask], scored.actual[mask], scored.price[mask],
                      scored.lower[mask], scored.upper[mask])
        out.append({"group": label, **part.metrics})
    return out


def zipcode_tiers(sales: Sales, train: np.ndarray, rows: np.ndarray):
    """Quartile of each row's zipcode by median *training* price."""
    zips = np.asarray(sales.columns["zipcode"])
    medians = {z: np.median(sales.price[train][zips[train] == z])
               for z in np.unique(zips[train])}
    edges = np.quantile(list(medians.values()), [0.25, 0.5, 0.75])
    return np.searchsorted(edges, [medians.get(z, np.nan) for z in zips[rows]],
                           side="right")


def evaluate_version(store, version: str, data_dir: Path, quick: bool = False
                     ) -> Evaluation:
    """Run every protocol for stored ``version``."""
    metadata = store.metadata(version)
    trainer, params = metadata["trainer"], metadata.get("hyperparameters")
    sales = Sales.read(data_dir)
    demographics = Demographics.from_csv(Path(data_dir) / DEMOGRAPHICS_CSV)
    predictor = store.load(version)
    train, holdout = sales.split()
    ev = Evaluation(metadata["name"], version, trainer,
                    market=predictor.market is not None,
                    holdout=score(predictor, sales, holdout),
                    train=score(predictor, sales, train))
    if predictor.minimal is not None:
        ev.minimal = score(predictor.minimal, sales, holdout)

    def refit(fit_rows, test_rows, now=False):
        return refit_and_score(trainer, params, sales, demographics, fit_rows,
                               test_rows, now)

    rng = np.random.default_rng(SPLIT_SEED)
    shuffled = rng.permutation(train)
    fractions = LEARNING_FRACTIONS[::2] if quick else LEARNING_FRACTIONS
    with progress.steps(f"{version}: learning curve", total=len(fractions),
                        unit="fractions") as bar:
        for fraction in fractions:
            if fraction == 1.0:
                fit_rows, on_holdout, on_train = train, ev.holdout, ev.train
            else:
                fit_rows = np.sort(shuffled[: int(fraction * len(train))])
                on_holdout = refit(fit_rows, holdout)
                on_train = refit(fit_rows, fit_rows)
            ev.learning_curve.append({"fraction": fraction, "n": len(fit_rows),
                                      "train": on_train.metrics,
                                      "holdout": on_holdout.metrics})
            bar.update(postfix=f"{fraction:.0%} of the training split")

    everything = np.arange(len(sales.price))
    folds = KFold(2 if quick else 5, shuffle=True, random_state=SPLIT_SEED)
    with progress.steps(f"{version}: {folds.n_splits}-fold CV",
                        total=folds.n_splits, unit="folds") as bar:
        for a, b in folds.split(everything):
            ev.cv.append(refit(a, b).metrics)
            bar.update(postfix=f"MAPE {ev.cv[-1]['mape']:.2%}")

    dates = sales.frame["date"].astype(str).str[:8].to_numpy()
    before, after = everything[dates < TIME_CUTOFF], everything[dates >= TIME_CUTOFF]
    day = f"{TIME_CUTOFF[:4]}-{TIME_CUTOFF[4:6]}-{TIME_CUTOFF[6:]}"
    with progress.steps(f"{version}: time split, trained before {day}"):
        later = refit(before, after, now=True)
    thirds = price_thirds(later.actual)
    ev.time_split = {"cutoff": TIME_CUTOFF, "n_train": len(before),
                     "n_test": len(after), **later.metrics,
                     "by_third": breakdown(later, thirds, THIRDS),
                     "adapted": {**later.adapted.metrics,
                                 "by_third": breakdown(later.adapted, thirds,
                                                       THIRDS)}}

    months = sale_months(sales.frame["date"].to_numpy())
    cutoffs = ROLLING_CUTOFFS[1::2] if quick else ROLLING_CUTOFFS
    with progress.steps(f"{version}: rolling origin", total=len(cutoffs),
                        unit="cut-offs") as bar:
        for cutoff in cutoffs:
            scored = refit(everything[months < cutoff],
                           everything[months >= cutoff], now=True)
            # Whole months from the cut-off to each sale.
            ahead = (month_numbers(months[scored.rows])
                     - month_numbers([cutoff])[0]).astype(int)
            ev.rolling.append({
                "cutoff": cutoff, "n_train": int(np.sum(months < cutoff)),
                **scored.metrics,
                "by_months_ahead": breakdown(scored, ahead,
                                             range(ahead.max() + 1)),
                "adapted_coverage": scored.adapted.metrics["coverage"],
                "adapted_by_months_ahead": breakdown(scored.adapted, ahead,
                                                     range(ahead.max() + 1)),
            })
            bar.update(postfix=f"cut-off {cutoff}")

    ids = sales.frame["id"].to_numpy()
    a, b = next(GroupShuffleSplit(1, test_size=0.25, random_state=SPLIT_SEED)
                .split(everything, groups=ids))
    assert not set(ids[a]) & set(ids[b])  # nosec B101 - offline report sanity check
    with progress.steps(f"{version}: split keeping repeat sales together"):
        grouped = refit(a, b).metrics
    ev.group_split = {"n_train": len(a), "n_test": len(b),
                      "repeat_sales": int(len(ids) - len(np.unique(ids))),
                      **grouped}

    ev.by_third = breakdown(ev.holdout, price_thirds(ev.holdout.actual), THIRDS)
    ev.by_zipcode_tier = breakdown(
        ev.holdout, zipcode_tiers(sales, train, holdout),
        ["cheapest quarter of zipcodes", "second quarter", "third quarter",
         "most expensive quarter"])
    zips = np.asarray(sales.columns["zipcode"])[holdout]
    per_zip = [(z, *_mape_n(ev.holdout, zips == z)) for z in np.unique(zips)]
    ev.worst_zipcodes = sorted((p for p in per_zip if p[2] >= 20),
                               key=lambda p: -p[1])[:5]
    return ev


def _mape_n(scored: Scored, mask) -> tuple[float, int]:
    actual, price = scored.actual[mask], scored.price[mask]
    return float(np.mean(np.abs(price - actual) / actual)), int(mask.sum())
