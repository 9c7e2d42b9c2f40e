import json

import numpy as np
import pytest

import reference_script
from conftest import DATA_DIR, assert_served_alike
from housing_api.store import ModelStore
from housing_api.training.train import train_version


def test_served_prices_equal_the_reference_script(client, homes):
    x_train, _, _, _, future = reference_script.load()
    features = list(x_train.columns)
    expected = reference_script.knn_pipeline().predict(future)

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
    # Each stage, one line as it starts and one as it ends (not a terminal).
    fitting = "reference model: the model, then 5 folds for its interval"
    metrics = "reference-knn: holdout and training metrics"
    lines = result.stderr.splitlines()
    assert len(lines) == 4, lines
    assert lines[0] == f"{fitting}: 0 of 2 steps"
    assert lines[1].startswith(f"{fitting}: done 2 steps in ")
    assert lines[2] == f"{metrics} ..."
    assert lines[3].startswith(f"{metrics}: done in ")


def test_lean_and_library_paths_serve_the_same_prices(model_dir, homes):
    from housing_api.inference.lean import LeanKNN

    assert_served_alike(model_dir, homes, LeanKNN)
