"""Explanations and comparable sales, on the stored versions themselves."""
import math

import lightgbm
import numpy as np
import pytest

from conftest import DATA_DIR
from housing_api.inference.comparables import TrainingSales, iso_date
from housing_api.inference.explain import log_mean, split_cents
from housing_api.inference.features import get_feature_set
from housing_api.inference.features.engineered_spec import FEATURE_NAMES
from housing_api.store import ModelStore
from housing_api.store.loading import load_version
from housing_api.training.data import Sales, read_examples, take


def active(root):
    store = ModelStore(root)
    version = store.current()
    return load_version(store.path(version), version)


@pytest.fixture(scope="module")
def sales():
    return Sales.read(DATA_DIR)


@pytest.fixture(scope="module")
def holdout_columns(sales):
    """1,000 homes of Sound Realty's holdout, never seen in training."""
    _, holdout = sales.split()
    rows = np.random.default_rng(0).choice(holdout, 1000, replace=False)
    return take(sales.columns, rows)


@pytest.fixture(scope="module", params=["reference", "boosted"])
def predictor(request, trained_store, boosted_store):
    return active(trained_store if request.param == "reference" else boosted_store)


def parts_in_cents(explanation):
    parts = explanation.get("effects") or explanation["neighbours"]
    return round(explanation["baseline"] * 100) + sum(
        round(p["effect"] * 100) for p in parts)


@pytest.mark.parametrize("which", ["future", "holdout"])
def test_baseline_and_effects_add_up_to_the_prediction_to_the_cent(
        predictor, which, holdout_columns):
    columns = read_examples(DATA_DIR) if which == "future" else holdout_columns
    price = predictor.predict(columns).price
    explained = predictor.explain(columns, price)
    assert len(explained) == len(price) == (100 if which == "future" else 1000)
    for p, e in zip(price, explained):
        assert parts_in_cents(e["explanation"]) == round(round(float(p), 2) * 100)


def test_the_knn_explanation_is_the_five_sales_it_averaged(trained_store):
    predictor = active(trained_store)
    columns = read_examples(DATA_DIR)
    price = predictor.predict(columns).price
    for p, e in zip(price, predictor.explain(columns, price)):
        neighbours = e["explanation"]["neighbours"]
        assert e["explanation"]["method"] == "nearest-neighbours"
        assert len(neighbours) == 5
        assert all(n["weight"] == 0.2 for n in neighbours)
        # The mean of their prices is the prediction itself, not a rounding.
        assert sum(n["price"] for n in neighbours) / 5 == p
        # Its comparables are the same sales, in the same order.
        assert [c["price"] for c in e["comparables"]] == [
            n["price"] for n in neighbours]


def test_the_knn_neighbours_are_scikit_learns(trained_store):
    predictor = active(trained_store)
    folder = ModelStore(trained_store).path(predictor.version)
    library = load_version(folder, predictor.version, lean=False)
    columns = read_examples(DATA_DIR)
    X = predictor.features(columns)
    pipeline = library.estimator
    for k in (5, 12):
        dist, rows = pipeline[-1].kneighbors(pipeline[:-1].transform(X), k)
        ours_dist, ours_rows = predictor.explainer.kneighbors(X, k)
        assert np.array_equal(rows, ours_rows) and np.array_equal(dist, ours_dist)
        lib_dist, lib_rows = library.explainer.kneighbors(X, k)
        assert np.array_equal(rows, lib_rows)


def test_tree_shap_values_are_lightgbms_own(boosted_store):
    predictor = active(boosted_store)
    folder = ModelStore(boosted_store).path(predictor.version)
    booster = lightgbm.Booster(model_file=str(folder / "model.lgb.txt"))
    columns = read_examples(DATA_DIR)
    X = predictor.features(columns)
    expected = booster.predict(X, pred_contrib=True)
    assert expected.shape == (100, len(FEATURE_NAMES) + 1)
    assert np.array_equal(predictor.explainer.contributions(X), expected)
    one = predictor.explainer.contributions(X[0])
    assert np.array_equal(one, expected[:1])
    # And the values explain the model's own raw output.
    assert np.allclose(expected.sum(axis=1), booster.predict(X), rtol=0, atol=1e-9)


def test_folding_keeps_every_contribution_and_moves_it_to_its_inputs(boosted_store):
    predictor = active(boosted_store)
    feature_set = get_feature_set("engineered-v1")
    groups, fold = feature_set.folding(predictor.demographics)
    assert groups[-1] == "neighbourhood" and len(groups) == 19
    columns = read_examples(DATA_DIR)
    phi = predictor.explainer.contributions(predictor.features(columns))[:, :-1]
    folded = fold(phi, columns)
    assert np.allclose(folded.sum(axis=1), phi.sum(axis=1), rtol=0, atol=1e-12)

    def effect_of(feature, home):
        unit = np.zeros((1, len(FEATURE_NAMES)))
        unit[0, FEATURE_NAMES.index(feature)] = 1.0
        one = {name: values[home:home + 1] for name, values in columns.items()}
        return dict(zip(groups, fold(unit, one)[0]))

    renovated = int(np.flatnonzero(columns["yr_renovated"] > 0)[0])
    never = int(np.flatnonzero(columns["yr_renovated"] == 0)[0])
    assert effect_of("years_since_update", renovated)["yr_renovated"] == 1.0
    assert effect_of("years_since_update", never)["yr_built"] == 1.0
    assert effect_of("hous_val_amt", never)["neighbourhood"] == 1.0
    assert effect_of("nb15_ppsf_median", never) == {
        **{g: 0.0 for g in groups}, "lat": 0.5, "long": 0.5}
    assert effect_of("sqft_per_bedroom", never)["bedrooms"] == 0.5


def test_log_effects_become_dollars_by_the_logarithmic_mean(boosted_store):
    predictor = active(boosted_store)
    columns = read_examples(DATA_DIR)
    price = predictor.predict(columns).price
    explainer = predictor.explainer
    X = predictor.features(columns)
    phi = explainer.contributions(X)
    folded = explainer.fold(phi[:, :-1], columns)
    sqft = explainer.groups.index("sqft_living")
    folded[:, sqft] += np.log(columns["sqft_living"]) - explainer.log_sqft_mean
    for i, e in enumerate(predictor.explain(columns, price)):
        explanation = e["explanation"]
        assert explanation["method"] == "tree-shap"
        baseline = math.exp(phi[i, -1] + explainer.log_sqft_mean)
        assert explanation["baseline"] == round(baseline, 2)
        dollars = folded[i] * log_mean(price[i], baseline)
        effects = {x["input"]: x["effect"] for x in explanation["effects"]}
        for group, amount in zip(explainer.groups, dollars):
            # The rule, to within the cent that keeps the sum exact.
            assert abs(effects[group] - amount) <= 0.01 + 1e-9
        sizes = [abs(x["effect"]) for x in explanation["effects"]]
        assert sizes == sorted(sizes, reverse=True)


def test_split_cents_adds_up_and_moves_no_part_more_than_it_must():
    rng = np.random.default_rng(1)
    for _ in range(500):
        parts = rng.normal(0, 1e6, size=rng.integers(1, 30))
        total = int(round(parts.sum())) + int(rng.integers(-2, 3))
        rounded = split_cents(total, parts)
        assert rounded.sum() == total
        assert np.all(np.abs(rounded - parts) < 1 + abs(total - parts.sum()))
    assert split_cents(10, np.array([3.4, 3.3, 3.3])).tolist() == [4, 3, 3]
    # Ties go to the earlier part.
    assert split_cents(9, np.array([3.6, 3.6, 1.8])).tolist() == [3, 4, 2]


def test_log_mean_is_finite_where_the_prices_meet():
    assert log_mean(np.array([2.0]), np.array([2.0]))[0] == 2.0
    a, b = 500_000.0, 400_000.0
    assert log_mean(np.array([a]), np.array([b]))[0] == pytest.approx(
        (a - b) / math.log(a / b))


def test_comparables_come_from_the_zipcode_first_then_by_distance(sales):
    train, _ = sales.split()
    known = TrainingSales.from_columns(
        take(sales.columns, train), sales.price[train],
        sales.frame["date"].to_numpy()[train])
    home = {name: values[0] for name, values in read_examples(DATA_DIR).items()}
    rows, dist = known.nearest(home, 20)
    assert list(dist) == sorted(dist)
    assert set(known.zipcode[rows]) == {home["zipcode"]}
    everyone = known.distance(home, known.by_zipcode[home["zipcode"]])
    assert np.array_equal(np.sort(everyone)[:20], dist)
    # A zipcode with fewer sales than asked for: its own sales, then others.
    smallest = min(known.by_zipcode, key=lambda z: len(known.by_zipcode[z]))
    own = len(known.by_zipcode[smallest])
    rows, dist = known.nearest({**home, "zipcode": smallest}, own + 3)
    assert list(known.zipcode[rows[:own]]) == [smallest] * own
    assert smallest not in set(known.zipcode[rows[own:]])
    # Without lat/long and grade, size alone within the zipcode decides.
    minimal = {"sqft_living": home["sqft_living"], "zipcode": home["zipcode"]}
    rows, dist = known.nearest(minimal, 5)
    sizes = np.abs(np.log(known.values["sqft_living"][rows] / home["sqft_living"]))
    assert np.allclose(dist, sizes / math.log(1.25))
    described = known.describe(rows, minimal, [1.0] * 5)
    assert all(d["distance_km"] is None for d in described)


def test_sale_dates_are_iso():
    assert iso_date("20141013T000000") == "2014-10-13"
    assert iso_date("2026-11-30") == "2026-11-30"
