"""The minimal companion: the boosted recipe on the 7 sales columns and the zipcode.

A version whose model reads more than ``/v1/predict/minimal``'s inputs is
trained with a companion that reads only those. It goes through the same
machinery as the boosted model (``boosting.fit``: market-adjusted log price
per square foot, folds grouped by house, nested out-of-fold features and
both intervals); its fitted features are the zipcode's prices and sizes
(``inference.features.minimal``) instead of the nearest sales.
"""
from typing import Any

import numpy as np

from ..inference.features.minimal import (
    FEATURE_NAMES, ZipcodePrices, minimal_features,
)
from .boosting import DEFAULT_PARAMS, Recipe, TrainingData

#: Chosen by 5-fold CV inside the training split (grouped by house, fully
#: nested, each home as of its sale month; the holdout not read):
#:                                          R2      MAPE    MAE
#:   these                                  0.8299  14.43%  $85,948
#:   the boosted model's DEFAULT_PARAMS     0.8266  14.45%  $86,110
#:   min_data_in_leaf 20                    0.8299  14.44%  $85,943
#:   15 leaves, 2,500 rounds                0.8293  14.46%  $86,014
#:   63 leaves, 1,000 rounds                0.8282  14.45%  $86,009
#:   feature_fraction 0.8                   0.8286  14.47%  $86,217
#:   Huber alpha 0.9 (LightGBM's default)   0.8251  14.65%  $87,229
#: Features that did not help on the same folds: the mean price per sq ft
#: of the 10 and 30 homes of the zipcode most alike in size and lot
#: (14.52%), and 5 price quantiles instead of 3 (14.44%).
MINIMAL_PARAMS: dict[str, Any] = {
    **DEFAULT_PARAMS,
    "num_leaves": 31,
    "min_data_in_leaf": 10,
    "feature_fraction": 0.5,
    "num_boost_round": 1500,
}


class Minimal(Recipe):
    """Features from the minimal inputs, the zipcode's prices fitted per fold."""

    feature_names = FEATURE_NAMES
    params = MINIMAL_PARAMS
    label = "minimal companion"

    def context(self, data: TrainingData, mask: np.ndarray) -> ZipcodePrices:
        columns = data.columns
        return ZipcodePrices.from_sales(
            np.asarray(columns["zipcode"])[mask], data.target[mask],
            data.log_sqft[mask],
            np.log(np.asarray(columns["sqft_lot"], dtype=np.float64)[mask]))

    def features(self, data, rows, context):
        columns = {n: np.asarray(v)[rows] for n, v in data.columns.items()}
        return minimal_features(columns, data.demographics[rows],
                                data.demographic_names, context)


MINIMAL = Minimal()
