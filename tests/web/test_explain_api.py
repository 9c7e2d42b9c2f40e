"""?explain=true over HTTP: the blocks, their sums, their limits and errors."""
import shutil

import pytest

from conftest import DATA_DIR, close_app
from housing_api import create_app
from housing_api.inference.columns import CLIENT_COLUMNS
from model_files import publish_copy
from test_predict import assert_error

MINIMAL = ("bedrooms", "bathrooms", "sqft_living", "sqft_lot", "floors",
           "sqft_above", "sqft_basement", "zipcode")
SALE_FIELDS = {"date", "price", "price_per_sqft", "sqft_living", "bedrooms",
               "bathrooms", "grade", "yr_built", "zipcode", "lat", "long",
               "distance_km", "similarity"}


@pytest.fixture
def boosted(boosted_store, tmp_path):
    app = create_app({"TESTING": True, "RATELIMIT_ENABLED": False,
                      "MODEL_DIR": shutil.copytree(boosted_store,
                                                   tmp_path / "boosted")})
    yield app.test_client()
    close_app(app)


def cents(amount):
    return round(amount * 100)


def assert_adds_up(estimate):
    explanation = estimate["explanation"]
    parts = explanation.get("effects") or explanation["neighbours"]
    assert cents(explanation["baseline"]) + sum(cents(p["effect"]) for p in parts) \
        == cents(estimate["prediction"])


def without_ids(body):
    body = dict(body)
    del body["request_id"], body["prediction_id"]
    return body


def test_without_explain_the_answer_is_unchanged(client, home):
    plain = client.post("/v1/predict", json=home).get_json()
    off = client.post("/v1/predict?explain=false", json=home).get_json()
    assert without_ids(plain) == without_ids(off)
    assert "explanation" not in plain and "comparables" not in plain
    explained = client.post("/v1/predict?explain=true", json=home).get_json()
    assert explained["prediction"] == plain["prediction"]
    assert explained["interval"] == plain["interval"]


def test_a_knn_estimate_is_explained_by_its_five_neighbours(client, home):
    body = client.post("/v1/predict?explain=true", json=home).get_json()
    explanation = body["explanation"]
    assert explanation["method"] == "nearest-neighbours"
    assert explanation["baseline"] == 0
    neighbours = explanation["neighbours"]
    assert len(neighbours) == 5
    assert sum(n["price"] for n in neighbours) / 5 == body["prediction"]
    assert all(set(n) == SALE_FIELDS | {"weight", "effect"} for n in neighbours)
    assert_adds_up(body)
    assert [c["price"] for c in body["comparables"]] == [
        n["price"] for n in neighbours]
    similarity = [c["similarity"] for c in body["comparables"]]
    assert similarity == sorted(similarity, reverse=True)


def test_k_sets_how_many_comparables(client, home):
    body = client.post("/v1/predict?explain=true&k=12", json=home).get_json()
    assert len(body["comparables"]) == 12
    assert len(body["explanation"]["neighbours"]) == 5  # the model's own k
    assert len(client.post("/v1/predict?explain=1&k=1",
                           json=home).get_json()["comparables"]) == 1


def test_a_boosted_estimate_has_an_effect_per_input(boosted, home):
    body = boosted.post("/v1/predict?explain=true", json=home).get_json()
    explanation = body["explanation"]
    assert explanation["method"] == "tree-shap"
    assert 100_000 < explanation["baseline"] < 1_000_000
    effects = explanation["effects"]
    assert sorted(e["input"] for e in effects) == sorted(
        [*CLIENT_COLUMNS, "neighbourhood"])
    for effect in effects:
        sent = home["zipcode" if effect["input"] == "neighbourhood"
                    else effect["input"]]
        assert effect["value"] == sent and type(effect["value"]) is type(sent)
    assert_adds_up(body)
    comparables = body["comparables"]
    assert len(comparables) == 5
    assert {c["zipcode"] for c in comparables} == {home["zipcode"]}
    assert all(set(c) == SALE_FIELDS for c in comparables)
    assert [c["similarity"] for c in comparables] == sorted(
        (c["similarity"] for c in comparables), reverse=True)
    for c in comparables:
        assert c["price_per_sqft"] == round(c["price"] / c["sqft_living"], 2)
        assert c["distance_km"] >= 0 and 0 < c["similarity"] <= 1


@pytest.mark.parametrize("which", ["reference", "boosted"])
def test_every_explained_estimate_of_a_batch_adds_up(which, client, boosted, homes):
    client = client if which == "reference" else boosted
    plain = client.post("/v1/predict/batch", json={"instances": homes}).get_json()
    body = client.post("/v1/predict/batch?explain=true&k=3",
                       json={"instances": homes}).get_json()
    assert body["count"] == 100
    for estimate, before in zip(body["predictions"], plain["predictions"]):
        assert estimate["prediction"] == before["prediction"]
        assert len(estimate["comparables"]) == 3
        assert_adds_up(estimate)


def test_a_csv_batch_is_explained_too(client):
    csv = (DATA_DIR / "future_unseen_examples.csv").read_text()
    body = client.post("/v1/predict/batch?explain=true", data=csv,
                       content_type="text/csv").get_json()
    assert body["count"] == 100
    assert all("explanation" in p and len(p["comparables"]) == 5
               for p in body["predictions"])


def test_minimal_homes_are_explained_without_a_distance(client, home):
    minimal = {name: home[name] for name in MINIMAL}
    body = client.post("/v1/predict/minimal?explain=true", json=minimal).get_json()
    assert_adds_up(body)
    assert all(c["distance_km"] is None for c in body["comparables"])
    assert all(c["lat"] and c["long"] for c in body["comparables"])


def test_explained_batches_have_a_smaller_limit(client, home, homes):
    too_many = {"instances": [home] * 1001}
    body = assert_error(client.post("/v1/predict/batch?explain=true",
                                    json=too_many), 422)
    assert body["errors"] == {"json": {"instances": [
        "Longer than maximum length 1000 with explain=true."]}}
    assert client.post("/v1/predict/batch", json=too_many).status_code == 200
    assert client.post("/v1/predict/batch?explain=true",
                       json={"instances": [home] * 1000}).status_code == 200
    header = ",".join(homes[0])
    row = ",".join(str(v) for v in homes[0].values())
    csv = "\n".join([header] + [row] * 1001) + "\n"
    body = assert_error(client.post("/v1/predict/batch?explain=true", data=csv,
                                    content_type="text/csv"), 422)
    assert body["errors"] == {"csv": {"rows": [
        "Longer than maximum length 1000 with explain=true."]}}


@pytest.mark.parametrize("query, field, message", [
    ("explain=maybe", "explain", "Not a valid boolean."),
    ("explain=true&k=0", "k", "Must be greater than or equal to 1 and less "
                              "than or equal to 20."),
    ("explain=true&k=1000", "k", "Must be greater than or equal to 1 and less "
                                 "than or equal to 20."),
    ("explain=true&k=five", "k", "Not a valid integer."),
    ("k=3", "k", "Only with explain=true."),
])
@pytest.mark.parametrize("path", ["/v1/predict", "/v1/predict/batch"])
def test_bad_explain_parameters_get_a_422(client, home, query, field, message,
                                          path):
    body = {"instances": [home]} if path.endswith("batch") else home
    response = client.post(f"{path}?{query}", json=body)
    assert assert_error(response, 422)["errors"] == {"query": {field: [message]}}


def test_a_version_stored_without_its_sales_still_explains(client, store, home):
    store.activate(publish_copy(store))  # the copy has no sales.npz
    client.application.extensions["housing"].reload()
    body = client.post("/v1/predict?explain=true", json=home).get_json()
    assert body["model"]["version"] == store.current()
    assert body["comparables"] is None
    neighbours = body["explanation"]["neighbours"]
    assert set(neighbours[0]) == {"price", "similarity", "weight", "effect"}
    assert_adds_up(body)


def test_the_documented_example_adds_up(client):
    spec = client.get("/openapi.json").get_json()
    response = spec["paths"]["/v1/predict"]["post"]["responses"]["200"]
    example = response["content"]["application/json"]["example"]
    assert example["explanation"]["method"] == "tree-shap"
    assert_adds_up(example)
    assert len(example["comparables"]) == 3
