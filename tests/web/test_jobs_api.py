"""/v1/jobs: a file submitted, followed, fetched; each client its own jobs."""
import csv
import io

import pytest

from conftest import DATA_DIR, TOKEN, close_app
from housing_api import create_app

EXAMPLES = DATA_DIR / "future_unseen_examples.csv"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def jobs_dir(request, tmp_path):
    """Where the app keeps job files: a folder, or (param "bucket") a bucket."""
    if getattr(request, "param", "folder") == "bucket":
        return request.getfixturevalue("bucket_url").rsplit("/", 1)[0] + "/jobs"
    return tmp_path / "jobs"


@pytest.fixture
def jobs_app(model_dir, database_url, tmp_path, jobs_dir):
    app = create_app({
        "TESTING": True, "MODEL_DIR": model_dir, "DATA_DIR": DATA_DIR,
        "RATELIMIT_ENABLED": False, "DATABASE_URL": database_url,
        "PREDICTION_LOG_SPOOL_DIR": tmp_path / "spool", "ADMIN_TOKENS": TOKEN,
        "JOBS_DIR": jobs_dir, "MAX_JOB_UPLOAD_BYTES": 200_000})
    yield app
    close_app(app)


def run_jobs(app):
    """What `housing-api worker` does, in this process."""
    from housing_api.cli.score import _checks
    from housing_api.jobs.files import job_files
    from housing_api.jobs.runner import Runner

    runner = Runner(app.extensions["housing_db"].get(),
                    app.extensions["housing"].store,
                    job_files(app.config["JOBS_DIR"], app.config["JOBS_SCRATCH_DIR"]),
                    _checks,
                    prediction_log=app.extensions["housing_log"])
    while runner.run_once() is not None:
        pass


def rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def fetch(client, url):
    """A streamed file's status, type and text (the response closed)."""
    response = client.get(url)
    try:
        return response.status_code, response.mimetype, response.get_data(
            as_text=True)
    finally:
        response.close()


def body(extra=("1,2,3",)):
    return "\n".join([*EXAMPLES.read_text().splitlines(), *extra]) + "\n"


@pytest.mark.parametrize("jobs_dir", ["folder", "bucket"], indirect=True)
@pytest.mark.parametrize("how", ["text/csv", "multipart"])
def test_a_file_is_queued_scored_and_fetched(jobs_app, how):
    client = jobs_app.test_client()
    if how == "text/csv":
        sent = client.post("/v1/jobs", data=body(), content_type="text/csv")
    else:
        sent = client.post("/v1/jobs", data={
            "file": (io.BytesIO(body().encode()), "homes.csv")},
            content_type="multipart/form-data")
    assert sent.status_code == 202, sent.get_json()
    job = sent.get_json()
    assert job["state"] == "queued" and sent.headers["Location"].endswith(
        f"/v1/jobs/{job['id']}")
    assert client.get(f"/v1/jobs/{job['id']}/result").status_code == 409

    run_jobs(jobs_app)
    status = client.get(sent.headers["Location"]).get_json()
    assert (status["state"], status["rows_total"], status["rows_done"],
            status["rows_failed"]) == ("succeeded", 101, 101, 1)
    assert status["seconds"] >= 0 and status["model_version"]
    code, mimetype, text = fetch(client, status["links"]["result"])
    assert (code, mimetype) == (200, "text/csv")
    scored = rows(text)
    batch = client.post("/v1/predict/batch", data=EXAMPLES.read_text(),
                        content_type="text/csv").get_json()["predictions"]
    assert [float(r["prediction"]) for r in scored] == [
        p["prediction"] for p in batch]
    # Each estimate's prediction id: its sale can be reported.
    sale = {"prediction_id": scored[0]["prediction_id"], "sale_price": 350_000,
            "sale_date": "2026-12-01"}
    assert jobs_app.extensions["housing_log"].flush()
    reported = client.post("/v1/sales", json={"sales": [sale]})
    assert reported.status_code == 200, reported.get_json()
    refused = rows(fetch(client, status["links"]["errors"])[2])
    assert [r["row"] for r in refused] == ["101"]
    assert client.delete(sent.headers["Location"]).status_code == 204
    assert client.get(status["links"]["result"]).status_code == 404


def test_a_client_sees_only_its_own_jobs(jobs_app):
    client = jobs_app.test_client()
    mine = client.post("/v1/jobs", data=body(), content_type="text/csv",
                       environ_base={"REMOTE_ADDR": "10.0.0.1"}).get_json()
    other = {"REMOTE_ADDR": "10.0.0.2"}
    assert client.get(f"/v1/jobs/{mine['id']}", environ_base=other
                      ).status_code == 404
    assert client.delete(f"/v1/jobs/{mine['id']}", environ_base=other
                         ).status_code == 404
    assert client.get("/v1/jobs", environ_base=other).get_json() == {"jobs": []}
    listed = client.get("/v1/jobs", environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert [j["id"] for j in listed.get_json()["jobs"]] == [mine["id"]]


def test_delete_cancels_a_queued_job_and_removes_a_finished_one(jobs_app):
    client = jobs_app.test_client()
    queued = client.post("/v1/jobs", data=body(), content_type="text/csv"
                         ).get_json()
    cancelled = client.delete(f"/v1/jobs/{queued['id']}")
    assert cancelled.status_code == 202
    assert cancelled.get_json()["state"] == "cancelled"
    assert not (jobs_app.config["JOBS_DIR"] / queued["id"]).exists()
    done = client.post("/v1/jobs", data=body(), content_type="text/csv").get_json()
    run_jobs(jobs_app)
    assert client.delete(f"/v1/jobs/{done['id']}").status_code == 204
    assert client.get(f"/v1/jobs/{done['id']}").status_code == 404
    assert not (jobs_app.config["JOBS_DIR"] / done["id"]).exists()


@pytest.mark.parametrize("send, status, says", [
    (lambda: dict(data="zip,price\n1,2\n", content_type="text/csv"), 422,
     "header"),
    (lambda: dict(data="", content_type="text/csv"), 422, "empty"),
    (lambda: dict(data=b"\xff\xfe" * 10, content_type="text/csv"), 400,
     "not UTF-8"),
    (lambda: dict(data="x" * 200_001, content_type="text/csv"), 413,
     "larger than"),
    (lambda: dict(json={"instances": []}), 415, "text/csv"),
    (lambda: dict(data={"other": (io.BytesIO(b"x"), "a.csv")},
                  content_type="multipart/form-data"), 422,
     "multipart field 'file'"),
], ids=["header", "empty", "not-utf8", "too-large", "json", "no-file-field"])
def test_a_bad_upload_is_a_clear_4xx_and_nothing_is_kept(jobs_app, send, status,
                                                         says):
    client = jobs_app.test_client()
    response = client.post("/v1/jobs", **send())
    assert response.status_code == status, response.get_json()
    assert response.get_json()["code"] == status
    assert says in response.get_json()["message"]
    jobs_dir = jobs_app.config["JOBS_DIR"]
    assert not jobs_dir.exists() or not any(jobs_dir.iterdir())
    assert client.get("/v1/jobs").get_json() == {"jobs": []}


def test_an_unknown_version_is_refused_before_the_upload(jobs_app):
    response = jobs_app.test_client().post("/v1/jobs?version=nope", data=body(),
                                           content_type="text/csv")
    assert response.status_code == 404
    assert "nope" in response.get_json()["message"]
