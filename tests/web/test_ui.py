"""The pages, through Flask's test client: forms, errors, CSRF, keys, CSV."""
import csv
import io
import re

import pytest

from conftest import DATA_DIR, TOKEN, close_app, make_logged_app
from housing_api import create_app
from housing_api.inference.columns import CLIENT_COLUMNS
from housing_api.keys.records import create_key
from housing_api.web.schemas import HomeSchema
from model_files import publish_copy

FUTURE = DATA_DIR / "future_unseen_examples.csv"


def token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def form_of(home, page_html):
    return {**{k: str(v) for k, v in home.items()}, "csrf_token": token(page_html)}


def field_error(html, name):
    found = re.search(rf'<p class="error" id="{name}-error">([^<]*)</p>', html)
    return found and found.group(1)


def dollars(amount):
    return f"${amount:,.0f}"


def test_the_form_has_every_column_with_a_label_and_a_start(client):
    html = client.get("/").get_data(as_text=True)
    for name in CLIENT_COLUMNS:
        assert f'<label for="{name}">' in html
    schema = HomeSchema()
    assert re.search(r'id="sqft_living"[^>]*value="%s"' % schema.fields[
        "sqft_living"].metadata["example"], html, re.S)
    zipcodes = client.get("/v1/zipcodes").get_json()["zipcodes"]
    assert re.findall(r'<option value="(\d{5})"', html) == zipcodes


def test_an_estimate_from_the_form_is_the_apis(client, home):
    page = client.get("/").get_data(as_text=True)
    response = client.post("/", data=form_of(home, page))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    api = client.post("/v1/predict?explain=true", json=home).get_json()
    assert f'id="price">{dollars(api["prediction"])}<' in html
    assert dollars(api["interval"]["lower"]) in html
    assert api["model"]["version"] in html
    rows = re.findall(r"<tr><td>\d+</td><td>(\d{4}-\d\d-\d\d)</td>", html)
    assert rows == [c["date"] for c in api["comparables"]]
    assert html.count('<g class="sale">') == 5
    assert html.count("<rect ") >= 5  # the interval, the effects


def test_a_bad_value_is_shown_next_to_its_field(client, home):
    page = client.get("/").get_data(as_text=True)
    response = client.post("/", data={**form_of(home, page), "bedrooms": "-1",
                                      "grade": "14"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    api = client.post("/v1/predict", json={**home, "bedrooms": -1,
                                           "grade": 14}).get_json()
    for name in ("bedrooms", "grade"):
        assert field_error(html, name) == " ".join(api["errors"]["json"][name])
        assert f'aria-describedby="{name}-error"' in html
    assert 'id="price"' not in html
    assert 'value="-1"' in html  # what was typed stays


def test_minimal_inputs_are_the_models_own(client, home):
    html = client.get("/?inputs=minimal").get_data(as_text=True)
    minimal = client.get("/v1/features").get_json()["minimal"]
    labels = re.findall(r'<label for="(\w+)">', html)
    assert labels == [f["name"] for f in minimal]
    response = client.post("/?inputs=minimal", data={
        **{f["name"]: str(home[f["name"]]) for f in minimal},
        "csrf_token": token(html)})
    api = client.post("/v1/predict/minimal", json={
        f["name"]: home[f["name"]] for f in minimal}).get_json()
    assert f'id="price">{dollars(api["prediction"])}<' in response.get_data(
        as_text=True)


def test_a_form_without_its_csrf_token_is_refused(client, home):
    response = client.post("/", data={k: str(v) for k, v in home.items()})
    assert response.status_code == 400
    assert "The CSRF token is missing." in response.get_data(as_text=True)


def upload(client, data: bytes):
    page = client.get("/batch").get_data(as_text=True)
    return client.post("/batch", data={"csrf_token": token(page),
                                       "file": (io.BytesIO(data), "homes.csv")},
                       content_type="multipart/form-data")


def test_a_csv_is_previewed_and_downloaded_with_every_estimate(client):
    response = upload(client, FUTURE.read_bytes())
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "100 of 100 homes estimated" in html
    assert html.count("<tr><td>") == 20  # the first rows
    download = client.post("/batch/estimates.csv", data={
        "csrf_token": token(html), "csv": FUTURE.read_text()})
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    api = client.post("/v1/predict/batch", data=FUTURE.read_bytes(),
                      content_type="text/csv").get_json()["predictions"]
    assert [float(r["prediction"]) for r in rows] == [p["prediction"] for p in api]
    assert all(r["error"] == "" for r in rows)


def test_rows_with_errors_are_listed_and_the_others_estimated(client):
    lines = FUTURE.read_text().splitlines()
    header = lines[0].split(",")
    bad = lines[2].split(",")
    bad[header.index("bedrooms")] = "-3"
    text = "\n".join([lines[0], lines[1], ",".join(bad), lines[3]]) + "\n"
    html = upload(client, text.encode()).get_data(as_text=True)
    assert "2 of 3 homes estimated" in html
    assert re.search(r"Row 2: <strong>bedrooms</strong>: Must be greater", html)
    download = client.post("/batch/estimates.csv", data={
        "csrf_token": token(html), "csv": text})
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert [bool(r["prediction"]) for r in rows] == [True, False, True]
    assert rows[1]["error"].startswith("bedrooms: Must be greater")


def test_a_csv_with_the_wrong_header_says_so(client):
    response = upload(client, b"bedrooms,price\n3,100\n")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "The CSV header must have the 18 columns" in html
    assert 'id="file-error"' in html


def test_the_models_page_marks_the_active_and_previous_versions(client, store):
    first = store.current()
    store.activate(publish_copy(store))  # a new version: nothing sold yet
    client.application.extensions["housing"].reload()
    html = client.get("/models").get_data(as_text=True)
    current = store.current()
    assert re.search(rf'<tr class="active"><td><code>{current}</code>.*?'
                     r"<td>active</td>", html, re.S)
    assert re.search(rf"<tr><td><code>{first}</code>.*?<td>previous</td>",
                     html, re.S)
    assert "No sales reported yet" in html


@pytest.fixture
def logged_client(model_dir, tmp_path):
    app = make_logged_app(model_dir, f"sqlite:///{tmp_path / 'log.db'}",
                          tmp_path / "spool")
    from housing_api.db import migrate
    migrate.upgrade(app.config["DATABASE_URL"])
    yield app, app.test_client()
    close_app(app)


def test_live_accuracy_and_drift_are_drawn_and_downloadable(logged_client, homes):
    app, client = logged_client
    ids = [client.post("/v1/predict", json=h).get_json()["prediction_id"]
           for h in homes]
    assert app.extensions["housing_log"].flush()
    sales = [{"prediction_id": pid, "sale_price": 400_000 + 1000 * i,
              "sale_date": f"2026-11-{2 + i % 20:02d}"} for i, pid in enumerate(ids)]
    assert client.post("/v1/sales", json={"sales": sales}).status_code == 200
    html = client.get("/models").get_data(as_text=True)
    assert 'id="weeks-chart"' in html and 'id="drift-chart"' in html
    api = client.get("/v1/model/performance?by=week").get_json()["live"]
    weekly = list(csv.DictReader(io.StringIO(client.get(
        "/models/performance.csv").get_data(as_text=True))))
    assert [(r["week"], int(r["n"])) for r in weekly] == [
        (w["group"], w["n"]) for w in api]
    assert html.count('<g class="bar"><rect') == len(api)
    drift = client.get("/v1/model/drift").get_json()["features"]
    table = list(csv.DictReader(io.StringIO(client.get(
        "/models/drift.csv").get_data(as_text=True))))
    assert [r["name"] for r in table] == [f["name"] for f in drift]


@pytest.fixture
def keyed(model_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    from housing_api.db import migrate
    migrate.upgrade(url)
    app = create_app({"TESTING": True, "MODEL_DIR": model_dir, "DATA_DIR": DATA_DIR,
                      "RATELIMIT_ENABLED": False, "REQUIRE_API_KEY": True,
                      "DATABASE_URL": url, "ADMIN_TOKENS": TOKEN})
    client = app.test_client()
    secrets = {scope: client.post(
        "/admin/keys", json={"name": scope, "scopes": [scope]},
        headers={"Authorization": f"Bearer {TOKEN}"}).get_json()["key"]
        for scope in ("predict", "sales")}
    yield client, secrets
    close_app(app)


def sign_in(client, secret, next_page="/"):
    page = client.get("/key").get_data(as_text=True)
    return client.post("/key", data={"key": secret, "next": next_page,
                                     "csrf_token": token(page)})


def test_with_keys_required_a_page_asks_for_a_key_once(keyed, home):
    client, secrets = keyed
    response = client.get("/batch")
    assert response.status_code == 302
    assert response.headers["Location"] == "/key?next=/batch"
    refused = sign_in(client, "hk_not-a-key")
    assert refused.status_code == 401
    assert "Unknown API key." in refused.get_data(as_text=True)
    wrong_scope = sign_in(client, secrets["sales"])
    assert "lacks the &#39;predict&#39; scope" in wrong_scope.get_data(as_text=True)
    accepted = sign_in(client, secrets["predict"], "/batch")
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/batch"
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"
    assert secrets["predict"] not in cookie.value
    page = client.get("/").get_data(as_text=True)
    assert secrets["predict"][:11] in page  # the key's prefix, shown
    response = client.post("/", data=form_of(home, page))
    assert response.status_code == 200 and 'id="price"' in response.get_data(
        as_text=True)
    # The page's estimate counts for the key, like an API request.
    client.application.extensions["housing_keys"].flush()
    admin = {"Authorization": f"Bearer {TOKEN}"}
    keys = client.get("/admin/keys", headers=admin).get_json()["keys"]
    key_id = next(k["id"] for k in keys if k["name"] == "predict")
    days = client.get(f"/admin/keys/{key_id}/usage", headers=admin).get_json()
    assert sum(d["estimates"] for d in days["days"]) == 1


def test_a_key_made_elsewhere_a_moment_ago_signs_in_at_once(keyed):
    """Made by the CLI or another worker: this process has not read it yet
    (it reads the keys every few seconds), and must not refuse it or drop
    the session that holds it."""
    client, _ = keyed
    cache = client.application.extensions["housing_keys"]
    engine = client.application.extensions["housing_db"].get()
    _, secret = create_key(engine, "made elsewhere", ["predict"])
    assert cache.lookup(secret) is None  # not read yet
    accepted = sign_in(client, secret)
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    # Read again at most once a second: unknown keys cannot make it query
    # the database on every try.
    queries = []
    original = cache._engines.get
    cache._engines.get = lambda: queries.append(1) or original()
    for i in range(5):
        assert sign_in(client, f"hk_unknown{i}").status_code == 401
    assert len(queries) <= 1


def test_a_key_revoked_after_sign_in_is_asked_for_again(keyed):
    client, secrets = keyed
    sign_in(client, secrets["predict"])
    assert client.get("/").status_code == 200
    keys = client.get("/admin/keys", headers={
        "Authorization": f"Bearer {TOKEN}"}).get_json()["keys"]
    key_id = next(k["id"] for k in keys if k["name"] == "predict")
    client.delete(f"/admin/keys/{key_id}",
                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert client.get("/").status_code == 302


def test_the_key_page_never_sends_you_to_another_site(keyed):
    client, secrets = keyed
    response = sign_in(client, secrets["predict"], "https://evil.example/")
    assert response.headers["Location"] == "/"
    response = sign_in(client, secrets["predict"], "//evil.example/")
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("page", ["/", "/batch", "/models", "/key", "/docs",
                                  "/redoc"])
def test_every_page_has_the_security_headers(client, page):
    response = client.get(page)
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "script-src" not in policy or "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_api_says_nosniff_and_takes_no_csrf_token(client, home):
    response = client.post("/v1/predict", json=home)
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response.headers


def test_the_models_page_shows_how_far_reported_sales_moved_the_interval(
        logged_client, home):
    app, client = logged_client
    bands = len(client.get("/v1/model").get_json()["interval"]["lower"])
    html = client.get("/models").get_data(as_text=True)
    assert "As trained: no sale has been reported yet" in html
    assert html.count("<td>+0.00%</td><td>+0.00%</td>") == bands  # every band
    answers = [client.post("/v1/predict", json=home).get_json() for _ in range(10)]
    assert app.extensions["housing_log"].flush()
    assert client.post("/v1/sales", json={"sales": [
        {"prediction_id": a["prediction_id"], "sale_price": 3 * a["prediction"],
         "sale_date": "2026-11-30"} for a in answers]}).status_code == 200
    assert app.extensions["housing_adaptation"].run_once()
    html = client.get("/models").get_data(as_text=True)
    assert "Adapted to the 10 sales reported" in html
    # Ten sales above in the home's band: its upper bound e^(10 * 0.9 * 0.005)
    # higher, its lower bound e^(10 * 0.1 * 0.005) higher; the others as trained.
    assert html.count("<td>+0.50%</td><td>+4.60%</td>") == 1
    assert html.count("<td>+0.00%</td><td>+0.00%</td>") == bands - 1
