"""Equality tests: lean paths vs the library, on the real data and on ties."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import blas
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import RobustScaler, StandardScaler
from threadpoolctl import threadpool_limits

import reference_script as refdata
from housing_api.inference.lean import LeanBooster, LeanKNN, UnsupportedModel

# Library calls get ndarrays, so silence the feature-names warning.
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature")

NUMPY_ONLY = 10**9  # argkmin_from value that forces the numpy path


def assert_same(got, ref):
    """Bitwise equal; the 1e-9 relative bound is implied and checked too."""
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=0)
    assert np.array_equal(got, ref)


@pytest.fixture(scope="module")
def data():
    X_train, X_test, y_train, y_test, future = refdata.load()
    return {"test": refdata.as_array(X_test), "future": refdata.as_array(future)}


@pytest.fixture(scope="module")
def pipe():
    return refdata.knn_pipeline()


def test_reference_pipeline_uses_brute(pipe):
    assert pipe[-1]._fit_method == "brute"
    assert pipe[-1].effective_metric_ == "euclidean"


@pytest.mark.parametrize("argkmin_from", [256, NUMPY_ONLY])
@pytest.mark.parametrize("split", ["test", "future"])
def test_batches_match(pipe, data, split, argkmin_from):
    X = data[split]
    lean = LeanKNN(pipe, argkmin_from=argkmin_from)
    with threadpool_limits(1):
        assert_same(lean.predict(X), pipe.predict(X))


@pytest.mark.parametrize("split", ["test", "future"])
def test_single_rows_match(pipe, data, split):
    X = data[split]
    lean = LeanKNN(pipe)
    with threadpool_limits(1):
        ref = np.array([pipe.predict(x[None])[0] for x in X])
        got = np.array([lean.predict(x)[0] for x in X])
    assert_same(got, ref)


@pytest.mark.parametrize("n", [2, 63, 64, 65, 255, 256, 257])
def test_batch_sizes(pipe, data, n):
    X = data["test"][:n]
    for argkmin_from in (256, NUMPY_ONLY):
        assert_same(LeanKNN(pipe, argkmin_from=argkmin_from).predict(X),
                    pipe.predict(X))


def test_ten_thousand_rows(pipe, data, threads=1):
    """Upper batch size; train rows as queries hit its duplicate rows at d=0."""
    X_train = refdata.as_array(refdata.load()[0])
    X = np.vstack([data["test"], X_train[:10_000 - len(data["test"])]])
    with threadpool_limits(threads):
        ref = pipe.predict(X)
        for argkmin_from in (256, NUMPY_ONLY):
            lean = LeanKNN(pipe, argkmin_from=argkmin_from)
            assert_same(lean.predict(X), ref)
    assert lean.n_replayed > 0


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_settings(pipe, data, threads):
    X = data["test"][:1000]
    lean = LeanKNN(pipe, argkmin_from=NUMPY_ONLY)
    with threadpool_limits(threads):
        assert_same(lean.predict(X), pipe.predict(X))
        # One row runs sklearn's parallel_on_Y, split across the threads.
        ref = np.array([pipe.predict(x[None])[0] for x in X[:200]])
        assert_same(np.array([lean.predict(x)[0] for x in X[:200]]), ref)


def test_accepts_dataframe_values_and_one_d(pipe, data):
    X_test = refdata.load()[1]
    lean = LeanKNN(pipe)
    assert_same(lean.predict(X_test.iloc[:5].to_numpy()), pipe.predict(X_test.iloc[:5]))
    assert lean.predict(data["test"][0]).shape == (1,)


@pytest.mark.parametrize("k,weights", [(1, "uniform"), (20, "distance")])
def test_other_params(data, k, weights):
    pipe = refdata.knn_pipeline(n_neighbors=k, weights=weights)
    X = data["test"]
    for argkmin_from in (256, NUMPY_ONLY):
        assert_same(LeanKNN(pipe, argkmin_from=argkmin_from).predict(X),
                    pipe.predict(X))
    lean = LeanKNN(pipe)
    ref = np.array([pipe.predict(x[None])[0] for x in data["future"]])
    assert_same(np.array([lean.predict(x)[0] for x in data["future"]]), ref)


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
def test_tree_fits_match(data, algorithm):
    pipe = refdata.knn_pipeline(algorithm=algorithm)
    assert pipe[-1]._fit_method == algorithm
    lean = LeanKNN(pipe)
    X = data["test"][:500]
    assert_same(lean.predict(X), pipe.predict(X))
    ref = np.array([pipe.predict(x[None])[0] for x in data["future"]])
    assert_same(np.array([lean.predict(x)[0] for x in data["future"]]), ref)


# -- exact duplicates: ties at and inside the k-th distance -------------------


@pytest.fixture(scope="module")
def dup_data():
    """Train split plus 400 rows copied 1-5 extra times with other prices."""
    X_train, X_test, y_train, _, _ = refdata.load()
    rng = np.random.default_rng(0)
    src = rng.choice(len(X_train), 400, replace=False)
    copies = np.repeat(src, rng.integers(1, 6, src.size))
    X = pd.concat([X_train, X_train.iloc[copies]])
    y = np.concatenate([
        y_train.to_numpy(),
        y_train.iloc[copies].to_numpy() + rng.integers(-5e4, 5e4, copies.size),
    ])
    order = rng.permutation(len(X))
    queries = np.vstack([refdata.as_array(X_train.iloc[src]),
                         refdata.as_array(X_test.iloc[:600])])
    return X.iloc[order], y[order], queries


def _lexicographic_kneighbors(lean, X):
    """Same exact distances, ties broken by index (what sklearn does not do)."""
    out = []
    for x in lean._scale_rows(X):
        mid = np.empty((1, lean._n))
        lean._middle(x[None], mid)
        d = np.maximum((blas.ddot(x, x) + mid[0]) + lean._Yn, 0.0)
        out.append(np.lexsort((np.arange(d.size), d))[:lean._k])
    return np.array(out)


@pytest.mark.parametrize("k, weights, threads", [
    (1, "uniform", 1), (3, "distance", 1), (5, "uniform", 1), (5, "uniform", 2),
    (20, "distance", 1),
])
def test_duplicate_rows(dup_data, k, weights, threads):
    X, y, Q = dup_data
    pipe = make_pipeline(
        RobustScaler(), KNeighborsRegressor(n_neighbors=k, weights=weights)
    ).fit(X, y)
    assert pipe[-1]._fit_method == "brute"
    knn = pipe[-1]
    lean = LeanKNN(pipe, argkmin_from=NUMPY_ONLY)
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Qs = pipe[0].transform(Q)
        assert_same(lean.predict(Q), pipe.predict(Q))
        d_ref, i_ref = knn.kneighbors(Qs)
        d_got, i_got = lean.kneighbors(Q)
        assert np.array_equal(i_got, i_ref) and np.array_equal(d_got, d_ref)
        for x, xs in zip(Q[::16], Qs[::16]):
            assert_same(lean.predict(x), pipe.predict(x[None]))
            d1, i1 = lean.kneighbors(x)
            d1_ref, i1_ref = knn.kneighbors(xs[None])
            assert np.array_equal(i1, i1_ref) and np.array_equal(d1, d1_ref)
    # The heap replay really ran.
    assert lean.n_replayed > 0
    if k >= 3 and threads == 1:
        # Guard against a vacuous test: a plain (distance, index) tie-break
        # picks a different neighbour set on this data.
        lex = np.sort(_lexicographic_kneighbors(lean, Q), axis=1)
        assert (lex != np.sort(i_ref, axis=1)).any()


def test_sklearn_ties_depend_on_threads(dup_data):
    """sklearn's tie resolution changes with the OpenMP thread count; so do we."""
    X, y, Q = dup_data
    pipe = make_pipeline(RobustScaler(), KNeighborsRegressor()).fit(X, y)
    lean = LeanKNN(pipe)
    Q = Q[:300]
    preds = {}
    for threads in (1, 2):
        with threadpool_limits(threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = np.array([pipe.predict(x[None])[0] for x in Q])
            assert_same(np.array([lean.predict(x)[0] for x in Q]), ref)
            preds[threads] = ref
    assert (preds[1] != preds[2]).any()


# -- refusals and input checks -------------------------------------------------


def test_refuses_unsupported(dup_data):
    X, y, _ = dup_data
    X, y = X.iloc[:2000], y[:2000]
    bad = [
        make_pipeline(RobustScaler(), KNeighborsRegressor(weights=lambda d: d)),
        make_pipeline(RobustScaler(),
                      KNeighborsRegressor(algorithm="brute", metric="manhattan")),
        make_pipeline(StandardScaler(), KNeighborsRegressor()),
    ]
    for pipe in bad:
        pipe.fit(X, y)
        with pytest.raises(UnsupportedModel):
            LeanKNN(pipe)
    with pytest.raises(UnsupportedModel):
        LeanKNN(make_pipeline(RobustScaler(), KNeighborsRegressor()))


def test_bad_input(pipe, data):
    lean = LeanKNN(pipe)
    x = data["test"][0].copy()
    x[3] = np.nan
    with pytest.raises(ValueError):
        lean.predict(x)
    with pytest.raises(ValueError):
        lean.predict(data["test"][:, :5])


# -- LightGBM -----------------------------------------------------------------


@pytest.fixture(scope="module")
def booster():
    return refdata.lgbm_booster()


@pytest.mark.parametrize("split", ["test", "future"])
def test_booster_matches(booster, data, split):
    X = data[split]
    lean = LeanBooster(booster)
    ref = booster.predict(X)
    assert_same(lean.predict(X), ref)
    assert_same(np.concatenate([lean.predict(x) for x in X]), ref)
    assert_same(np.concatenate([lean.predict(x[None]) for x in X[:50]]), ref[:50])
    single_lib = np.concatenate([booster.predict(x[None]) for x in X[:200]])
    assert_same(single_lib, ref[:200])


def test_booster_threads_have_own_fast_config(booster, data):
    import threading

    X = data["test"][:400]
    lean = LeanBooster(booster)
    ref = booster.predict(X)
    results = {}

    def work(i):
        results[i] = np.concatenate([lean.predict(x) for x in X])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results.values():
        assert_same(got, ref)


def test_single_rows_search_only_the_zipcode_groups_they_need(pipe, data):
    """The reference features end in the zipcode's demographics: single rows
    are searched group by group, and still match sklearn (tests above)."""
    lean = LeanKNN(pipe)
    groups = lean._groups
    assert groups is not None and groups.split == 7
    assert len(groups.tails) == len(np.unique(pipe[-1]._fit_X[:, 7:], axis=0))
    with threadpool_limits(1):
        x = lean._scale_rows(data["future"][0])[0]
        candidates = groups.candidates(x, lean._k, 1e-9)
    assert lean._k <= len(candidates) < lean._n // 10


def test_rows_without_repeating_tails_take_the_full_search(data):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3000, 20))
    pipe = make_pipeline(RobustScaler(), KNeighborsRegressor()).fit(
        X, rng.standard_normal(3000))
    lean = LeanKNN(pipe)
    assert lean._groups is None
    Q = rng.standard_normal((50, 20))
    with threadpool_limits(1):
        assert_same(np.array([lean.predict(q)[0] for q in Q]),
                    np.array([pipe.predict(q[None])[0] for q in Q]))


def test_single_rows_with_unseen_demographics_match(pipe, data):
    """A tail that is no group's own takes the per-query group distances."""
    lean = LeanKNN(pipe)
    X = data["future"].copy()
    X[:, 7:] *= 1.0001
    with threadpool_limits(1):
        assert lean._groups._group_of.get(
            lean._scale_rows(X[0])[0, 7:].tobytes()) is None
        ref = np.array([pipe.predict(x[None])[0] for x in X])
        got = np.array([lean.predict(x)[0] for x in X])
    assert_same(got, ref)
