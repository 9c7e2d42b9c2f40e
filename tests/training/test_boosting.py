"""The boosted model, trained small: stored, served, and kept honest."""
import io
import shutil

import numpy as np
import pytest

from conftest import DATA_DIR, TOKEN, assert_served_alike, use_small_boosting
from housing_api.inference.features.minimal import MINIMAL_INPUTS
from housing_api.training import boosting
from housing_api.training.minimal import MINIMAL
from housing_api.inference.demographics import Demographics
from housing_api.inference.market import sale_months
from housing_api.store import InvalidModelError, ModelStore
from housing_api.training.data import DEMOGRAPHICS_CSV, Sales, read_examples, take
from housing_api.training.train import fit_lightgbm


def test_served_prices_equal_the_fitted_model(boosted_store, monkeypatch):
    store = ModelStore(boosted_store)
    loaded = store.load(store.current())
    sales = Sales.read(DATA_DIR)
    demographics = Demographics.from_csv(DATA_DIR / DEMOGRAPHICS_CSV)
    train, _ = sales.split()
    use_small_boosting(monkeypatch)
    fresh = fit_lightgbm(sales, demographics, train).predictor
    examples = read_examples(DATA_DIR)
    a, b = loaded.predict(examples), fresh.predict(examples)
    np.testing.assert_allclose(a.price, b.price, rtol=1e-9)
    np.testing.assert_allclose(a.upper, b.upper, rtol=1e-9)
    # The minimal companion too, from its 8 inputs only.
    minimal = {name: examples[name] for name in MINIMAL_INPUTS}
    a, b = loaded.minimal.predict(minimal), fresh.minimal.predict(minimal)
    np.testing.assert_allclose(a.price, b.price, rtol=1e-9)
    np.testing.assert_allclose(a.lower, b.lower, rtol=1e-9)
    assert not np.allclose(a.price, loaded.predict(examples).price)


def test_prediction_carries_an_80_percent_interval(boosted_client, home):
    body = boosted_client.post("/v1/predict", json=home).get_json()
    assert body["model"]["name"] == "lightgbm-neighbourhood"
    interval = body["interval"]
    assert interval["level"] == 0.8
    assert interval["lower"] < body["prediction"] < interval["upper"]


def test_interval_covers_about_80_percent_of_the_holdout(boosted_store):
    store = ModelStore(boosted_store)
    metadata = store.metadata(store.current())
    assert len(metadata["interval"]["edges"]) == boosting.N_INTERVAL_BINS - 1
    assert metadata["target"] == "log_price_per_sqft"
    sales = Sales.read(DATA_DIR)
    _, holdout = sales.split()
    # Each home as of its own sale month, as the holdout metrics are.
    result = store.load(store.current()).predict(
        take(sales.columns, holdout),
        sale_months(sales.frame["date"].to_numpy()[holdout]))
    actual = sales.price[holdout]
    coverage = np.mean((actual >= result.lower) & (actual <= result.upper))
    assert 0.77 <= coverage <= 0.83
    assert metadata["metrics"]["holdout"]["r2"] > 0.85  # even this small variant


def test_minimal_answers_from_the_companion(boosted_client, home):
    minimal = {k: home[k] for k in MINIMAL_INPUTS}
    response = boosted_client.post("/v1/predict/minimal", json=minimal)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    full = boosted_client.post("/v1/predict", json=home).get_json()
    assert body["model"]["variant"] == "minimal"
    assert body["model"]["name"] == "lightgbm-minimal"
    assert body["model"]["version"] == full["model"]["version"]
    assert "variant" not in full["model"]  # the version's own model
    assert full["model"]["name"] == "lightgbm-neighbourhood"
    assert body["prediction"] != full["prediction"]
    assert body["interval"]["lower"] < body["prediction"] < body["interval"]["upper"]
    assert body["as_of"] == full["as_of"] == "2015-05"


def test_minimal_asks_for_the_8_inputs_and_publishes_its_metrics(boosted_client,
                                                                 home):
    features = boosted_client.get("/v1/features").get_json()
    assert [f["name"] for f in features["minimal"]] == list(MINIMAL_INPUTS)
    companion = features["minimal_model"]
    assert companion["model"]["variant"] == "minimal"
    holdout = companion["metrics"]["holdout"]
    assert holdout["n"] == 5404 and 0.75 < holdout["r2"] < 0.9
    assert 0.7 <= holdout["coverage"] <= 0.9
    # A field the companion does not read is refused, as on any endpoint.
    body = boosted_client.post("/v1/predict/minimal",
                               json={**{k: home[k] for k in MINIMAL_INPUTS},
                                     "lat": home["lat"]}).get_json()
    assert body["code"] == 422
    assert "lat" in body["errors"]["json"]


def test_a_companion_file_that_does_not_match_is_refused(boosted_store, tmp_path):
    root = shutil.copytree(boosted_store, tmp_path / "model")
    store = ModelStore(root)
    for name in ("minimal.lgb.txt", "zipcode_prices.npz"):
        path = store.path(store.current()) / name
        original = path.read_bytes()
        data = bytearray(original)
        data[-100] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(InvalidModelError, match=name):
            store.load(store.current())
        path.write_bytes(original)
    store.load(store.current())


def test_a_companion_artifact_without_a_checksum_is_refused(boosted_store,
                                                            tmp_path):
    import json

    root = shutil.copytree(boosted_store, tmp_path / "model")
    store = ModelStore(root)
    path = store.path(store.current()) / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["companions"]["minimal"]["artifact"]["file"] = "other.lgb.txt"
    shutil.copy(path.parent / "minimal.lgb.txt", path.parent / "other.lgb.txt")
    path.write_text(json.dumps(metadata))
    with pytest.raises(InvalidModelError, match="no sha256"):
        store.load(store.current())


def test_rollback_returns_to_the_reference(boosted_client, home):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert boosted_client.post("/admin/models/rollback",
                               headers=headers).status_code == 202
    body = boosted_client.post("/v1/predict", json=home).get_json()
    assert body["model"]["name"] == "reference-knn"


def test_tampered_neighbour_context_is_refused(boosted_store, tmp_path):
    root = shutil.copytree(boosted_store, tmp_path / "model")
    store = ModelStore(root)
    path = store.path(store.current()) / "neighbours.npz"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidModelError, match="neighbours.npz"):
        store.load(store.current())


def test_neighbour_context_never_unpickles(boosted_store, tmp_path):
    from housing_api.inference.features.neighbours import NeighbourContext

    buffer = io.BytesIO()
    np.savez(buffer, xy=np.array([object()], dtype=object), log_ppsf=np.zeros(1),
             log_price=np.zeros(1), log_sqft=np.zeros(1))
    path = tmp_path / "evil.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="allow_pickle"):
        NeighbourContext.from_npz(path)


def training_data(n=3000):
    sales = Sales.read(DATA_DIR)
    demographics = Demographics.from_csv(DATA_DIR / DEMOGRAPHICS_CSV)
    return boosting.TrainingData.from_sales(sales, demographics, np.arange(n))


def test_out_of_fold_features_never_see_their_own_fold_prices():
    data = training_data()
    folds = boosting.group_folds(data.groups, boosting.N_FOLDS, seed=0)
    before = boosting.out_of_fold_features(data, folds)
    # Change every price in fold 0: its own rows' features must not move.
    data.log_price[folds == 0] += 1.0
    after = boosting.out_of_fold_features(data, folds)
    np.testing.assert_array_equal(before[folds == 0], after[folds == 0])
    assert not np.array_equal(before[folds == 1], after[folds == 1])


def test_minimal_zipcode_prices_never_see_their_own_fold_prices():
    data = training_data()
    folds = boosting.group_folds(data.groups, boosting.N_FOLDS, seed=0)
    before = boosting.out_of_fold_features(data, folds, recipe=MINIMAL)
    data.log_price[folds == 0] += 1.0
    after = boosting.out_of_fold_features(data, folds, recipe=MINIMAL)
    np.testing.assert_array_equal(before[folds == 0], after[folds == 0])
    assert not np.array_equal(before[folds == 1], after[folds == 1])


def test_repeat_sales_of_a_house_share_a_fold():
    data = training_data(21613)
    folds = boosting.group_folds(data.groups, boosting.N_FOLDS, seed=0)
    ids, counts = np.unique(data.groups, return_counts=True)
    for house in ids[counts > 1]:
        assert len(set(folds[data.groups == house])) == 1


def test_search_picks_the_lowest_cv_mape_and_writes_every_result(tmp_path,
                                                                 monkeypatch):
    import io
    import json

    from housing_api.ops import progress
    from housing_api.training import search

    monkeypatch.setattr(search, "N_RANDOM", 1)
    monkeypatch.setattr(search, "MAX_ROUNDS", 20)
    monkeypatch.setattr(search, "ROUND_STEP", 10)
    out, shown = tmp_path / "search.json", io.StringIO()
    with progress.shown(stream=shown, interval=0):
        chosen = search.search(DATA_DIR, out)
    written = json.loads(out.read_text())
    assert len(written["results"]) == 2 * 2  # 2 candidates x 2 round counts
    best = min(written["results"], key=lambda r: r["mape_mean"])
    assert chosen == {**best["params"], "num_boost_round": best["num_boost_round"]}
    # Each trial's line, then the best so far.
    lines = shown.getvalue().splitlines()
    assert lines[0] == "hyperparameter search: 0 of 2 trials"
    assert [line[:4] for line in lines if line.startswith("[")] == ["[ 0]", "[ 1]"]
    assert lines[-1].endswith(f"best so far: trial {best['candidate']}, MAPE "
                              f"{best['mape_mean']:.2%}")


def test_lean_and_library_boosters_serve_the_same_prices(boosted_store, homes):
    from housing_api.inference.lean import LeanBooster

    assert_served_alike(boosted_store, homes, LeanBooster)
