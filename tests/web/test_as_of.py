"""Estimates "now" and as of a month: what a client sees of the market index."""
import math

import numpy as np
import pytest

from housing_api.inference.market import MarketIndex, OutOfRangeError


def cents(dollars: float) -> int:
    return round(dollars * 100)


def test_an_estimate_says_which_months_market_it_is_at(boosted_client, home):
    body = boosted_client.post("/v1/predict", json=home).get_json()
    market = boosted_client.get("/v1/model").get_json()["market_index"]
    assert body["as_of"] == market["months"][-1] == "2015-05"
    assert market["level"][-1] == 0.0


def test_as_of_a_month_moves_the_price_by_that_months_level(boosted_client, home):
    now = boosted_client.post("/v1/predict", json=home).get_json()
    market = boosted_client.get("/v1/model").get_json()["market_index"]
    then = boosted_client.post("/v1/predict?as_of=2014-06-17", json=home).get_json()
    assert then["as_of"] == "2014-06"
    level = market["level"][market["months"].index("2014-06")]
    assert level < 0  # prices rose from mid-2014 to May 2015
    expected = now["prediction"] * math.exp(level)
    assert then["prediction"] == pytest.approx(expected, abs=0.01)
    assert then["interval"]["lower"] < then["prediction"] < then["interval"]["upper"]


def test_as_of_works_for_batches_and_minimal_homes(boosted_client, home):
    batch = boosted_client.post("/v1/predict/batch?as_of=2015-01-01",
                                json={"instances": [home, home]}).get_json()
    single = boosted_client.post("/v1/predict?as_of=2015-01-31", json=home).get_json()
    assert batch["as_of"] == single["as_of"] == "2015-01"
    assert [p["prediction"] for p in batch["predictions"]] == \
        [single["prediction"]] * 2


@pytest.mark.parametrize("as_of", ["2014-04-30", "2015-06-01", "2026-12-03"])
def test_as_of_outside_the_training_months_is_a_422(boosted_client, home, as_of):
    response = boosted_client.post(f"/v1/predict?as_of={as_of}", json=home)
    assert response.status_code == 422
    body = response.get_json()
    message = body["errors"]["query"]["as_of"][0]
    assert as_of in message and "2014-05 to 2015-05" in message


@pytest.mark.parametrize("as_of", ["yesterday", "2015-13-01", "2015-02-30", ""])
def test_as_of_that_is_not_a_date_is_a_422(boosted_client, home, as_of):
    response = boosted_client.post(f"/v1/predict?as_of={as_of}", json=home)
    assert response.status_code == 422
    assert "as_of" in response.get_json()["errors"]["query"]


def test_a_version_without_a_market_index_refuses_as_of(client, home):
    assert "as_of" not in client.post("/v1/predict", json=home).get_json()
    response = client.post("/v1/predict?as_of=2015-01-01", json=home)
    assert response.status_code == 422
    assert "no market index" in response.get_json()["errors"]["query"]["as_of"][0]


def test_an_explanation_as_of_a_month_names_the_market_and_adds_up(
        boosted_client, home):
    body = boosted_client.post("/v1/predict?explain=true&as_of=2014-08-01",
                               json=home).get_json()
    explanation = body["explanation"]
    effects = {e["input"]: e for e in explanation["effects"]}
    assert effects["as_of"]["value"] == "2014-08"
    assert effects["as_of"]["effect"] < 0
    total = cents(explanation["baseline"]) + sum(cents(e["effect"])
                                                 for e in effects.values())
    assert total == cents(body["prediction"])
    now = boosted_client.post("/v1/predict?explain=true", json=home).get_json()
    assert "as_of" not in {e["input"] for e in now["explanation"]["effects"]}


def test_the_market_index_recovers_known_month_effects():
    rng = np.random.default_rng(0)
    months = np.array(["2014-05", "2014-06", "2014-08"])[rng.integers(0, 3, 3000)]
    zipcode = rng.choice(["98001", "98002", "98003"], 3000)
    effect = {"2014-05": -0.10, "2014-06": -0.04, "2014-08": 0.0}
    zone = {"98001": 5.0, "98002": 5.5, "98003": 6.0}
    y = np.array([zone[z] + effect[m] for z, m in zip(zipcode, months)])
    index = MarketIndex.fit(y + rng.normal(0, 0.01, 3000), zipcode, months)
    assert index.months == ("2014-05", "2014-06", "2014-08")
    np.testing.assert_allclose(index.level, [-0.10, -0.04, 0.0], atol=2e-3)
    # A month without sales between two with sales: interpolated.
    assert index.offsets(["2014-07"])[0] == pytest.approx(
        (index.level[1] + index.level[2]) / 2)
    with pytest.raises(OutOfRangeError):
        index.offsets(["2014-09"])
    assert MarketIndex.from_dict(index.to_dict()) == index
    with pytest.raises(ValueError):
        MarketIndex.from_dict({"months": ["2014-06", "2014-05"], "level": [0, 0]})
