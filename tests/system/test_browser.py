"""The pages and the API docs in a real browser, against a real Gunicorn.

Playwright drives Debian's Chromium (``/usr/bin/chromium``; no browser is
downloaded) with every request to another origin aborted and counted.
Without Chromium these tests skip, saying how to install it; with
``HOUSING_REQUIRE_CHROMIUM=1`` (set by ``.ci/run``) they fail instead.
Each page's screenshot is written to ``docs/screenshots/`` (the README
shows them).
"""
import csv
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from conftest import DATA_DIR, TOKEN
from servers import gunicorn_server

CHROMIUM = os.environ.get("HOUSING_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("HOUSING_REQUIRE_CHROMIUM") == "1"
HOW = "install Debian's Chromium: `sudo apt-get install chromium`"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
FUTURE = DATA_DIR / "future_unseen_examples.csv"
#: ReDoc always draws Redocly's logo from their CDN; the page's policy stops
#: it before it leaves (and ReDoc then hides it). Nothing else may try.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def _playwright():
    if not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM}"
        if REQUIRED:
            pytest.fail(f"{reason}, and HOUSING_REQUIRE_CHROMIUM=1 requires it")
        pytest.skip(f"{reason}: {HOW}")
    from playwright.sync_api import sync_playwright
    return sync_playwright


@pytest.fixture(scope="module")
def browser():
    with _playwright()() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


class Watched:
    """A page whose requests to other origins are aborted and remembered,
    and whose console errors are kept."""

    def __init__(self, browser, base_url, **options):
        self.base_url = base_url
        self.context = browser.new_context(base_url=base_url, accept_downloads=True,
                                           viewport={"width": 1280, "height": 900},
                                           **options)
        self.elsewhere = []
        self.console = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error"
                     and self.console.append(m.text))

    def _route(self, route):
        if route.request.url.startswith(self.base_url):
            route.continue_()
        else:
            self.elsewhere.append(route.request.url)
            route.abort()

    def blocked_by_policy(self) -> list[str]:
        return re.findall(r"'(\S+)' violates the following Content Security",
                          " ".join(self.console))

    def shot(self, name, full_page=True):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page)

    def close(self):
        assert self.elsewhere == [], self.elsewhere
        self.context.close()


@pytest.fixture(scope="module")
def server(boosted_store, tmp_path_factory):
    model_dir = shutil.copytree(boosted_store,
                                tmp_path_factory.mktemp("browser") / "model")
    # The intervals adapt within half a second of a sale reported.
    with gunicorn_server(model_dir, env={"HOUSING_RATELIMIT_ENABLED": "false",
                                         "HOUSING_ADMIN_TOKENS": TOKEN,
                                         "HOUSING_INTERVAL_ADAPTATION_REFRESH":
                                         "0.5"}) as s:
        yield s


@pytest.fixture
def tab(browser, server):
    watched = Watched(browser, server.url)
    yield watched
    watched.close()


def api_estimate(server, home, path="/v1/predict"):
    return requests.post(server.url + path, json=home, timeout=10).json()


def dollars(amount):
    return f"${amount:,.0f}"


def test_fill_the_form_and_see_the_price(tab, server, homes):
    home = homes[3]
    page = tab.page
    page.goto("/")
    for name, value in home.items():
        if name == "zipcode":
            page.select_option("#zipcode", value)
        else:
            page.fill(f"#{name}", str(value))
    page.click("button[type=submit]")
    api = api_estimate(server, home)
    assert page.text_content("#price") == dollars(api["prediction"])
    expect(page.locator("svg.effects rect")).to_have_count(19)
    expect(page.locator("#comparables tbody tr")).to_have_count(5)
    expect(page.locator("svg.positions .sale")).to_have_count(5)
    assert page.text_content("#model-version") == api["model"]["version"]
    tab.shot("estimate")
    assert tab.console == []


def test_a_bad_value_shows_its_error_next_to_the_field(tab):
    page = tab.page
    page.goto("/")
    page.fill("#bedrooms", "-2")
    page.click("button[type=submit]")
    error = page.locator("#bedrooms-error")
    expect(error).to_be_visible()
    assert "Must be greater than or equal to 0" in error.text_content()
    assert page.get_attribute("#bedrooms", "aria-invalid") == "true"
    assert page.locator("#price").count() == 0
    tab.shot("estimate-error")


def test_switch_to_the_minimal_inputs(tab, server):
    page = tab.page
    page.goto("/")
    assert page.locator(".fields input, .fields select").count() == 18
    page.click("text=Use the minimal inputs")
    expect(page).to_have_url(re.compile(r"inputs=minimal"))
    minimal = requests.get(server.url + "/v1/features", timeout=10).json()["minimal"]
    expect(page.locator(".fields input, .fields select")).to_have_count(len(minimal))
    page.click("button[type=submit]")
    assert page.text_content("#price").startswith("$")
    page.click("text=Use all 18 columns")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator(".fields input, .fields select")).to_have_count(18)


def test_upload_the_future_examples_and_download_100_estimates(tab, tmp_path):
    page = tab.page
    page.goto("/batch")
    page.set_input_files("#file", str(FUTURE))
    page.click("button[type=submit]")
    assert page.text_content("#preview-heading") == "100 of 100 homes estimated"
    assert page.locator("#preview tbody tr").count() == 20
    tab.shot("batch")
    with page.expect_download() as download:
        page.click("#download")
    path = tmp_path / "estimates.csv"
    download.value.save_as(path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 100
    assert all(float(r["prediction"]) > 0 and r["error"] == "" for r in rows)


def test_the_models_page_draws_live_accuracy_and_drift(tab, server, homes):
    estimates = [api_estimate(server, h) for h in homes]
    # Sold within 15% of the estimate, over two months.
    sales = [{"prediction_id": e["prediction_id"],
              "sale_price": round(e["prediction"] * (0.85 + (i * 37 % 100) / 333)),
              "sale_date": f"2026-{10 + i % 2}-{1 + i % 28:02d}"}
             for i, e in enumerate(estimates)]
    for _ in range(50):  # the log writes within about a second
        response = requests.post(server.url + "/v1/sales", json={"sales": sales},
                                 timeout=10)
        if response.status_code == 200:
            break
        page_wait = tab.page
        page_wait.wait_for_timeout(200)
    assert response.status_code == 200, response.text
    page = tab.page
    for _ in range(50):  # each worker reads the sales within half a second
        page.goto("/models")
        if "Adapted to the 100 sales" in page.locator("#adaptation").inner_text():
            break
        page.wait_for_timeout(200)
    assert "Adapted to the 100 sales" in page.locator("#adaptation").inner_text()
    model = requests.get(server.url + "/v1/model", timeout=10).json()
    assert page.locator("#bands tbody tr").count() == len(model["interval"]["lower"])
    assert page.locator("#versions tr.active").count() == 1
    weeks = requests.get(server.url + "/v1/model/performance?by=week",
                         timeout=10).json()["live"]
    assert page.locator("#weeks-chart rect").count() == len(weeks) > 1
    assert page.locator("#drift-chart rect").count() >= 18
    box = page.locator("#weeks-chart").bounding_box()
    assert box["width"] > 300 and box["height"] > 50  # drawn, not empty
    tab.shot("models")
    with page.expect_download() as download:
        page.click("#performance-csv")
    assert download.value.suggested_filename.startswith("performance-")


def test_the_api_docs_render_their_operations(tab):
    page = tab.page
    page.goto("/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    assert page.locator(".opblock").count() >= 20
    assert page.get_by_text("/v1/predict/batch", exact=True).count() >= 1
    tab.shot("docs", full_page=False)
    assert tab.console == []
    page.goto("/redoc")
    page.locator("h2", has_text="Estimate the sale price of one home").wait_for(
        timeout=20_000)
    assert page.locator("li[data-item-id]").count() >= 20  # the menu
    tab.shot("redoc", full_page=False)
    assert set(tab.blocked_by_policy()) <= {REDOC_LOGO}


def test_the_form_works_with_the_keyboard_alone(tab, server, homes):
    page = tab.page
    page.goto("/")
    page.keyboard.press("Tab")  # the skip link first
    assert page.evaluate("document.activeElement.textContent") == \
        "Skip to the content"
    page.keyboard.press("Enter")
    page.locator("#bedrooms").focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    focused = []
    for _ in range(40):  # Tab through the form to its button
        page.keyboard.press("Tab")
        tag = page.evaluate("document.activeElement.tagName")
        focused.append(page.evaluate("document.activeElement.id"))
        if tag == "BUTTON":
            break
    assert "zipcode" in focused and "sqft_lot15" in focused
    page.keyboard.press("Enter")
    page.wait_for_selector("#price")
    assert page.input_value("#bedrooms") == "3"
    home = {**homes[0], "bedrooms": 3}
    assert page.text_content("#price") == dollars(api_estimate(server, home)[
        "prediction"])


def known_everywhere(url, secret, seconds=15):
    """Wait until every worker knows a new key (each refreshes every 5 s)."""
    deadline = time.monotonic() + seconds
    streak = 0
    while streak < 10:
        assert time.monotonic() < deadline, "the new key never reached every worker"
        # A new connection each time, so that both workers answer.
        status = requests.get(url + "/v1/zipcodes", headers={"X-API-Key": secret},
                              timeout=10).status_code
        streak = streak + 1 if status == 200 else 0
        time.sleep(0.05)


def test_with_keys_required_the_page_refuses_without_a_key(browser, boosted_store,
                                                           tmp_path):
    model_dir = shutil.copytree(boosted_store, tmp_path / "model")
    database = f"sqlite:///{tmp_path / 'keys.db'}"
    env = {"HOUSING_REQUIRE_API_KEY": "true", "HOUSING_DATABASE_URL": database,
           "HOUSING_ADMIN_TOKENS": TOKEN, "HOUSING_RATELIMIT_ENABLED": "false"}
    with gunicorn_server(model_dir, env=env) as keyed:
        secret = requests.post(keyed.url + "/admin/keys", json={
            "name": "agents", "scopes": ["predict"]},
            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()["key"]
        known_everywhere(keyed.url, secret)
        tab = Watched(browser, keyed.url)
        page = tab.page
        page.goto("/")
        assert "/key" in page.url and page.locator("#key").is_visible()
        page.fill("#key", "hk_wrong")
        page.click("button[type=submit]")
        assert page.text_content("#key-error") == "Unknown API key."
        tab.shot("key")
        page.fill("#key", secret)
        page.click("button[type=submit]")
        expect(page).to_have_url(keyed.url + "/")  # waits for the redirect
        page.click("button[type=submit]")
        assert page.text_content("#price").startswith("$")
        cookie = next(c for c in tab.context.cookies() if c["name"] == "session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert secret not in cookie["value"]
        tab.close()
