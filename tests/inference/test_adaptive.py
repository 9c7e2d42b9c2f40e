"""Intervals that adapt to reported sales: the tracking rule and its promise."""
import numpy as np
import pytest

from housing_api.inference.adaptive import Adaptation, BandCounts, simulate
from housing_api.inference.predictor import Interval

INTERVAL = {"level": 0.8, "edges": [400_000.0], "lower": [-0.2, -0.3],
            "upper": [0.2, 0.3]}


def test_the_state_is_the_step_times_the_misses_beyond_the_promise():
    # 100 sales in band 0: 30 above (10 expected), 10 below (as promised).
    state = Adaptation.tracked(BandCounts([100, 0], [10, 0], [30, 0]), 0.8, 0.01)
    assert state.sales == 100
    np.testing.assert_allclose(state.upper, [0.2, 0.0])
    np.testing.assert_allclose(state.lower, [0.0, 0.0], atol=1e-12)


def test_an_interval_widens_where_sales_fell_outside_and_narrows_where_none_did():
    interval = Interval(INTERVAL)
    price = np.array([300_000.0, 500_000.0])
    state = Adaptation(np.array([0.0, -0.1]), np.array([0.1, 0.0]), 50)
    lower, upper = interval.bounds(price, price, state)
    np.testing.assert_allclose(lower, price * np.exp([-0.2, -0.2]))
    np.testing.assert_allclose(upper, price * np.exp([0.3, 0.3]))
    plain = interval.bounds(price, price)
    np.testing.assert_allclose(plain[1], price * np.exp([0.2, 0.3]))


def test_a_bound_narrows_down_to_the_estimate_and_not_past_it():
    interval = Interval(INTERVAL)
    price = np.array([300_000.0])
    state = Adaptation(np.array([-5.0, 0.0]), np.array([-5.0, 0.0]), 10_000)
    lower, upper = interval.bounds(price, price, state)
    assert lower[0] == upper[0] == price[0]


@pytest.mark.parametrize("drift", [0.0, 0.0008, -0.0008])
def test_simulated_sales_end_up_covered_as_promised_whatever_the_drift(drift):
    """A trained interval that fits day 0, then a market moving ``drift``
    in log price a day (17% in 200 days, the other way too): the adapted
    bounds cover 80% of the later sales, 10% falling out on either side."""
    rng = np.random.default_rng(7)
    days = np.repeat(np.arange(200), 30)
    estimate = np.full(len(days), 500_000.0)
    actual = estimate * np.exp(rng.normal(0, 0.15, len(days)) + drift * days)
    lower, upper = estimate * np.exp(-0.19), estimate * np.exp(0.19)
    bands = np.zeros(len(days), dtype=int)
    adapted = simulate(actual, estimate, lower, upper, bands, days, 1, 0.8)
    inside = (actual >= adapted[0]) & (actual <= adapted[1])
    assert abs(inside.mean() - 0.8) < 0.02
    below, above = (actual < adapted[0]).mean(), (actual > adapted[1]).mean()
    assert abs(below - 0.1) < 0.02 and abs(above - 0.1) < 0.02
    if drift:
        static = (actual >= lower) & (actual <= upper)
        assert static.mean() < 0.75  # what the trained interval alone keeps


def test_the_simulation_gives_what_the_interval_gives_after_each_day():
    """``simulate`` (the evaluation's) against the serving path: each
    day's bounds from ``Interval.bounds`` with the counts of the days before."""
    rng = np.random.default_rng(3)
    interval = Interval(INTERVAL)
    days = np.repeat(np.arange(30), 7)
    estimate = rng.uniform(2e5, 8e5, len(days))
    actual = estimate * np.exp(rng.normal(0.05, 0.25, len(days)))
    lower, upper = interval.bounds(estimate, estimate)
    bands = interval.band(estimate)
    simulated = simulate(actual, estimate, lower, upper, bands, days, 2, 0.8)
    counts = np.zeros((3, 2), dtype=int)
    for day in range(30):
        rows = days == day
        state = Adaptation.tracked(BandCounts(*counts), 0.8, 0.005)
        low, high = interval.bounds(estimate[rows], estimate[rows], state)
        np.testing.assert_allclose(simulated[0][rows], low, rtol=1e-12)
        np.testing.assert_allclose(simulated[1][rows], high, rtol=1e-12)
        np.add.at(counts[0], bands[rows], 1)
        np.add.at(counts[1], bands[rows], actual[rows] < low)
        np.add.at(counts[2], bands[rows], actual[rows] > high)
