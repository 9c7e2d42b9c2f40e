"""The admin API under the test client (the Gunicorn reload: test_reload_e2e)."""
import io
import json
import pickle
import time

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from conftest import DATA_DIR, TOKEN
from housing_api import create_app
from housing_api.store import ModelStore
from model_files import (
    boosted_payload, payload, publish_copy, skops_bytes, small_model, tamper,
    with_artifact,
)


def make_client(model_dir, **config):
    app = create_app({"TESTING": True, "MODEL_DIR": model_dir, "DATA_DIR": DATA_DIR,
                      "RATELIMIT_ENABLED": False, **config})
    return app.test_client()


@pytest.fixture
def second(store):
    """A second stored version, inactive."""
    return publish_copy(store)


def served_version(client):
    model = client.get("/v1/model").get_json()["version"]
    ready = client.get("/health/ready").get_json()["model"]["version"]
    assert model == ready
    return model


def post_files(client, headers, **fields):
    """POST multipart ``fields`` ({name: bytes}) to /admin/models."""
    # Encoded here, in memory: the test client would spool a large body to a
    # temporary file that nothing closes.
    boundary, body = encode_multipart(MultiDict({
        name: FileStorage(io.BytesIO(data), filename=name)
        for name, data in fields.items()}))
    return client.post("/admin/models", data=body, headers=headers,
                       content_type=f"multipart/form-data; boundary={boundary}")


def upload(client, headers, files, metadata, demographics=True):
    fields = {"artifact": files["model.skops"],
              "metadata": json.dumps(metadata).encode()}
    if demographics:
        fields["demographics"] = files["demographics.csv"]
    return post_files(client, headers, **fields)


def test_no_token_configured_disables_the_admin_api(model_dir):
    client = make_client(model_dir, ADMIN_TOKENS="")
    response = client.get("/admin/models",
                          headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403
    assert "admin API is disabled" in response.get_json()["message"]


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": TOKEN},
    {"Authorization": "Bearer "},
])
def test_missing_or_wrong_token_is_401(client, headers):
    response = client.get("/admin/models", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["code"] == 401
    assert TOKEN not in response.get_data(as_text=True)


@pytest.mark.parametrize("param", ["token", "access_token", "api_key"])
def test_token_in_the_query_string_is_refused(client, admin_headers, param):
    response = client.get(f"/admin/models?{param}={TOKEN}")
    assert response.status_code == 401
    assert "Authorization header" in response.get_json()["message"]
    assert client.get(f"/admin/models?{param}={TOKEN}",
                      headers=admin_headers).status_code == 401


def test_every_admin_route_needs_the_token(client, store):
    version = store.current()
    for method, path in [("get", "/admin/models"), ("post", "/admin/models"),
                         ("get", f"/admin/models/{version}"),
                         ("delete", f"/admin/models/{version}"),
                         ("post", f"/admin/models/{version}/activate"),
                         ("post", "/admin/models/rollback"),
                         ("post", "/admin/models/train"),
                         ("get", f"/admin/jobs/{'0' * 32}")]:
        assert getattr(client, method)(path).status_code == 401, path
    assert store.list_versions() == [version]


def test_any_configured_token_works(model_dir):
    client = make_client(model_dir, ADMIN_TOKEN="single-token",
                         ADMIN_TOKENS="old-token, new-token")
    for token in ("single-token", "old-token", "new-token"):
        response = client.get("/admin/models",
                              headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200


def test_tokens_from_the_environment(model_dir, monkeypatch):
    monkeypatch.setenv("HOUSING_ADMIN_TOKEN", "73915820461")
    monkeypatch.setenv("HOUSING_ADMIN_TOKENS", "first,second")
    client = make_client(model_dir)
    for token in ("73915820461", "first", "second"):
        response = client.get("/admin/models",
                              headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, token
    assert client.get("/admin/models", headers={
        "Authorization": "Bearer first,second"}).status_code == 401


def test_the_admin_api_is_documented_with_its_security_schemes(client):
    spec = client.get("/openapi.json").get_json()
    schemes = spec["components"]["securitySchemes"]
    assert (schemes["bearerAuth"]["type"], schemes["bearerAuth"]["scheme"]) == (
        "http", "bearer")
    assert (schemes["apiKeyHeader"]["in"], schemes["apiKeyHeader"]["name"]) == (
        "header", "X-API-Key")
    for path, item in spec["paths"].items():
        if path.startswith("/admin/"):
            for operation in (o for o in item.values() if isinstance(o, dict)):
                # A token or an admin key, never nothing.
                assert operation["security"] == [
                    {"bearerAuth": []}, {"apiKeyHeader": []}], path


def test_list_marks_the_active_and_previous_versions(client, admin_headers, store,
                                                     second):
    first = store.current()
    store.activate(second)
    body = client.get("/admin/models", headers=admin_headers).get_json()
    assert (body["active"], body["previous"]) == (second, first)
    assert [(v["version"], v["active"], v["previous"]) for v in body["versions"]] \
        == [(first, False, True), (second, True, False)]
    assert body["versions"][0]["metadata"]["metrics"]["holdout"]["r2"] > 0.5


def test_show_one_version(client, admin_headers, store):
    version = store.current()
    body = client.get(f"/admin/models/{version}", headers=admin_headers).get_json()
    assert body["version"] == version and body["active"] is True
    assert client.get("/admin/models/nope", headers=admin_headers).status_code == 404


@pytest.mark.parametrize("demographics", [True, False])
def test_upload_stores_a_version_without_activating_it(client, admin_headers, store,
                                                       demographics):
    active = store.current()
    files, metadata = payload(store)
    response = upload(client, admin_headers, files, metadata, demographics)
    assert response.status_code == 201, response.get_json()
    version = response.get_json()["version"]
    assert response.headers["Location"].endswith(f"/admin/models/{version}")
    assert store.list_versions() == [active, version]
    assert store.current() == active
    assert served_version(client) == active
    assert store.load(version).version == version


@pytest.fixture(scope="module")
def boosted():
    return boosted_payload()


def test_upload_a_model_with_its_context(client, admin_headers, store, boosted):
    files, metadata = boosted
    response = post_files(client, admin_headers,
                          artifact=files["model.lgb.txt"],
                          metadata=json.dumps(metadata).encode(),
                          context=files["neighbours.npz"])
    assert response.status_code == 201, response.get_json()
    version = response.get_json()["version"]
    assert set(store.metadata(version)["files"]) == {
        "model.lgb.txt", "neighbours.npz", "demographics.csv"}
    assert store.load(version).context is not None


def test_upload_without_the_context_a_feature_set_needs(client, admin_headers,
                                                        store, boosted):
    files, metadata = boosted
    response = post_files(client, admin_headers, artifact=files["model.lgb.txt"],
                          metadata=json.dumps(metadata).encode())
    assert response.status_code == 422
    assert "needs neighbours.npz" in response.get_json()["message"]
    assert len(store.list_versions()) == 1


def test_a_context_the_feature_set_does_not_take(client, admin_headers, store):
    files, metadata = payload(store)
    response = post_files(client, admin_headers, artifact=files["model.skops"],
                          metadata=json.dumps(metadata).encode(),
                          context=b"anything")
    assert response.status_code == 422
    assert "takes no context file" in response.get_json()["message"]
    assert len(store.list_versions()) == 1


def _bad_uploads():
    def artifact(data):
        return lambda files, metadata: (with_artifact(files, metadata, data), metadata)

    def meta(**changes):
        return lambda files, metadata: (files, {**metadata, **changes})

    return [
        ("pickle", lambda files, metadata: (with_artifact(
            files, metadata, pickle.dumps(small_model(len(metadata["features"])))),
            metadata), "not a skops file"),
        ("not a zip", artifact(b"PK\x03\x04 nothing"), "not a skops file"),
        ("unknown feature set", meta(feature_set="luxury"), "unknown feature set"),
        ("wrong features", meta(features=["bedrooms", "bathrooms"]),
         "features do not match"),
        ("pickle format", meta(artifact={"file": "model.skops", "format": "pickle"}),
         "unknown artifact format"),
        ("no artifact object", meta(artifact="model.skops"), "'artifact' object"),
        ("negative prices", lambda files, metadata: (with_artifact(
            files, metadata,
            skops_bytes(small_model(len(metadata["features"]), price=-5.0))),
            metadata), "non-finite or non-positive"),
    ]


@pytest.mark.parametrize("name, spoil, reason", _bad_uploads(),
                         ids=[case[0] for case in _bad_uploads()])
def test_bad_uploads_are_422_and_nothing_is_written(
        client, admin_headers, store, name, spoil, reason):
    before = sorted(p.name for p in store.versions_dir.iterdir())
    files, metadata = spoil(*payload(store))
    response = upload(client, admin_headers, files, metadata)
    assert response.status_code == 422, response.get_json()
    assert reason in response.get_json()["message"]
    assert sorted(p.name for p in store.versions_dir.iterdir()) == before


def test_upload_with_metadata_that_is_not_json(client, admin_headers, store):
    files, _ = payload(store)
    response = post_files(client, admin_headers, artifact=files["model.skops"],
                          metadata=b"{not json")
    assert response.status_code == 422
    assert len(store.list_versions()) == 1


def test_upload_without_the_artifact(client, admin_headers, store):
    response = post_files(client, admin_headers, metadata=b"{}")
    assert response.status_code == 422
    assert "artifact" in response.get_json()["errors"]["files"]


def test_activate_swaps_in_process_under_the_dev_server(client, admin_headers,
                                                        store, second, home):
    first = store.current()
    response = client.post(f"/admin/models/{second}/activate", headers=admin_headers)
    assert response.status_code == 202
    assert response.get_json()["reload"] == "in-process"
    assert store.current() == second
    assert served_version(client) == second
    predicted = client.post("/v1/predict", json=home).get_json()
    assert predicted["model"]["version"] == second
    assert first != second


def test_activate_unknown_version_is_404(client, admin_headers):
    assert client.post("/admin/models/nope/activate",
                       headers=admin_headers).status_code == 404


def test_activating_a_tampered_version_is_refused(client, admin_headers, store,
                                                  second):
    first = store.current()
    tamper(store.path(second) / "model.skops")
    response = client.post(f"/admin/models/{second}/activate", headers=admin_headers)
    assert response.status_code == 422
    assert "sha256" in response.get_json()["message"]
    assert store.current() == first
    assert served_version(client) == first


def test_rollback_is_202_then_409_when_nothing_is_left(
        client, admin_headers, store, second):
    first = store.current()
    client.post(f"/admin/models/{second}/activate", headers=admin_headers)
    response = client.post("/admin/models/rollback", headers=admin_headers)
    assert response.status_code == 202
    assert response.get_json()["version"] == first
    assert served_version(client) == first
    response = client.post("/admin/models/rollback", headers=admin_headers)
    assert response.status_code == 409
    assert served_version(client) == first


def test_delete(client, admin_headers, store, second):
    first = store.current()
    assert client.delete(f"/admin/models/{second}",
                         headers=admin_headers).status_code == 204
    assert store.list_versions() == [first]
    response = client.delete(f"/admin/models/{first}", headers=admin_headers)
    assert response.status_code == 409
    assert "active" in response.get_json()["message"]
    assert client.delete(f"/admin/models/{second}",
                         headers=admin_headers).status_code == 404
    assert served_version(client) == first


def test_unknown_job_is_404(client, admin_headers):
    for job_id in ("0" * 32, "../../etc/passwd", "x"):
        assert client.get(f"/admin/jobs/{job_id}",
                          headers=admin_headers).status_code == 404


def test_train_request_is_validated(client, admin_headers):
    for body in ({"algorithm": "gpt"}, {"activate": "maybe"}, {"extra": 1}):
        response = client.post("/admin/models/train", json=body,
                               headers=admin_headers)
        assert response.status_code == 422, body


def wait_for_job(client, headers, location, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(location, headers=headers).get_json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.25)
    pytest.fail(f"job {location} did not finish within {timeout} s")


def test_training_runs_in_a_job_and_the_gate_decides(client, admin_headers, store):
    active = store.current()
    started = {}
    # Both jobs at once: each trains in its own process (~8 s).
    for activate in (True, False):
        response = client.post("/admin/models/train",
                               json={"algorithm": "reference", "activate": activate},
                               headers=admin_headers)
        assert response.status_code == 202
        job = response.get_json()
        assert job["state"] == "queued" and job["activate"] is activate
        assert response.headers["Location"].endswith(f"/admin/jobs/{job['id']}")
        started[activate] = response.headers["Location"]
    gated, kept = (wait_for_job(client, admin_headers, started[a])
                   for a in (True, False))

    assert kept["state"] == "succeeded", kept
    assert kept["promoted"] is False
    assert kept["reason"] == "not activated (--no-activate)"
    # Same data, same seed: metrics equal the active's, and "no worse" passes.
    assert gated["state"] == "succeeded", gated
    assert gated["promoted"] is True
    assert "no worse, promoted" in gated["reason"] and active in gated["reason"]
    assert store.current() == gated["version"]
    assert set(store.list_versions()) == {active, gated["version"], kept["version"]}
    assert gated["finished_at"] and kept["finished_at"]
    # The last step the job reported: the new version's metrics, finished.
    assert gated["progress"]["step"] == "reference-knn: holdout and training metrics"
    assert gated["progress"]["seconds"] >= 0 and gated["progress"]["total"] is None


def test_the_gate_refuses_a_worse_model_and_says_why(store):
    from housing_api.training.train import promotion_decision

    metadata = store.metadata(store.current())
    worse = json.loads(json.dumps(metadata))
    worse["metrics"]["holdout"]["r2"] -= 0.01
    promoted, reason = promotion_decision(store, worse)
    assert not promoted
    assert "worse, not promoted" in reason and store.current() in reason


def test_a_job_whose_process_dies_is_marked_failed(model_dir, monkeypatch):
    from housing_api.training import jobs

    monkeypatch.setattr(jobs.sys, "executable", "/bin/false")
    job = jobs.start_training(model_dir, DATA_DIR, "reference", False)
    deadline = time.monotonic() + 10
    while jobs.read(model_dir, job["id"])["state"] != "failed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "exited with status 1" in jobs.read(model_dir, job["id"])["reason"]
    assert len(ModelStore(model_dir).list_versions()) == 1


def test_the_admin_api_works_on_a_bucket(s3_store, admin_headers, tmp_path):
    client = make_client(tmp_path / "cache", MODEL_STORE=s3_store.location,
                         ADMIN_TOKENS=TOKEN)
    first = served_version(client)
    files, metadata = payload(s3_store)
    uploaded = upload(client, admin_headers, files, metadata)
    assert uploaded.status_code == 201, uploaded.get_json()
    second = uploaded.get_json()["version"]
    listed = client.get("/admin/models", headers=admin_headers).get_json()
    assert [(v["version"], v["active"]) for v in listed["versions"]] == [
        (first, True), (second, False)]
    assert client.post(f"/admin/models/{second}/activate",
                       headers=admin_headers).status_code == 202
    assert served_version(client) == second == s3_store.current()
    rolled = client.post("/admin/models/rollback", headers=admin_headers)
    assert rolled.get_json()["version"] == first == served_version(client)
    assert client.delete(f"/admin/models/{second}",
                         headers=admin_headers).status_code == 204
    assert s3_store.list_versions() == [first]
