"""API keys over HTTP: who may ask what, quotas, management, usage, secrecy."""
import json
import logging

import pytest
from sqlalchemy import select

from conftest import DATA_DIR, TOKEN, close_app
from housing_api import create_app
from housing_api.db import make_engine, migrate, predictions

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def make_app(model_dir, tmp_path):
    """Apps on one fresh SQLite database (the key logic is the same on
    PostgreSQL: tests/keys runs it on both)."""
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    migrate.upgrade(url)
    made = []

    def make(**config):
        app = create_app({
            "TESTING": True, "MODEL_DIR": model_dir, "DATA_DIR": DATA_DIR,
            "ADMIN_TOKENS": TOKEN, "RATELIMIT_ENABLED": False,
            "DATABASE_URL": url, "PREDICTION_LOG_SPOOL_DIR": tmp_path / "spool",
            **config})
        made.append(app)
        return app

    yield make
    for app in made:
        close_app(app)


@pytest.fixture
def app(make_app):
    return make_app(REQUIRE_API_KEY=True)


@pytest.fixture
def client(app):
    return app.test_client()


def new_key(client, scopes=("predict",), **fields):
    response = client.post("/admin/keys", json={"name": "agents-app",
                                                "scopes": list(scopes), **fields},
                           headers=ADMIN)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def assert_error(response, status, message_part):
    body = response.get_json()
    assert response.status_code == status, body
    assert body["code"] == status and message_part in body["message"], body
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_a_valid_key_with_its_scope_is_served(client, home):
    key = new_key(client)
    response = client.post("/v1/predict", json=home, headers=bearer(key["key"]))
    assert response.status_code == 200
    also = client.post("/v1/predict", json=home, headers={"X-API-Key": key["key"]})
    assert also.status_code == 200


def test_no_key_is_a_401_with_a_challenge(client, home):
    response = client.post("/v1/predict", json=home)
    assert_error(response, 401, "An API key with the 'predict' scope is required")
    assert response.headers["WWW-Authenticate"] == \
        'Bearer realm="housing-api", scope="predict"'


def test_an_unknown_key_is_a_401(client, home):
    new_key(client)
    response = client.post("/v1/predict", json=home, headers=bearer("hk_" + "a" * 43))
    assert_error(response, 401, "Unknown API key.")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Token abc"])
def test_another_scheme_is_a_401(client, home, header):
    response = client.post("/v1/predict", json=home,
                           headers={"Authorization": header})
    assert_error(response, 401, "Use the Bearer scheme")


@pytest.mark.parametrize("name", ["api_key", "key", "token", "access_token"])
def test_a_key_in_the_url_is_refused_even_a_valid_one(client, home, name):
    key = new_key(client)["key"]
    response = client.post(f"/v1/predict?{name}={key}", json=home)
    body = assert_error(response, 401, "never in the URL")
    assert key not in json.dumps(body)


def test_a_revoked_key_is_a_403(client, home):
    key = new_key(client)
    assert client.delete(f"/admin/keys/{key['id']}", headers=ADMIN).status_code == 200
    response = client.post("/v1/predict", json=home, headers=bearer(key["key"]))
    assert_error(response, 403, f"API key {key['prefix']}... is revoked")


def test_a_key_without_the_scope_is_a_403(client, home):
    predict_only = new_key(client, ["predict"])["key"]
    sales_only = new_key(client, ["sales"])["key"]
    response = client.post("/v1/sales", json={"sales": []},
                           headers=bearer(predict_only))
    assert_error(response, 403, "lacks the 'sales' scope")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert_error(client.post("/v1/predict", json=home, headers=bearer(sales_only)),
                 403, "lacks the 'predict' scope")
    assert client.get("/v1/model/performance",
                      headers=bearer(sales_only)).status_code == 200
    assert_error(client.get("/admin/models", headers=bearer(predict_only)),
                 403, "lacks the 'admin' scope")


@pytest.mark.parametrize("required", [True, False])
def test_each_operation_declares_how_it_takes_a_key(make_app, required):
    spec = make_app(REQUIRE_API_KEY=required).test_client().get(
        "/openapi.json").get_json()
    keyed = [{"bearerAuth": []}, {"apiKeyHeader": []}]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            if path.startswith("/v1/"):
                # {}: no key at all, which is allowed unless keys are required.
                assert operation["security"] == (
                    keyed if required else [*keyed, {}]), (method, path)
                assert {"401", "403"} <= set(operation["responses"]), path
            elif path.startswith("/health/"):
                assert "security" not in operation, path


def test_health_metrics_and_docs_need_no_key(client):
    for path in ("/health/live", "/health/ready", "/metrics", "/openapi.json",
                 "/docs"):
        assert client.get(path).status_code == 200, path


def test_without_required_keys_a_request_may_come_without_one(make_app, home):
    client = make_app().test_client()  # REQUIRE_API_KEY false: the default
    assert client.post("/v1/predict", json=home).status_code == 200
    # ... but a key that is sent must be one.
    assert_error(client.post("/v1/predict", json=home, headers=bearer("hk_x")),
                 401, "Unknown API key.")
    key = new_key(client)["key"]
    assert client.post("/v1/predict", json=home, headers=bearer(key)).status_code \
        == 200


def test_creating_shows_the_secret_once(client):
    created = new_key(client, ["predict", "sales"], quota="100 per second")
    assert created["key"].startswith(created["prefix"])
    assert created["scopes"] == ["predict", "sales"]
    assert created["quota"] == "100 per second" and not created["revoked"]
    listed = client.get("/admin/keys", headers=ADMIN).get_json()["keys"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0] and created["key"] not in json.dumps(listed)


@pytest.mark.parametrize("body, field", [
    ({"name": "a", "scopes": ["root"]}, "scopes"),
    ({"name": "a", "scopes": []}, "scopes"),
    ({"name": "", "scopes": ["predict"]}, "name"),
    ({"scopes": ["predict"]}, "name"),
    ({"name": "a", "scopes": ["predict"], "quota": "lots"}, "quota"),
    ({"name": "a", "scopes": ["predict"], "owner": "me"}, "owner"),
])
def test_a_bad_key_request_is_a_422_naming_the_field(client, body, field):
    response = client.post("/admin/keys", json=body, headers=ADMIN)
    assert field in assert_error(response, 422, "Invalid input")["errors"]["json"]
    assert client.get("/admin/keys", headers=ADMIN).get_json()["keys"] == []


def test_revoking_is_idempotent_and_unknown_ids_are_404(client):
    key = new_key(client)
    first = client.delete(f"/admin/keys/{key['id']}", headers=ADMIN).get_json()
    again = client.delete(f"/admin/keys/{key['id']}", headers=ADMIN).get_json()
    assert first["revoked"] and again["revoked_at"] == first["revoked_at"]
    assert_error(client.delete("/admin/keys/nope", headers=ADMIN), 404,
                 "No API key has this id.")


def test_a_rotated_key_hands_over_to_its_replacement(client, home):
    old = new_key(client, ["predict"], quota="7 per second")
    response = client.post(f"/admin/keys/{old['id']}/rotate", json={},
                           headers=ADMIN)
    assert response.status_code == 201
    new = response.get_json()
    assert (new["name"], new["scopes"], new["quota"]) == (
        old["name"], old["scopes"], old["quota"])
    assert new["replaces"]["id"] == old["id"]
    assert new["replaces"]["replaced_by"] == new["id"]
    assert client.post("/v1/predict", json=home,
                       headers=bearer(new["key"])).status_code == 200
    body = assert_error(client.post("/v1/predict", json=home,
                                    headers=bearer(old["key"])), 403, "revoked")
    assert f"replaced by key {new['id']}" in body["message"]
    assert_error(client.post(f"/admin/keys/{old['id']}/rotate", json={},
                             headers=ADMIN), 409, "is revoked")


def test_a_rotation_may_leave_the_old_key_working_a_while(client, home):
    old = new_key(client)
    new = client.post(f"/admin/keys/{old['id']}/rotate",
                      json={"old_key_valid_for": 600}, headers=ADMIN).get_json()
    for secret in (old["key"], new["key"]):
        assert client.post("/v1/predict", json=home,
                           headers=bearer(secret)).status_code == 200
    assert not new["replaces"]["revoked"] and new["replaces"]["revoked_at"]


def test_an_admin_key_runs_the_admin_api(make_app):
    bootstrap = make_app(REQUIRE_API_KEY=True).test_client()
    admin = new_key(bootstrap, ["admin"])["key"]
    # Without any admin token configured, the key is what opens it.
    client = make_app(REQUIRE_API_KEY=True, ADMIN_TOKENS="").test_client()
    assert client.get("/admin/models", headers=bearer(admin)).status_code == 200
    made = client.post("/admin/keys", json={"name": "b", "scopes": ["predict"]},
                       headers={"X-API-Key": admin})
    assert made.status_code == 201
    assert_error(client.get("/admin/models", headers=ADMIN), 401, "Unknown API key")
    assert_error(client.get("/admin/models"), 401, "An admin token or an API key")


def test_with_no_admin_token_and_no_admin_key_the_admin_api_is_off(make_app):
    client = make_app(ADMIN_TOKENS="").test_client()
    assert_error(client.get("/admin/keys", headers=ADMIN), 403,
                 "The admin API is disabled")


def test_usage_counts_requests_and_homes_per_key(client, home):
    key = new_key(client)
    other = new_key(client, name="other-app")
    for _ in range(3):
        client.post("/v1/predict", json=home, headers=bearer(key["key"]))
    client.post("/v1/predict/batch", json={"instances": [home] * 5},
                headers=bearer(key["key"]))
    client.post("/v1/predict", json={**home, "bedrooms": -1},
                headers=bearer(key["key"]))  # a 422: a request, no estimate
    client.post("/v1/predict", json=home, headers=bearer(other["key"]))
    client.application.extensions["housing_keys"].flush()
    usage = client.get(f"/admin/keys/{key['id']}/usage", headers=ADMIN).get_json()
    assert (usage["requests"], usage["estimates"]) == (5, 8)
    assert [(d["requests"], d["estimates"]) for d in usage["days"]] == [(5, 8)]
    assert usage["key"]["last_used_at"] is not None
    metrics = client.get("/metrics").get_data(as_text=True)
    assert ('housing_api_key_requests_total{endpoint="predict.Predict",'
            'key="agents-app"} 4.0') in metrics
    assert ('housing_api_key_requests_total{endpoint="predict.Batch",'
            'key="agents-app"} 1.0') in metrics
    assert 'housing_api_key_estimates_total{key="agents-app"} 8.0' in metrics
    assert_error(client.get("/admin/keys/nope/usage", headers=ADMIN), 404,
                 "No API key has this id.")


def test_the_prediction_log_records_the_key_of_each_estimate(client, app, home):
    key = new_key(client)
    ids = [client.post("/v1/predict", json=home,
                       headers=bearer(key["key"])).get_json()["prediction_id"]]
    ids += [e["prediction_id"] for e in client.post(
        "/v1/predict/batch", json={"instances": [home, home]},
        headers=bearer(key["key"])).get_json()["predictions"]]
    assert app.extensions["housing_log"].flush()
    engine = make_engine(app.config["DATABASE_URL"])
    with engine.connect() as connection:
        rows = dict(connection.execute(
            select(predictions.c.id, predictions.c.api_key_id)
            .where(predictions.c.id.in_(ids))).all())
    engine.dispose()
    assert rows == {pid: key["id"] for pid in ids}


def test_no_secret_in_logs_metrics_or_error_bodies(client, home, caplog):
    caplog.set_level(logging.DEBUG)
    key = new_key(client, ["predict"])
    secret, shown = key["key"], []
    revoked = new_key(client)
    client.delete(f"/admin/keys/{revoked['id']}", headers=ADMIN)
    for headers, path in ((bearer(secret), "/v1/predict"),
                          (bearer(secret), "/v1/sales"),
                          (bearer(revoked["key"]), "/v1/predict"),
                          (bearer(secret + "x"), "/v1/predict"),
                          ({}, f"/v1/predict?api_key={secret}")):
        response = client.post(path, json=home, headers=headers)
        shown.append(response.get_data(as_text=True))
    shown.append(client.get("/metrics").get_data(as_text=True))
    shown.append(client.get("/admin/keys", headers=ADMIN).get_data(as_text=True))
    logged = "\n".join(record.getMessage() + json.dumps(record.__dict__, default=str)
                       for record in caplog.records)
    for text in (*shown, logged):
        for s in (secret, revoked["key"], TOKEN):
            assert s not in text
            assert s[11:] not in text  # not even its secret part
    # The access log names the key by its prefix.
    assert any(getattr(r, "api_key", None) == key["prefix"] for r in caplog.records)


@pytest.fixture
def limited(make_app):
    return make_app(REQUIRE_API_KEY=True, RATELIMIT_ENABLED=True,
                    RATELIMIT_STORAGE_URI="memory://",
                    API_KEY_QUOTA="2 per minute", PREDICT_RATE_LIMIT="3 per minute",
                    API_KEY_FAILURE_LIMIT="3 per minute").test_client()


def test_each_key_has_its_own_quota(limited, home):
    default = new_key(limited, ["predict", "sales"])["key"]
    own = new_key(limited, quota="4 per minute")["key"]
    statuses = [limited.post("/v1/predict", json=home,
                             headers=bearer(default)).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]
    # Another key from the same address is not held back by the first.
    statuses = [limited.post("/v1/predict", json=home,
                             headers=bearer(own)).status_code for _ in range(5)]
    assert statuses == [200] * 4 + [429]
    response = limited.post("/v1/sales", json={"sales": []},
                            headers=bearer(default))
    assert_error(response, 429, "")  # one quota for all of /v1
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Limit"] == "2"


def test_unknown_keys_are_limited_per_address_before_any_lookup(limited, home):
    good = new_key(limited)["key"]
    for i in range(3):
        assert_error(limited.post("/v1/predict", json=home,
                                  headers=bearer(f"hk_guess{i}")), 401, "Unknown")
    cache = limited.application.extensions["housing_keys"]
    looked_up = []
    cache.lookup = lambda secret: looked_up.append(secret)
    response = limited.post("/v1/predict", json=home, headers=bearer("hk_guess3"))
    assert_error(response, 429, "Too many unknown API keys from this address")
    assert int(response.headers["Retry-After"]) >= 1
    # The address is held back whatever it sends, until the window ends.
    assert limited.post("/v1/predict", json=home,
                        headers=bearer(good)).status_code == 429
    assert looked_up == []
    del cache.lookup  # the real one again
    other = limited.post("/v1/predict", json=home, headers=bearer(good),
                         environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert other.status_code == 200  # another address is not held back
