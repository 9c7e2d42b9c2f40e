"""GET /v1/model/drift and the live gauges on /metrics, on SQLite and PostgreSQL."""
import json

import numpy as np
import pytest

from housing_api.inference.columns import NUMERIC_COLUMNS
from housing_api.inference.distribution import categorical_psi, psi
from housing_api.store import ModelStore
from model_files import payload


@pytest.fixture
def logged(logged_app):
    return logged_app, logged_app.test_client()


def shifted(homes, factor):
    """The homes with ``factor`` times the living area (still consistent)."""
    out = []
    for home in homes:
        living = round(home["sqft_living"] * factor)
        out.append({**home, "sqft_living": living,
                    "sqft_above": living - home["sqft_basement"]})
    return out


def post(app, client, homes):
    response = client.post("/v1/predict/batch", json={"instances": homes})
    assert response.status_code == 200
    assert app.extensions["housing_log"].flush()
    return response.get_json()


def expected_psi(distribution, values):
    values = np.asarray(values, dtype=np.float64)
    edges = np.asarray(distribution["edges"])
    counts = np.bincount(np.searchsorted(edges, values, side="left"),
                         minlength=len(edges) + 1)
    return psi(distribution["shares"], counts / len(values))


def test_every_index_equals_the_one_computed_from_the_rows(logged, homes):
    app, client = logged
    sent = homes + shifted(homes, 1.8)
    answer = post(app, client, sent)
    body = client.get("/v1/model/drift").get_json()
    reference = app.extensions["housing"].predictor.metadata["training_distribution"]
    features = {f["name"]: f for f in body["features"]}
    assert list(features) == [*NUMERIC_COLUMNS, "zipcode", "price"]
    assert body["rows"] == len(sent)
    for name in NUMERIC_COLUMNS:
        assert features[name]["rows"] == len(sent)
        assert features[name]["psi"] == pytest.approx(
            expected_psi(reference["inputs"][name], [h[name] for h in sent]),
            rel=1e-12), name
    prices = [p["prediction"] for p in answer["predictions"]]
    assert features["price"]["psi"] == pytest.approx(
        expected_psi(reference["price"], prices), rel=1e-3)  # answers are rounded
    zipcodes = {}
    for home in sent:
        zipcodes[home["zipcode"]] = zipcodes.get(home["zipcode"], 0) + 1
    assert features["zipcode"]["psi"] == pytest.approx(
        categorical_psi(reference["zipcode"]["shares"], zipcodes), rel=1e-12)
    bins = features["sqft_living"]["bins"]
    assert sum(b["live"] for b in bins) == pytest.approx(1)
    assert bins[-1]["upper"] is None


def test_verdicts(logged, homes):
    app, client = logged
    post(app, client, shifted(homes, 2.5) * 2)
    features = {f["name"]: f for f in client.get("/v1/model/drift").get_json()
                ["features"]}
    assert features["sqft_living"]["verdict"] == "major"
    assert features["sqft_living"]["psi"] > 0.25
    assert features["waterfront"]["verdict"] == "none"
    # 70 zipcodes need 700 rows before their index means anything.
    assert features["zipcode"]["verdict"] == "too few rows"


def test_without_estimates_there_is_no_data(logged):
    _, client = logged
    body = client.get("/v1/model/drift").get_json()
    assert body["rows"] == 0 and body["verdict"] == "no data"
    assert all(f["psi"] is None for f in body["features"])


def test_since_and_until_bound_the_estimates(logged, homes):
    app, client = logged
    post(app, client, homes)
    assert client.get("/v1/model/drift?since=2999-01-01").get_json()["rows"] == 0
    assert client.get("/v1/model/drift?until=2000-01-01T00:00:00Z"
                      ).get_json()["rows"] == 0
    assert client.get("/v1/model/drift?since=2000-01-01").get_json()["rows"] == 100


@pytest.mark.parametrize("query, status", [
    ("?version=no-such-version", 404),
    ("?since=soon", 422),
    ("?since=2026-12-02&until=2026-12-01", 422),
    ("?by=week", 422),
])
def test_bad_drift_queries(logged, query, status):
    _, client = logged
    response = client.get(f"/v1/model/drift{query}")
    assert response.status_code == status
    assert response.get_json()["code"] == status


def test_a_version_trained_before_drift_tracking_is_a_409(logged):
    app, client = logged
    store = ModelStore(app.config["MODEL_DIR"])
    files, metadata = payload(store)
    del metadata["training_distribution"]
    version = store.publish(files, metadata)
    response = client.get(f"/v1/model/drift?version={version}")
    assert response.status_code == 409
    assert "without a training distribution" in response.get_json()["message"]


def gauge(client, name, **labels):
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(name + "{") and all(
                f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_the_gauges_follow_the_database_when_refreshed(logged, homes):
    app, client = logged
    answer = post(app, client, homes * 2)
    version = answer["model"]["version"]
    sales = [{"prediction_id": p["prediction_id"], "sale_price": 500000,
              "sale_date": "2026-11-30"} for p in answer["predictions"]]
    assert client.post("/v1/sales", json={"sales": sales}).status_code == 200
    assert gauge(client, "housing_live_mape", version=version) is None
    app.extensions["housing_gauges"].refresh()
    live = client.get("/v1/model/performance").get_json()
    assert gauge(client, "housing_live_sales", version=version) == 200
    assert gauge(client, "housing_live_mape", version=version) == pytest.approx(
        live["live"][0]["mape"])
    assert gauge(client, "housing_live_interval_coverage", version=version) == \
        pytest.approx(live["live"][0]["coverage"])
    assert gauge(client, "housing_holdout_mape", version=version) == \
        pytest.approx(live["holdout"]["mape"])
    drift = {f["name"]: f for f in client.get("/v1/model/drift").get_json()
             ["features"]}
    assert gauge(client, "housing_drift_psi", version=version,
                 feature="sqft_living") == pytest.approx(drift["sqft_living"]["psi"])
    # Too few rows for the zipcode's index: no gauge an alert could fire on.
    assert gauge(client, "housing_drift_psi", version=version,
                 feature="zipcode") is None


def test_only_one_process_refreshes(logged, tmp_path):
    app, _ = logged
    gauges = app.extensions["housing_gauges"]
    other = type(gauges)(gauges.metrics, gauges.state, gauges.engine,
                         gauges.lock_path)
    assert gauges._leader() is True
    assert other._leader() is False
    gauges._lock_file.close()
    assert other._leader() is True
    other._lock_file.close()


def test_metadata_keeps_the_training_distribution(logged):
    app, _ = logged
    reference = app.extensions["housing"].predictor.metadata["training_distribution"]
    assert reference["n"] == 16209
    assert set(reference["inputs"]) == set(NUMERIC_COLUMNS)
    for distribution in [*reference["inputs"].values(), reference["price"]]:
        assert len(distribution["shares"]) == len(distribution["edges"]) + 1
        assert sum(distribution["shares"]) == pytest.approx(1)
    assert sum(reference["zipcode"]["shares"].values()) == pytest.approx(1)
    assert json.loads(json.dumps(reference)) == reference  # plain JSON
