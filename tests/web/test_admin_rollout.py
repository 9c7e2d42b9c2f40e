"""/admin/rollout: the rollout commands over HTTP, with the store's guarantees."""
import pytest

from conftest import TOKEN
from model_files import publish_copy

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def challenger(store):
    return publish_copy(store)


def test_a_canary_is_started_judged_and_promoted(client, store, challenger, home):
    champion = store.current()
    assert client.get("/admin/rollout", headers=ADMIN).get_json() == {
        "rollout": None, "judgement": None, "last_ended": None}
    started = client.post("/admin/rollout", headers=ADMIN, json={
        "version": challenger, "mode": "canary", "share": 1.0})
    assert started.status_code == 202, started.get_json()
    body = started.get_json()
    assert body["rollout"]["challenger"] == challenger
    assert body["rollout"]["champion"] == champion
    assert body["reload"] == "in-process"
    assert client.post("/v1/predict", json=home).get_json()["model"]["version"] \
        == challenger
    assert client.application.extensions["housing_log"].flush()
    status = client.get("/admin/rollout", headers=ADMIN).get_json()
    assert status["rollout"]["share"] == 1.0
    assert status["judgement"]["price_ratio"]["n"] == 1
    assert status["judgement"]["sales"]["n"] == 0
    # The challenger answered that one home: its drift rests on it alone.
    drift = status["judgement"]["challenger_drift"]
    assert drift["rows"] == 1 and drift["verdict"] == "too few rows"
    assert {f["name"] for f in drift["features"]} >= {"sqft_living", "zipcode",
                                                      "price"}
    assert status["judgement"]["auto_abort"] == {"enabled": False}
    promoted = client.post("/admin/rollout/promote", headers=ADMIN)
    assert promoted.status_code == 202
    assert store.current() == challenger and store.rollout() is None
    status = client.get("/admin/rollout", headers=ADMIN).get_json()
    assert status["rollout"] is None
    assert status["last_ended"]["outcome"] == "promoted"
    assert status["last_ended"]["rollout"]["challenger"] == challenger


def test_a_canarys_share_changes_over_http_and_readiness_shows_it(
        client, store, challenger):
    assert client.get("/health/ready").get_json()["rollout"] is None
    started = client.post("/admin/rollout", headers=ADMIN, json={
        "version": challenger, "mode": "canary", "share": 0.1}).get_json()
    changed = client.patch("/admin/rollout", headers=ADMIN, json={"share": 0.4})
    assert changed.status_code == 202, changed.get_json()
    assert changed.get_json()["rollout"] == {**started["rollout"], "share": 0.4}
    assert store.rollout().share == 0.4
    assert client.get("/health/ready").get_json()["rollout"] == {
        "id": started["rollout"]["id"], "mode": "canary",
        "challenger": challenger, "share": 0.4}
    refused = client.patch("/admin/rollout", headers=ADMIN, json={"share": 0})
    assert refused.status_code == 422 and "share" in refused.get_json()["errors"][
        "json"]
    assert store.rollout().share == 0.4


def test_a_shadow_has_no_share_to_change_over_http(client, store, challenger):
    client.post("/admin/rollout", headers=ADMIN,
                json={"version": challenger, "mode": "shadow"})
    refused = client.patch("/admin/rollout", headers=ADMIN, json={"share": 0.5})
    assert refused.status_code == 409
    assert "only a canary has a share" in refused.get_json()["message"]
    assert store.rollout().share == 1.0


def test_abort_brings_the_champion_back(client, store, challenger, home):
    champion = store.current()
    client.post("/admin/rollout", headers=ADMIN,
                json={"version": challenger, "mode": "canary", "share": 1.0})
    assert client.post("/admin/rollout/abort", headers=ADMIN).status_code == 202
    assert client.post("/v1/predict", json=home).get_json()["model"]["version"] \
        == champion
    ended = client.get("/admin/rollout", headers=ADMIN).get_json()["last_ended"]
    assert ended["outcome"] == "aborted" and ended["reason"] is None


@pytest.mark.parametrize("body, status, field", [
    ({"version": "x", "mode": "canary"}, 422, "share"),
    ({"version": "x", "mode": "blue-green"}, 422, "mode"),
    ({"version": "x", "mode": "canary", "share": 0}, 422, "share"),
    ({"version": "x", "mode": "canary", "share": 1.5}, 422, "share"),
    ({"mode": "shadow"}, 422, "version"),
    ({"version": "x", "mode": "shadow", "extra": 1}, 422, "extra"),
])
def test_a_bad_request_names_its_field_and_changes_nothing(client, store, body,
                                                           status, field):
    response = client.post("/admin/rollout", headers=ADMIN, json=body)
    assert response.status_code == status
    assert field in response.get_json()["errors"]["json"]
    assert store.rollout() is None


def test_refusals_say_why(client, store, challenger):
    current = store.current()
    cases = [
        ({"version": "no-such-version", "mode": "shadow"}, 404),
        ({"version": current, "mode": "shadow"}, 409),
    ]
    for body, status in cases:
        response = client.post("/admin/rollout", headers=ADMIN, json=body)
        assert response.status_code == status, response.get_json()
        assert response.get_json()["code"] == status
    client.post("/admin/rollout", headers=ADMIN,
                json={"version": challenger, "mode": "shadow"})
    again = client.post("/admin/rollout", headers=ADMIN,
                        json={"version": challenger, "mode": "shadow"})
    assert again.status_code == 409
    assert "in progress" in again.get_json()["message"]
    client.post("/admin/rollout/abort", headers=ADMIN)
    for path in ("/admin/rollout/abort", "/admin/rollout/promote"):
        response = client.post(path, headers=ADMIN)
        assert response.status_code == 409
        assert response.get_json()["message"] == "no rollout is in progress"


def test_the_rollout_needs_an_admin(client, challenger):
    response = client.post("/admin/rollout",
                           json={"version": challenger, "mode": "shadow"})
    assert response.status_code == 401
