"""Hyperparameter search for the boosted model (``housing-api search``).

Protocol: only the training split (75%) is read, never the holdout; 5 folds
grouped by house ``id``; neighbourhood features fully nested per fold, as
``fit`` builds them; each candidate trained once per fold and scored every
``ROUND_STEP`` rounds, so the round count is searched too. The winner is the
lowest mean CV MAPE. Its values go into ``boosting.DEFAULT_PARAMS`` by hand,
in a commit: the default training never searches. About 45 minutes on two
cores.
"""
import json
import time
from pathlib import Path

import numpy as np

from ..inference.demographics import Demographics
from ..ops import progress
from . import boosting
from .data import DEMOGRAPHICS_CSV, Sales
from .metrics import regression_metrics

SEARCH_SEED = 2024
N_RANDOM = 14
MAX_ROUNDS = 2500
ROUND_STEP = 250
SPACE = {
    "objective": ["regression", "huber"],
    "num_leaves": [15, 31, 63],
    "min_data_in_leaf": [10, 20, 40],
    "feature_fraction": [0.3, 0.5, 0.7],
    "lambda_l2": [0.0, 1.0, 5.0],
}
HUBER_ALPHA = 0.15
#: The starting point, fixed so the candidate list never depends on the
#: current DEFAULT_PARAMS.
BASE_PARAMS = {"learning_rate": 0.03, "num_leaves": 31, "min_data_in_leaf": 20,
               "feature_fraction": 0.5, "bagging_fraction": 0.8,
               "bagging_freq": 1, "lambda_l2": 1.0}


def candidates() -> list[dict]:
    """``BASE_PARAMS`` plus a seeded random sample of ``SPACE``."""
    rng = np.random.default_rng(SEARCH_SEED)
    found = [dict(BASE_PARAMS)]
    while len(found) < N_RANDOM + 1:
        candidate = dict(BASE_PARAMS)
        for key, values in SPACE.items():
            candidate[key] = values[rng.integers(len(values))]
        if candidate["objective"] == "huber":
            candidate["alpha"] = HUBER_ALPHA
        if candidate not in found:
            found.append(candidate)
    return found


def training_data(data_dir: Path) -> boosting.TrainingData:
    """The training split (never the holdout) as boosting's input, its
    prices at the latest month's level as ``boosting.fit`` trains on them."""
    sales = Sales.read(data_dir)
    demographics = Demographics.from_csv(Path(data_dir) / DEMOGRAPHICS_CSV)
    train, _ = sales.split()
    data, _ = boosting.TrainingData.from_sales(
        sales, demographics, train).market_adjusted()
    return data


def score(params, folds, data) -> dict[int, dict[str, list[float]]]:
    """CV metrics in dollars per round count, for one candidate."""
    rounds = range(ROUND_STEP, MAX_ROUNDS + 1, ROUND_STEP)
    scores = {n: {"r2": [], "mape": [], "mae": []} for n in rounds}
    for held_out, x_train, x_held in folds:
        booster = boosting.train_booster(
            x_train, data.target[~held_out],
            {**params, "num_boost_round": MAX_ROUNDS}, SEARCH_SEED)
        price = np.exp(data.log_price[held_out])
        for n in rounds:
            log_pred = (booster.predict(x_held, num_iteration=n)
                        + data.log_sqft[held_out])
            m = regression_metrics(price, np.exp(log_pred))
            for key in scores[n]:
                scores[n][key].append(m[key])
    return scores


def search(data_dir: Path, out: Path) -> dict:
    """Run the search, write every result to ``out``; return the winner.

    Each trial's line and the best so far go to its progress (``steps``).
    """
    data = training_data(data_dir)
    folds = list(boosting.nested_fold_features(
        data, boosting.group_folds(data.groups, boosting.N_FOLDS, SEARCH_SEED)))
    results = []
    trials = candidates()
    with progress.steps("hyperparameter search", total=len(trials),
                        unit="trials") as bar:
        for i, params in enumerate(trials):
            start = time.time()
            for n, s in score(params, folds, data).items():
                results.append({
                    "candidate": i, "params": params, "num_boost_round": n,
                    **{f"{k}_mean": float(np.mean(v)) for k, v in s.items()},
                    **{f"{k}_std": float(np.std(v)) for k, v in s.items()}})
            best = min((r for r in results if r["candidate"] == i),
                       key=lambda r: r["mape_mean"])
            line = (f"[{i:2d}] {params} n={best['num_boost_round']} "
                    f"R2={best['r2_mean']:.4f}±{best['r2_std']:.4f} "
                    f"MAPE={best['mape_mean']:.4f} ({time.time() - start:.0f} s)")
            so_far = min(results, key=lambda r: r["mape_mean"])
            bar.note(line)
            bar.update(postfix=f"best so far: trial {so_far['candidate']}, "
                               f"MAPE {so_far['mape_mean']:.2%}")
    best = min(results, key=lambda r: r["mape_mean"])
    chosen = {**best["params"], "num_boost_round": best["num_boost_round"]}
    out.write_text(json.dumps({"chosen": chosen, "best": best, "results": results},
                              indent=1))
    return chosen
