"""A canary: a share of the clients, each always the same, get the challenger."""
import pytest

from conftest import TOKEN
from housing_api.store import Rollout
from model_files import publish_copy

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def test_the_canary_share_holds_over_10000_clients_and_each_keeps_its_side():
    rollout = Rollout.new("challenger", "champion", "canary", 0.1)
    clients = [f"address:10.0.{i // 256}.{i % 256}" for i in range(10_000)]
    chosen = [rollout.in_canary(c) for c in clients]
    assert abs(sum(chosen) / len(chosen) - 0.1) <= 0.02
    assert chosen == [rollout.in_canary(c) for c in clients]
    # A larger share keeps every client already in the canary.
    wider = Rollout(**{**rollout.__dict__, "share": 0.3})
    assert all(wider.in_canary(c) for c, inside in zip(clients, chosen) if inside)
    assert abs(sum(map(wider.in_canary, clients)) / len(clients) - 0.3) <= 0.02


@pytest.fixture
def canary(app, store):
    """Start a canary of a copy of the active version; return (champion, it)."""
    def start(share):
        champion, challenger = store.current(), publish_copy(store)
        store.start_rollout(challenger, "canary", share)
        app.extensions["housing"].reload()
        return champion, challenger
    return start


def test_clients_in_the_canary_get_the_challengers_answer(app, client, canary,
                                                          home, store):
    champion, challenger = canary(1.0)
    body = client.post("/v1/predict", json=home).get_json()
    assert body["model"]["version"] == challenger
    minimal = {k: home[k] for k in ("bedrooms", "bathrooms", "sqft_living",
                                    "sqft_lot", "floors", "sqft_above",
                                    "sqft_basement", "zipcode")}
    body = client.post("/v1/predict/minimal", json=minimal).get_json()
    assert body["model"]["version"] == challenger
    body = client.post("/v1/predict/batch",
                       json={"instances": [home, home]}).get_json()
    assert body["model"]["version"] == challenger
    # The version's own descriptions stay the active one's.
    assert client.get("/v1/model").get_json()["version"] == champion
    store.abort_rollout()
    app.extensions["housing"].reload()
    body = client.post("/v1/predict", json=home).get_json()
    assert body["model"]["version"] == champion


def test_a_shadow_never_answers_a_client(app, client, home, store):
    champion, challenger = store.current(), publish_copy(store)
    store.start_rollout(challenger, "shadow")
    app.extensions["housing"].reload()
    assert app.extensions["housing"].challenger.version == challenger
    body = client.post("/v1/predict", json=home).get_json()
    assert body["model"]["version"] == champion


def test_each_api_key_keeps_its_side_of_the_canary(app, client, canary, home):
    champion, challenger = canary(0.5)
    seen = {}
    for i in range(24):
        made = client.post("/admin/keys", headers=ADMIN,
                           json={"name": f"client-{i}", "scopes": ["predict"]})
        assert made.status_code == 201, made.get_json()
        key = {"Authorization": f"Bearer {made.get_json()['key']}"}
        versions = {client.post("/v1/predict", json=home, headers=key)
                    .get_json()["model"]["version"] for _ in range(3)}
        assert len(versions) == 1  # sticky
        seen[i] = versions.pop()
    assert set(seen.values()) == {champion, challenger}


def publish_other(store, price=500_000.0) -> str:
    """A version whose model answers about ``price`` for every home."""
    from model_files import payload, skops_bytes, small_model, with_artifact

    files, metadata = payload(store)
    model = small_model(len(metadata["features"]), price)
    return store.publish(with_artifact(files, metadata, skops_bytes(model)),
                         metadata)


def logged_rows(app, url):
    from sqlalchemy import select

    from housing_api.db import make_engine, predictions

    assert app.extensions["housing_log"].flush()
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = list(connection.execute(select(predictions)))
    engine.dispose()
    return rows


def test_a_shadow_estimate_is_logged_beside_each_answered_one(
        logged_app, database_url, home, store):
    client = logged_app.test_client()
    champion, challenger = store.current(), publish_other(store)
    store.start_rollout(challenger, "shadow")
    logged_app.extensions["housing"].reload()
    answered = client.post("/v1/predict", json=home).get_json()
    batch = client.post("/v1/predict/batch",
                        json={"instances": [home, home]}).get_json()
    assert answered["model"]["version"] == batch["model"]["version"] == champion
    rows = logged_rows(logged_app, database_url)
    answered_ids = {answered["prediction_id"],
                    *(p["prediction_id"] for p in batch["predictions"])}
    shadows = [r for r in rows if r.champion_id is not None]
    assert {r.id for r in rows if r.champion_id is None} == answered_ids
    assert {r.champion_id for r in shadows} == answered_ids and len(shadows) == 3
    assert {r.model_version for r in shadows} == {challenger}
    # The challenger's own estimates, not copies of the answers.
    assert all(4e5 < r.price < 6e5 for r in shadows)
    assert answered["prediction"] != pytest.approx(
        next(r.price for r in shadows
             if r.champion_id == answered["prediction_id"]))
    assert {r.request_id for r in shadows} == {r.request_id for r in rows}


def test_without_a_rollout_nothing_is_logged_twice(logged_app, database_url,
                                                   home, store):
    client = logged_app.test_client()
    client.post("/v1/predict", json=home)
    rows = logged_rows(logged_app, database_url)
    assert len(rows) == 1 and rows[0].champion_id is None
