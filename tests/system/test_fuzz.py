"""Property tests: feature assembly, batching, and hostile request bodies."""
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marshmallow import ValidationError

from conftest import DATA_DIR
from housing_api import create_app
from housing_api.inference.columns import CLIENT_COLUMNS, records_to_columns
from housing_api.inference.demographics import Demographics
from housing_api.inference.features import get_feature_set
from housing_api.web.schemas import HomeSchema

DEMOGRAPHICS = Demographics.from_csv(DATA_DIR / "zipcode_demographics.csv")
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def homes_strategy():
    """Valid homes: every field within the schema's ranges."""
    def finish(d):
        d["sqft_living"] = d["sqft_above"] + d["sqft_basement"]
        if d["yr_renovated"]:
            d["yr_renovated"] = max(d["yr_renovated"], d["yr_built"])
        return d

    return st.fixed_dictionaries({
        "bedrooms": st.integers(0, 50),
        "bathrooms": st.floats(0, 25),
        "sqft_lot": st.integers(1, 10**8),
        "floors": st.floats(1, 10),
        "waterfront": st.integers(0, 1),
        "view": st.integers(0, 4),
        "condition": st.integers(1, 5),
        "grade": st.integers(1, 13),
        "sqft_above": st.integers(1, 500_000),
        "sqft_basement": st.integers(0, 500_000),
        "yr_built": st.integers(1800, 2026),
        "yr_renovated": st.one_of(st.just(0), st.integers(1800, 2026)),
        "zipcode": st.sampled_from(DEMOGRAPHICS.zipcodes),
        "lat": st.floats(-90, 90),
        "long": st.floats(-180, 180),
        "sqft_living15": st.integers(1, 10**6),
        "sqft_lot15": st.integers(1, 10**8),
    }).map(finish)


@pytest.fixture(scope="module")
def fuzz_app(trained_store):
    # Read-only use of the session store: these tests never change it.
    return create_app({"TESTING": True, "MODEL_DIR": trained_store,
                       "DATA_DIR": DATA_DIR, "RATELIMIT_ENABLED": False})


@pytest.fixture(scope="module")
def predictor(fuzz_app):
    return fuzz_app.extensions["housing"].predictor


@FUZZ
@given(st.lists(homes_strategy(), min_size=1, max_size=30))
def test_feature_rows_equal_the_pandas_merge(records):
    feature_set = get_feature_set("reference")
    fast = feature_set.transform(records_to_columns(records), DEMOGRAPHICS)
    demo = pd.read_csv(DATA_DIR / "zipcode_demographics.csv", dtype={"zipcode": str})
    slow = pd.DataFrame(records).merge(demo, how="left", on="zipcode")[
        feature_set.names(DEMOGRAPHICS)].to_numpy(np.float64)
    np.testing.assert_array_equal(fast, slow)


@settings(FUZZ, max_examples=25)
@given(st.lists(homes_strategy(), min_size=1, max_size=10))
def test_a_batch_of_n_equals_n_singles(predictor, records):
    batch = predictor.predict(records_to_columns(records))
    singles = [predictor.predict(records_to_columns([r])) for r in records]
    np.testing.assert_array_equal(batch.price, [s.price[0] for s in singles])
    np.testing.assert_array_equal(batch.lower, [s.lower[0] for s in singles])
    assert batch.warnings == [s.warnings[0] for s in singles]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def assert_clean_client_error(response, allowed=(400, 413, 415, 422)):
    assert response.status_code in (200, *allowed), response.get_data(as_text=True)
    body = response.get_json()
    if response.status_code != 200:
        assert body["code"] == response.status_code and body["message"]


@FUZZ
@given(st.sampled_from(CLIENT_COLUMNS), json_values)
def test_any_json_value_in_any_field_is_handled(fuzz_app, homes, field, value):
    home = dict(homes[0], **{field: value})
    response = fuzz_app.test_client().post("/v1/predict", json=home)
    assert_clean_client_error(response)


@FUZZ
@given(json_values)
def test_any_json_document_is_handled(fuzz_app, document):
    client = fuzz_app.test_client()
    for path in ("/v1/predict", "/v1/predict/minimal", "/v1/predict/batch"):
        assert_clean_client_error(client.post(path, json=document))
    assert_clean_client_error(client.post("/v1/predict/batch",
                                          json={"instances": [document]}))


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_are_handled(fuzz_app, data):
    client = fuzz_app.test_client()
    for content_type in ("application/json", "text/csv"):
        assert_clean_client_error(client.post("/v1/predict/batch", data=data,
                                              content_type=content_type))
    assert_clean_client_error(client.post("/v1/predict", data=data,
                                          content_type="application/json"))


@FUZZ
@given(st.lists(st.lists(st.text(max_size=8), max_size=20), max_size=5))
def test_any_csv_under_the_real_header_is_handled(fuzz_app, rows):
    lines = [",".join(CLIENT_COLUMNS)] + [",".join(r) for r in rows]
    response = fuzz_app.test_client().post(
        "/v1/predict/batch", data="\n".join(lines), content_type="text/csv")
    assert_clean_client_error(response)


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 50_000 + "1" + "}" * 50_000,
])
@pytest.mark.parametrize("path", ["/v1/predict", "/v1/predict/batch"])
def test_deeply_nested_json_is_a_400(fuzz_app, body, path):
    response = fuzz_app.test_client().post(path, data=body,
                                           content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in json.dumps(response.get_json()["errors"])


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" + "0" * 400,
                                    "1" + "0" * 5000])
def test_huge_numbers_are_a_422(fuzz_app, homes, number):
    text = json.dumps(dict(homes[0], sqft_lot=123456789)).replace("123456789",
                                                                  number)
    response = fuzz_app.test_client().post("/v1/predict", data=text,
                                           content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.get_json()["code"] == response.status_code


def test_the_default_batch_limit_is_10000_rows(fuzz_app, homes):
    client = fuzz_app.test_client()
    rows = (homes * 101)[:10_001]
    response = client.post("/v1/predict/batch", json={"instances": rows})
    assert response.status_code == 422
    assert "At most 10000" in response.get_json()["message"]
    ok = client.post("/v1/predict/batch", json={"instances": rows[:10_000]})
    assert ok.status_code == 200 and ok.get_json()["count"] == 10_000


def test_a_body_just_over_the_size_limit_is_a_413(fuzz_app, homes):
    limit = fuzz_app.config["MAX_CONTENT_LENGTH"]
    body = json.dumps({"instances": homes}).encode()
    padded = body[:-1] + b" " * (limit + 1 - len(body)) + b"}"
    assert len(padded) == limit + 1
    response = fuzz_app.test_client().post("/v1/predict/batch", data=padded,
                                           content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["code"] == 413


@FUZZ
@given(homes_strategy())
def test_fast_validation_accepts_every_valid_home_as_marshmallow_does(home):
    schema = HomeSchema()
    assert schema.fast_load(home) == schema.load(home)
    minimal = {k: home[k] for k in get_feature_set("reference").inputs}
    assert schema.fast_load(minimal, partial=True) == schema.load(minimal,
                                                                  partial=True)


@FUZZ
@given(homes_strategy(), st.sampled_from(CLIENT_COLUMNS + ("extra",)),
       json_values | st.integers(-10**6, 10**6) | st.floats(-1e7, 1e7))
def test_fast_validation_never_accepts_what_marshmallow_rejects(home, field, value):
    schema = HomeSchema()
    home = dict(home, **{field: value})
    fast = schema.fast_load(home)
    try:
        slow = schema.load(home)
    except ValidationError:
        assert fast is None
    else:
        assert fast in (None, slow)


def as_columns(home) -> dict:
    """One home as the column-wise check sees a CSV row: numbers as float64
    (NaN for a cell that is not a number), the zipcode as its text."""
    columns = {}
    for name in CLIENT_COLUMNS:
        value = home[name]
        if name == "zipcode":
            columns[name] = np.array([str(value)], dtype=object)
        else:
            number = pd.to_numeric(pd.Series([str(value)]), errors="coerce")
            columns[name] = number.to_numpy(np.float64)
    return columns


@FUZZ
@given(homes_strategy())
def test_the_column_wise_check_clears_every_valid_home(home):
    assert HomeSchema().fast_mask(as_columns(home)).tolist() == [True]


@settings(max_examples=300, deadline=None)
@given(homes_strategy(), st.sampled_from(CLIENT_COLUMNS),
       st.integers(-5, 2100) | st.integers(-10**6, 10**8) | st.floats(-1e9, 1e9)
       | st.floats() | st.text(max_size=6))
def test_the_column_wise_check_never_clears_what_the_schema_refuses(home, field,
                                                                    value):
    from housing_api.serving.scoring import csv_cell

    home = dict(home, **{field: value})
    (cleared,) = HomeSchema().fast_mask(as_columns(home)).tolist()
    cells = {name: csv_cell(name, str(v).strip()) for name, v in home.items()}
    try:
        HomeSchema().load(cells)
    except ValidationError:
        assert not cleared
