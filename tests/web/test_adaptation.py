"""Intervals that adapt to reported sales, as a client sees them."""
import math
import shutil

import pytest

from conftest import close_app, make_logged_app
from housing_api.db import ProcessEngine
from housing_api.inference.features.minimal import MINIMAL_INPUTS

STEP = 0.005  # the default, INTERVAL_ADAPTATION_STEP
UNREACHABLE = "postgresql+psycopg://housing@127.0.0.1:9/housing"


@pytest.fixture
def served(boosted_store, database_url, tmp_path):
    app = make_logged_app(shutil.copytree(boosted_store, tmp_path / "model"),
                          database_url, tmp_path / "spool")
    yield app, app.test_client()
    close_app(app)


def answer(client, home, query=""):
    response = client.post(f"/v1/predict{query}", json=home)
    assert response.status_code == 200
    return response.get_json()


def report(app, client, answers, factor):
    """Report each answered estimate as sold at ``factor`` times it."""
    assert app.extensions["housing_log"].flush()
    response = client.post("/v1/sales", json={"sales": [
        {"prediction_id": a["prediction_id"], "sale_price": a["prediction"] * factor,
         "sale_date": "2015-06-01"} for a in answers]})
    assert response.status_code == 200
    assert app.extensions["housing_adaptation"].run_once()


def ratios(body):
    return (body["interval"]["lower"] / body["prediction"],
            body["interval"]["upper"] / body["prediction"])


def test_sales_above_their_intervals_widen_the_next_ones_by_the_rule(served, home):
    app, client = served
    before = answer(client, home)
    report(app, client, [answer(client, home) for _ in range(20)], 3.0)
    after = answer(client, home)
    assert after["prediction"] == before["prediction"]
    lower, upper = ratios(before)
    # 20 sales above in this band: its upper bound out by 20 * 0.9 steps,
    # its lower bound (no sale below) in by 20 * 0.1 steps.
    assert ratios(after) == pytest.approx(
        (lower * math.exp(20 * 0.1 * STEP), upper * math.exp(20 * 0.9 * STEP)),
        rel=1e-6)
    model = client.get("/v1/model").get_json()["interval_adaptation"]
    assert model["sales"] == 20 and model["step"] == STEP
    assert max(model["upper"]) == pytest.approx(20 * 0.9 * STEP)


def test_sales_inside_narrow_them_and_other_models_keep_theirs(served, home):
    app, client = served
    minimal_home = {name: home[name] for name in MINIMAL_INPUTS}
    then = answer(client, home, "?as_of=2015-01-15")
    minimal = client.post("/v1/predict/minimal", json=minimal_home).get_json()
    before = answer(client, home)
    report(app, client, [answer(client, home) for _ in range(10)], 1.0)
    lower, upper = ratios(before)
    assert ratios(answer(client, home)) == pytest.approx(
        (lower * math.exp(10 * 0.1 * STEP), upper * math.exp(-10 * 0.1 * STEP)),
        rel=1e-6)
    # As of a past month, and the minimal companion: as they were.
    assert answer(client, home, "?as_of=2015-01-15")["interval"] == then["interval"]
    again = client.post("/v1/predict/minimal", json=minimal_home).get_json()
    assert again["interval"] == minimal["interval"]
    features = client.get("/v1/features").get_json()
    assert features["minimal_model"]["interval_adaptation"]["sales"] == 0


def test_the_adaptation_survives_an_outage_and_a_restart(
        served, home, boosted_store, database_url, tmp_path):
    app, client = served
    report(app, client, [answer(client, home) for _ in range(10)], 3.0)
    adapted = answer(client, home)["interval"]
    adaptation = app.extensions["housing_adaptation"]
    reachable, adaptation.engine = adaptation.engine, ProcessEngine(UNREACHABLE)
    assert not adaptation.run_once()  # the database away: kept as it was
    assert answer(client, home)["interval"] == adapted
    adaptation.engine = reachable
    # A new process on the same database reads the same state.
    restarted = make_logged_app(shutil.copytree(boosted_store, tmp_path / "again"),
                                database_url, tmp_path / "spool-again")
    assert restarted.extensions["housing_adaptation"].run_once()
    again = answer(restarted.test_client(), home)
    close_app(restarted)
    assert again["interval"] == adapted


def test_a_job_and_the_score_command_give_the_apis_adapted_intervals(
        served, home, database_url, tmp_path):
    """The same home priced by the API, ``housing-api score`` and a scoring
    job: the same interval, adapted, to the cent."""
    import csv
    import uuid
    from datetime import timedelta

    from conftest import DATA_DIR, HousingCliRunner
    from housing_api.cli.score import _checks
    from housing_api.db import make_engine
    from housing_api.jobs import queue
    from housing_api.jobs.files import JobFiles
    from housing_api.jobs.runner import Runner
    from housing_api.store import ModelStore

    app, client = served
    trained = answer(client, home)["interval"]
    report(app, client, [answer(client, home) for _ in range(10)], 3.0)
    asked = answer(client, home)["interval"]
    assert asked["upper"] > trained["upper"]
    lines = (DATA_DIR / "future_unseen_examples.csv").read_text().splitlines()
    source = tmp_path / "home.csv"  # ``home``: the first of the examples
    source.write_text("\n".join(lines[:2]) + "\n")
    model_dir = app.config["MODEL_DIR"]

    result = HousingCliRunner({"MODEL_DIR": model_dir, "DATA_DIR": DATA_DIR,
                               "DATABASE_URL": database_url}).invoke(
        args=["score", str(source), str(tmp_path / "command.csv")])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "command.csv", newline="") as f:
        (by_command,) = list(csv.DictReader(f))

    engine, files = make_engine(database_url), JobFiles(tmp_path / "jobs")
    job_id = uuid.uuid4().hex
    size = files.save_upload(job_id, [source.read_bytes()], limit=10**6)
    queue.submit(engine, "address:10.0.0.7", size, timedelta(days=1), job_id=job_id)
    Runner(engine, ModelStore(model_dir), files, _checks,
           adaptation_step=STEP).run_once()
    with open(files.result(job_id), newline="") as f:
        (by_job,) = list(csv.DictReader(f))
    engine.dispose()
    for row in (by_command, by_job):
        assert (float(row["lower"]), float(row["upper"])) == (
            asked["lower"], asked["upper"])
