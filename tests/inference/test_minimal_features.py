"""The minimal companion's zipcode prices: what a home is placed against."""
import io

import numpy as np
import pytest

from housing_api.inference.features.engineered_spec import DEMOGRAPHIC_NAMES
from housing_api.inference.features.minimal import (
    FEATURE_NAMES, ZipcodePrices, minimal_features,
)

LOG_SQFT = np.log([1000.0, 2000.0, 3000.0, 1500.0, 2500.0])
LOG_LOT = np.log([4000.0, 5000.0, 6000.0, 8000.0, 9000.0])
PRICES = ZipcodePrices.from_sales(
    ["98001", "98001", "98001", "98002", "98002"],
    [5.0, 5.5, 6.0, 6.5, 7.0], LOG_SQFT, LOG_LOT)


def column(name: str) -> int:
    return FEATURE_NAMES.index(name)


def features(zipcodes, sqft, lot=5000.0, prices=PRICES):
    n = len(zipcodes)
    columns = {"bedrooms": np.full(n, 3.0), "bathrooms": np.full(n, 2.0),
               "sqft_living": np.asarray(sqft, dtype=float),
               "sqft_lot": np.full(n, lot), "floors": np.ones(n),
               "sqft_above": np.asarray(sqft, dtype=float),
               "sqft_basement": np.zeros(n), "zipcode": np.asarray(zipcodes)}
    demographics = np.zeros((n, len(DEMOGRAPHIC_NAMES)))
    return minimal_features(columns, demographics, DEMOGRAPHIC_NAMES, prices)


def test_a_home_is_placed_among_its_zipcodes_sales():
    x = features(["98001", "98001", "98002"], [2000, 3500, 2000])
    assert x[0, column("zip_ppsf_q50")] == 5.5
    assert x[2, column("zip_ppsf_q50")] == 6.75
    # 2,000 sq ft: one of the three homes of 98001 below, one equal.
    assert x[0, column("size_rank_in_zip")] == pytest.approx(1.5 / 3)
    assert x[1, column("size_rank_in_zip")] == 1.0
    assert x[2, column("size_rank_in_zip")] == pytest.approx(0.5)
    assert x[0, column("size_minus_zip_median")] == pytest.approx(0.0)
    assert x[0, column("zip_log_sales")] == pytest.approx(np.log(3))


def test_a_zipcode_without_training_sales_gets_the_countys():
    x = features(["98999"], [2000])
    assert x[0, column("zip_ppsf_q50")] == 6.0
    assert x[0, column("zip_log_sales")] == pytest.approx(np.log(5))
    assert x[0, column("size_rank_in_zip")] == pytest.approx(0.5)


def test_one_home_gets_the_row_it_gets_in_a_batch():
    batch = features(["98001", "98002", "98999"], [1200, 2600, 900])
    for i, (zipcode, sqft) in enumerate([("98001", 1200), ("98002", 2600),
                                         ("98999", 900)]):
        np.testing.assert_array_equal(features([zipcode], [sqft])[0], batch[i])


def test_zipcode_prices_round_trip_and_never_unpickle(tmp_path):
    path = tmp_path / "prices.npz"
    path.write_bytes(PRICES.to_npz())
    loaded = ZipcodePrices.from_npz(path)
    np.testing.assert_array_equal(loaded.stats, PRICES.stats)
    np.testing.assert_array_equal(features(["98002", "98999"], [2000, 900],
                                           prices=loaded),
                                  features(["98002", "98999"], [2000, 900]))
    buffer = io.BytesIO()
    np.savez(buffer, zipcodes=np.array([object()], dtype=object),
             stats=np.zeros((2, 7)), starts=np.zeros(3), log_sqft=np.zeros(1),
             log_lot=np.zeros(1))
    evil = tmp_path / "evil.npz"
    evil.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="allow_pickle"):
        ZipcodePrices.from_npz(evil)


def test_inconsistent_zipcode_prices_are_refused(tmp_path):
    path = tmp_path / "prices.npz"
    buffer = io.BytesIO()
    np.savez(buffer, zipcodes=PRICES.zipcodes, stats=PRICES.stats,
             starts=PRICES.starts, log_sqft=PRICES.log_sqft[:-1],
             log_lot=PRICES.log_lot[:-1])
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="inconsistent"):
        ZipcodePrices.from_npz(path)
