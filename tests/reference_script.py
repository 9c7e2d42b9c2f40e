"""Sound Realty's create_model.py, step for step, and a booster on its data."""

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import RobustScaler

DATA = Path(__file__).resolve().parent.parent / "data"
SALES_COLUMNS = [
    "price", "bedrooms", "bathrooms", "sqft_living", "sqft_lot", "floors",
    "sqft_above", "sqft_basement", "zipcode",
]


def _merge_demographics(df):
    demo = pd.read_csv(f"{DATA}/zipcode_demographics.csv", dtype={"zipcode": str})
    return df.merge(demo, how="left", on="zipcode").drop(columns="zipcode")


@lru_cache(maxsize=None)
def load():
    """(X_train, X_test, y_train, y_test, X_future) as DataFrames/Series."""
    sales = pd.read_csv(f"{DATA}/kc_house_data.csv", usecols=SALES_COLUMNS,
                        dtype={"zipcode": str})
    merged = _merge_demographics(sales)
    y = merged.pop("price")
    X_train, X_test, y_train, y_test = train_test_split(merged, y, random_state=42)
    future = pd.read_csv(f"{DATA}/future_unseen_examples.csv", dtype={"zipcode": str})
    future = _merge_demographics(future[SALES_COLUMNS[1:]])[X_train.columns]
    return X_train, X_test, y_train, y_test, future


@lru_cache(maxsize=None)
def knn_pipeline(**knn_params):
    """The reference pipeline fitted on the train split."""
    X_train, _, y_train, _, _ = load()
    return make_pipeline(RobustScaler(), KNeighborsRegressor(**knn_params)).fit(
        X_train, y_train
    )


@lru_cache(maxsize=None)
def lgbm_booster(num_boost_round=300):
    """A deterministic LightGBM regressor on the same features."""
    import lightgbm as lgb

    X_train, _, y_train, _, _ = load()
    params = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 31,
              "seed": 0, "deterministic": True, "num_threads": 1, "verbose": -1}
    ds = lgb.Dataset(X_train.to_numpy(np.float64), label=y_train.to_numpy())
    return lgb.train(params, ds, num_boost_round=num_boost_round)


def as_array(df):
    """C-ordered float64 rows in the pipeline's column order."""
    return np.ascontiguousarray(df.to_numpy(dtype=np.float64))
