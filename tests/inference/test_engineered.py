"""One home's engineered features equal the batch code's, bit for bit."""
import numpy as np
import pytest

from conftest import DATA_DIR
from housing_api.inference.columns import CLIENT_COLUMNS, records_to_columns
from housing_api.inference.demographics import UnknownZipcodeError
from housing_api.inference.features import (
    engineered, engineered_one, engineered_spec, neighbours,
)
from housing_api.store import ModelStore
from housing_api.cli.smoke import read_homes
from housing_api.training.data import Sales, take

#: Every SALES_STEP-th sale: about 3,000 homes spread over the whole file.
SALES_STEP = 7


@pytest.fixture(scope="module")
def boosted(boosted_store):
    """The trained lightgbm version, loaded as the service loads it."""
    store = ModelStore(boosted_store)
    predictor = store.load(store.current())
    assert predictor.feature_set.name == "engineered-v1"
    assert isinstance(predictor.context, neighbours.NeighbourContext)
    return predictor


def one_home(predictor, columns):
    """The single-home path's row, refusing a silent fall back to the batch."""
    demographics = predictor.demographics
    row = engineered_one.engineer_one(
        columns, demographics.rows(columns["zipcode"]), demographics.columns,
        predictor.context)
    assert row is not None, "the single-home path was not taken"
    assert row.shape == (1, len(engineered_spec.FEATURE_NAMES))
    assert row.dtype == np.float64
    served = predictor.features(columns)
    assert np.array_equal(served, row)
    return row


def vectorized(predictor, columns, monkeypatch):
    """The batch code's matrix, also for a single home."""
    with monkeypatch.context() as patch:
        patch.setattr(engineered, "engineer_one", lambda *args: None)
        return predictor.features(columns)


def assert_rows_equal(single, batch, index):
    if not np.array_equal(single, batch):
        differ = [name for name, a, b in zip(engineered_spec.FEATURE_NAMES,
                                             single.ravel(), batch.ravel())
                  if a != b]
        pytest.fail(f"home {index}: {differ} differ from the batch code")


def test_every_future_example_equals_its_batch_row(boosted, monkeypatch):
    homes = read_homes(DATA_DIR / "future_unseen_examples.csv")
    batch = vectorized(boosted, records_to_columns(homes), monkeypatch)
    assert batch.shape == (len(homes), len(engineered_spec.FEATURE_NAMES))
    for i, home in enumerate(homes):
        columns = records_to_columns([home])
        single = one_home(boosted, columns)
        assert_rows_equal(single, batch[i:i + 1], i)
        assert_rows_equal(single, vectorized(boosted, columns, monkeypatch), i)


def test_thousands_of_sales_equal_their_batch_rows(boosted, monkeypatch):
    sales = Sales.read(DATA_DIR)
    assert set(sales.columns) == set(CLIENT_COLUMNS)
    rows = np.arange(0, len(sales.price), SALES_STEP)
    batch = vectorized(boosted, take(sales.columns, rows), monkeypatch)
    for i, row in enumerate(rows):
        single = one_home(boosted, take(sales.columns, [row]))
        assert_rows_equal(single, batch[i:i + 1], int(row))


def test_other_column_types_give_the_same_row(boosted, monkeypatch):
    home = read_homes(DATA_DIR / "future_unseen_examples.csv")[3]
    expected = vectorized(boosted, records_to_columns([home]), monkeypatch)
    as_lists = {name: [value] for name, value in home.items()}
    as_int_arrays = {
        name: [value] if name == "zipcode" else np.array([value])
        for name, value in home.items()
    }
    assert any(a.dtype.kind == "i" for a in as_int_arrays.values()
               if isinstance(a, np.ndarray))
    numpy_zipcode = {**records_to_columns([home]),
                     "zipcode": np.array([home["zipcode"]])}
    for columns in (as_lists, as_int_arrays, numpy_zipcode):
        assert np.array_equal(one_home(boosted, columns), expected)


def test_declined_homes_get_the_batch_code(boosted, monkeypatch):
    home = read_homes(DATA_DIR / "future_unseen_examples.csv")[5]
    args = (boosted.demographics.rows([home["zipcode"]]),
            boosted.demographics.columns, boosted.context)
    for change in ({"sqft_lot15": 0}, {"zipcode": int(home["zipcode"])}):
        columns = records_to_columns([{**home, **change}])
        assert engineered_one.engineer_one(columns, *args) is None
        with np.errstate(divide="ignore"):
            got = engineered.engineer(columns, *args)
            with monkeypatch.context() as patch:
                patch.setattr(engineered, "engineer_one", lambda *a: None)
                expected = engineered.engineer(columns, *args)
        assert np.array_equal(got, expected)
    columns = records_to_columns([{**home, "lat": float("nan")}])
    with pytest.raises(ValueError, match="NaN"):
        engineered.engineer(columns, *args)


def test_bad_single_homes_are_reported_as_before(boosted):
    home = read_homes(DATA_DIR / "future_unseen_examples.csv")[0]
    with pytest.raises(UnknownZipcodeError):
        boosted.features(records_to_columns([{**home, "zipcode": "00000"}]))
    columns = records_to_columns([home])
    del columns["grade"]
    with pytest.raises(KeyError, match="grade"):
        engineered.engineer(columns, boosted.demographics.rows([home["zipcode"]]),
                            boosted.demographics.columns, boosted.context)
