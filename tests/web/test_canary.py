"""A canary: a share of the clients, each always the same, get the challenger."""
import pytest

from conftest import DATA_DIR, TOKEN
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


def replay_holdout(app, n):
    """Post the first ``n`` holdout homes, each from its own client address
    (so both sides of a canary get homes), and report their sales.

    Return their columns, their sale prices, and the versions that answered.
    """
    from housing_api.training.data import Sales, take

    client = app.test_client()
    sales = Sales.read(DATA_DIR)
    rows = sales.split()[1][:n]
    columns = take(sales.columns, rows)
    homes = [{name: columns[name][i].item() if hasattr(columns[name][i], "item")
              else columns[name][i] for name in columns} for i in range(n)]
    reported, answered_by = [], set()
    for i, home in enumerate(homes):
        body = client.post("/v1/predict", json=home, environ_base={
            "REMOTE_ADDR": f"10.1.{i // 256}.{i % 256}"}).get_json()
        answered_by.add(body["model"]["version"])
        reported.append({"prediction_id": body["prediction_id"],
                         "sale_price": float(sales.price[rows[i]]),
                         "sale_date": "2026-12-01"})
    assert app.extensions["housing_log"].flush()
    assert client.post("/v1/sales", json={"sales": reported}).status_code == 200
    return columns, sales.price[rows], answered_by


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
    shadows = [r for r in rows if r.answered_id is not None]
    assert {r.id for r in rows if r.answered_id is None} == answered_ids
    assert {r.answered_id for r in shadows} == answered_ids and len(shadows) == 3
    assert {r.model_version for r in shadows} == {challenger}
    # The challenger's own estimates, not copies of the answers.
    assert all(4e5 < r.price < 6e5 for r in shadows)
    assert answered["prediction"] != pytest.approx(
        next(r.price for r in shadows
             if r.answered_id == answered["prediction_id"]))
    assert {r.request_id for r in shadows} == {r.request_id for r in rows}


def test_without_a_rollout_nothing_is_logged_twice(logged_app, database_url,
                                                   home, store):
    client = logged_app.test_client()
    client.post("/v1/predict", json=home)
    rows = logged_rows(logged_app, database_url)
    assert len(rows) == 1 and rows[0].answered_id is None


def test_the_judgement_equals_an_offline_comparison_on_the_same_homes(
        logged_app, database_url, store):
    """Holdout homes and their sales replayed through a canary."""
    import numpy as np

    from housing_api.db import make_engine
    from housing_api.monitoring.rollouts import judge

    champion, challenger = store.current(), publish_other(store, 450_000.0)
    rollout = store.start_rollout(challenger, "canary", 0.5)
    logged_app.extensions["housing"].reload()
    columns, y, answered_by = replay_holdout(logged_app, 60)
    assert answered_by == {champion, challenger}

    engine = make_engine(database_url)
    found = judge(engine, rollout)
    engine.dispose()
    # Offline: both versions on the same homes, straight from the store.
    errors = {name: np.abs(store.load(version).predict(columns).price - y)
              for name, version in (("champion", champion),
                                    ("challenger", challenger))}
    judged = found["sales"]
    assert judged["n"] == len(y)
    for name, e in errors.items():
        assert judged[name]["mae"] == pytest.approx(e.mean(), rel=1e-9)
        assert judged[name]["mape"] == pytest.approx(np.mean(e / y), rel=1e-9)
    difference = errors["challenger"] - errors["champion"]
    assert judged["mae"]["difference"] == pytest.approx(difference.mean(), rel=1e-9)
    assert judged["mae"]["low"] < judged["mae"]["difference"] < judged["mae"]["high"]
    assert found["price_ratio"]["n"] == len(y)
    assert found["price_ratio"]["quantiles"]["p50"] == pytest.approx(
        np.median(store.load(challenger).predict(columns).price
                  / store.load(champion).predict(columns).price), rel=1e-9)


@pytest.fixture
def guarded(model_dir, database_url, tmp_path):
    """An app that ends a canary worse by a MAPE point on 40 sales or more."""
    from conftest import close_app
    from housing_api import create_app

    made = []

    def make(**config):
        app = create_app({
            "TESTING": True, "MODEL_DIR": model_dir, "DATA_DIR": DATA_DIR,
            "RATELIMIT_ENABLED": False, "DATABASE_URL": database_url,
            "PREDICTION_LOG_SPOOL_DIR": tmp_path / "spool", "ADMIN_TOKENS": TOKEN,
            "ROLLOUT_AUTO_ABORT": True, "ROLLOUT_ABORT_MARGIN": 0.01,
            "ROLLOUT_ABORT_MIN_SALES": 40, **config})
        made.append(app)
        return app
    yield make
    for app in made:
        close_app(app)


def auto_aborts(app) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = app.test_client().get("/metrics").text
    (family,) = [f for f in text_string_to_metric_families(text)
                 if f.name == "housing_rollout_auto_aborts"]
    return sum(s.value for s in family.samples if s.name.endswith("_total"))


def test_a_canary_worse_on_live_sales_ends_by_itself(guarded, store, home, caplog):
    app = guarded()
    champion, challenger = store.current(), publish_other(store, 450_000.0)
    started = store.start_rollout(challenger, "canary", 0.5)
    app.extensions["housing"].reload()
    replay_holdout(app, 60)
    client = app.test_client()
    due = client.get("/admin/rollout", headers=ADMIN).get_json()["judgement"][
        "auto_abort"]
    assert due["enabled"] and due["margin"] == 0.01 and due["min_sales"] == 40
    assert "worse than the margin of 1.00%" in due["due"]

    app.extensions["housing_gauges"].run_once()  # what the leader does each minute
    assert store.rollout() is None
    ended = store.ended_rollout()
    assert ended.rollout == started and ended.outcome == "aborted automatically"
    assert ended.reason == due["due"]
    assert auto_aborts(app) == 1
    (warning,) = [r for r in caplog.records if "aborted automatically" in r.message]
    assert warning.levelname == "WARNING" and warning.challenger == challenger
    # Reloaded: every client gets the champion again.
    for i in range(20):
        body = client.post("/v1/predict", json=home, environ_base={
            "REMOTE_ADDR": f"10.2.0.{i}"}).get_json()
        assert body["model"]["version"] == champion
    status = client.get("/admin/rollout", headers=ADMIN).get_json()
    assert status["rollout"] is None
    assert status["last_ended"]["outcome"] == "aborted automatically"
    # Nothing more to end at the next check.
    app.extensions["housing_gauges"].run_once()
    assert auto_aborts(app) == 1


@pytest.mark.parametrize("config, mode, price", [
    ({"ROLLOUT_AUTO_ABORT": False}, "canary", 450_000.0),  # off (the default)
    ({"ROLLOUT_ABORT_MIN_SALES": 61}, "canary", 450_000.0),  # too few sales
    ({"ROLLOUT_ABORT_MARGIN": 2.0}, "canary", 450_000.0),  # within the margin
    ({}, "shadow", 450_000.0),  # a shadow answers nobody
    ({}, "canary", None),  # a copy of the champion: no worse
], ids=["off", "too-few-sales", "within-margin", "shadow", "as-good"])
def test_a_canary_ends_by_itself_only_when_every_condition_holds(
        guarded, store, config, mode, price):
    app = guarded(**config)
    challenger = publish_copy(store) if price is None else publish_other(store,
                                                                         price)
    started = store.start_rollout(challenger, mode, 0.5 if mode == "canary"
                                  else None)
    app.extensions["housing"].reload()
    replay_holdout(app, 60)
    app.extensions["housing_gauges"].run_once()
    assert store.rollout() == started
    assert auto_aborts(app) == 0
    automatic = app.test_client().get("/admin/rollout", headers=ADMIN).get_json()[
        "judgement"]["auto_abort"]
    assert automatic.get("due") is None


def test_by_default_no_canary_ends_by_itself():
    from housing_api import config

    assert config.ROLLOUT_AUTO_ABORT is False
