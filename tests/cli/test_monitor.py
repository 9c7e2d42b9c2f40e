"""``housing-api monitor`` and ``housing-api train --with-sales``."""
import pytest

from conftest import DATA_DIR, HousingCliRunner, close_app, make_logged_app
from housing_api.store import ModelStore
from housing_api.training.data import Sales


@pytest.fixture
def sqlite_url(tmp_path):
    from housing_api.db import migrate

    url = f"sqlite:///{tmp_path / 'housing.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
def runner(model_dir, sqlite_url):
    return HousingCliRunner({"MODEL_DIR": model_dir, "DATA_DIR": DATA_DIR,
                             "DATABASE_URL": sqlite_url})


def estimate_and_sell(model_dir, url, tmp_path, homes, prices, day="2026-11-30"):
    app = make_logged_app(model_dir, url, tmp_path / "spool")
    client = app.test_client()
    answer = client.post("/v1/predict/batch", json={"instances": homes}).get_json()
    assert app.extensions["housing_log"].flush()
    sales = [{"prediction_id": p["prediction_id"], "sale_price": price,
              "sale_date": day} for p, price in zip(answer["predictions"], prices)]
    assert client.post("/v1/sales", json={"sales": sales}).status_code == 200
    close_app(app)
    return answer


def test_monitor_prints_weeks_and_drift(runner, model_dir, sqlite_url, tmp_path,
                                        homes):
    estimate_and_sell(model_dir, sqlite_url, tmp_path, homes, [500000] * 100)
    result = runner.invoke(args=["monitor"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"model version {ModelStore(model_dir).current()}" in out
    assert "| holdout (training) | 5404 |" in out
    assert "| week of 2026-11-30 | 100 |" in out
    assert "| sqft_living | 100 |" in out and "| zipcode | 100 |" in out


def test_monitor_writes_a_markdown_report_with_plots(runner, model_dir, sqlite_url,
                                                     tmp_path, homes):
    estimate_and_sell(model_dir, sqlite_url, tmp_path, homes, [500000] * 100)
    out = tmp_path / "reports" / "monitor.md"
    result = runner.invoke(args=["monitor", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "## Accuracy by week of sale" in text and "## Drift" in text
    for plot in ("monitor-mape.png", "monitor-drift.png"):
        assert f"]({plot})" in text
        assert (out.parent / plot).stat().st_size > 1000


def test_monitor_without_sales_says_so(runner):
    result = runner.invoke(args=["monitor"])
    assert result.exit_code == 0
    assert "no sales reported yet" in result.stdout


def test_monitor_unknown_version(runner):
    result = runner.invoke(args=["monitor", "--version", "nope"])
    assert result.exit_code == 1
    assert "no model version 'nope'" in result.stderr


def test_train_with_sales_adds_them_to_the_training_rows(runner, model_dir,
                                                         sqlite_url, tmp_path,
                                                         homes):
    # One of them is a King County sale already in the data: left out.
    data = Sales.read(DATA_DIR)
    known = {name: (data.frame[name].iloc[0].item() if name != "zipcode"
                    else data.frame[name].iloc[0]) for name in homes[0]}
    estimate_and_sell(model_dir, sqlite_url, tmp_path, [*homes[:10], known],
                      [450000] * 10 + [float(data.price[0])])
    result = runner.invoke(args=["train", "--algorithm", "reference",
                                 "--with-sales", "--no-activate"])
    assert result.exit_code == 0, result.output
    assert "11 reported sales of fully described homes" in result.stdout
    assert "added 10 reported sales" in result.stdout
    store = ModelStore(model_dir)
    metadata = store.metadata(store.list_versions()[-1])
    assert metadata["reported_sales"] == {"reported": 11, "added": 10,
                                          "duplicates": 1,
                                          "last_sale": "2026-11-30"}
    assert metadata["metrics"]["train"]["n"] == 16209 + 10
    assert metadata["metrics"]["holdout"]["n"] == 5404  # the same holdout
