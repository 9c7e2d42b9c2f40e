import json

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import RobustScaler

from conftest import DATA_DIR
from housing_api.model_store import ModelStore
from housing_api.training import train_version


def reference_script_model():
    """Sound Realty's create_model.py, step for step."""
    columns = ["price", "bedrooms", "bathrooms", "sqft_living", "sqft_lot",
               "floors", "sqft_above", "sqft_basement", "zipcode"]
    data = pd.read_csv(DATA_DIR / "kc_house_data.csv", usecols=columns,
                       dtype={"zipcode": str})
    demographics = pd.read_csv(DATA_DIR / "zipcode_demographics.csv",
                               dtype={"zipcode": str})
    merged = data.merge(demographics, how="left", on="zipcode").drop(
        columns="zipcode")
    y = merged.pop("price")
    x_train, _, y_train, _ = train_test_split(merged, y, random_state=42)
    model = make_pipeline(RobustScaler(), KNeighborsRegressor()).fit(x_train, y_train)
    return model, list(x_train.columns), demographics


def test_served_prices_equal_the_reference_script(client, homes):
    model, features, demographics = reference_script_model()
    future = pd.read_csv(DATA_DIR / "future_unseen_examples.csv",
                         dtype={"zipcode": str})
    expected = model.predict(
        future.merge(demographics, how="left", on="zipcode")[features])

    served = [client.post("/v1/predict", json=h).get_json()["prediction"]
              for h in homes]
    batch = client.post("/v1/predict/batch", json={"instances": homes}).get_json()

    assert served == pytest.approx(expected, abs=0.005)
    assert [p["prediction"] for p in batch["predictions"]] == served
    assert client.get("/v1/model").get_json()["features"] == features


def test_metadata_describes_the_version(store):
    version = store.current()
    meta = json.loads((store.path(version) / "metadata.json").read_text())
    assert meta["version"] == version
    assert meta["algorithm"] == "make_pipeline(RobustScaler(), KNeighborsRegressor())"
    assert len(meta["features"]) == 33 and meta["features"][:2] == [
        "bedrooms", "bathrooms"]
    holdout = meta["metrics"]["holdout"]
    assert holdout["n"] == 5404
    assert holdout["r2"] == pytest.approx(0.728, abs=0.001)
    assert holdout["mape"] == pytest.approx(0.179, abs=0.001)
    assert set(holdout) >= {"r2", "mae", "rmse", "mape"}
    assert len(meta["artifact"]["sha256"]) == 64
    assert len(meta["training_data_sha256"]) == 64
    assert meta["artifact"]["format"] == "skops"
    assert {"numpy", "scikit-learn", "pandas"} <= set(meta["library_versions"])
    assert meta["created_at"].endswith("+00:00")


def test_every_training_run_stores_a_new_version(tmp_path):
    store = ModelStore(tmp_path / "model")
    first, _ = train_version(DATA_DIR, store)
    second, _ = train_version(DATA_DIR, store)
    assert store.list_versions() == [first, second]
    assert first < second
    assert store.current() is None


def test_interval_covers_about_80_percent_of_the_holdout(store):
    meta = store.metadata(store.current())
    assert meta["interval"]["level"] == 0.8
    assert np.all(np.array(meta["interval"]["lower"]) < 0)
    assert np.all(np.array(meta["interval"]["upper"]) > 0)


def test_train_command_reports_and_activates(runner, store):
    before = store.current()
    result = runner.invoke(args=["train", "--algorithm", "reference"])
    assert result.exit_code == 0, result.output
    assert "holdout R2 0.7281" in result.output
    assert store.current() != before


def test_lean_and_library_paths_serve_the_same_prices(model_dir, homes):
    from housing_api import create_app
    from housing_api.lean import LeanKNN

    answers = {}
    for lean in (True, False):
        app = create_app({"TESTING": True, "MODEL_DIR": model_dir,
                          "RATELIMIT_ENABLED": False, "LEAN_INFERENCE": lean})
        estimator = app.extensions["housing"].predictor.estimator
        assert isinstance(estimator, LeanKNN) is lean
        client = app.test_client()
        answers[lean] = (
            client.post("/v1/predict/batch", json={"instances": homes}).get_json()
            ["predictions"],
            [client.post("/v1/predict", json=h).get_json()["prediction"]
             for h in homes])
    assert answers[True] == answers[False]
