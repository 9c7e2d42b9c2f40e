import json
import multiprocessing
import os
import pickle
import shutil
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import lightgbm
import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression

from conftest import DATA_DIR
from housing_api.formats import dump_lightgbm
from housing_api.store import files as store_files
from housing_api.store import pointer as store_pointer
from housing_api.store import versions as store_versions
from housing_api.store import (
    DEMOGRAPHICS, ActiveVersionError, InvalidModelError, ModelStore,
    NothingToRollbackError, VersionNotFoundError, check_predictions,
    new_version_name,
)
from housing_api.training.data import read_examples
from model_files import (
    checked_before_storing, folder_only, payload, publish_copy, reopened,
    skops_bytes, small_model, tamper, with_artifact,
)


@pytest.fixture
def store(any_store):
    """Every test here holds for the folder store and the object store."""
    return any_store


@pytest.fixture(scope="module")
def examples():
    return read_examples(DATA_DIR)


@pytest.fixture
def versions(store):
    """The trained version A (active) and a copy B, stored but inactive."""
    return store.current(), publish_copy(store)


def test_publish_stores_a_new_inactive_version(store, versions):
    a, b = versions
    assert store.list_versions() == [a, b]
    assert store.current() == a
    assert len(store.metadata(b)["artifact"]["sha256"]) == 64
    assert store.load(b).version == b


def test_version_names_sort_by_creation_time_and_are_url_safe():
    start = datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=timezone.utc)
    names = [new_version_name("Réf KNN / ../v2", start + timedelta(microseconds=i))
             for i in range(3)]
    assert names == sorted(names)
    assert len(set(names)) == 3
    for name in names:
        assert quote(name, safe="") == name
        assert store_files.VERSION_RE.match(name)
    assert names[0] == "20260102-030405-999999-r-f-knn-v2"


def test_every_publish_gets_its_own_version(store, versions):
    a, b = versions
    c = publish_copy(store)
    assert store.list_versions() == [a, b, c]


def test_publish_never_overwrites_a_version(store, versions):
    a, _ = versions
    before = (store.path(a) / "metadata.json").read_bytes()
    with pytest.raises(InvalidModelError, match="already exists"):
        publish_copy(store, version=a)
    assert (store.path(a) / "metadata.json").read_bytes() == before


def test_activate_moves_the_pointer(store, versions):
    a, b = versions
    store.activate(b)
    assert (store.current(), store.previous()) == (b, a)
    assert (reopened(store).current(), reopened(store).previous()) == (b, a)


def test_activating_the_active_version_changes_nothing(store, versions):
    a, _ = versions
    store.activate(a)
    assert store.history() == [a]


@pytest.mark.parametrize("version", ["no-such-version", "../versions", ".staging-x"])
def test_activate_refuses_unknown_versions(store, versions, version):
    with pytest.raises(VersionNotFoundError):
        store.activate(version)
    assert store.current() == versions[0]


def test_a_forked_worker_can_use_the_masters_store(store, versions):
    a, b = versions
    store.activate(b)
    store.activate(a)
    child = multiprocessing.get_context("fork").Process(
        target=store.activate, args=(b,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert store.current() == b


def test_rollback_restores_the_previous_version(store, versions):
    a, b = versions
    store.activate(b)
    assert store.rollback() == a
    assert store.current() == a


def test_repeated_rollbacks_walk_the_history_back(store, versions):
    a, b = versions
    c = publish_copy(store)
    for version in (b, c, b):
        store.activate(version)
    assert store.history() == [a, b, c, b]
    assert [store.rollback() for _ in range(3)] == [c, b, a]
    with pytest.raises(NothingToRollbackError):
        store.rollback()
    assert store.current() == a


def test_the_history_keeps_the_latest_activations(store, versions, monkeypatch):
    a, b = versions
    monkeypatch.setattr(store_pointer, "HISTORY_LIMIT", 3)
    for version in (b, a, b, a):
        store.activate(version)
    assert store.history() == [a, b, a]
    assert [store.rollback(), store.rollback()] == [b, a]
    with pytest.raises(NothingToRollbackError):
        store.rollback()


def test_rollback_skips_deleted_versions(store, versions):
    a, b = versions
    c = publish_copy(store)
    store.activate(b)
    store.activate(c)
    store.delete(b)
    assert store.previous() == b
    assert store.rollback() == a


def test_rollback_never_lands_on_the_active_version(store, versions):
    a, b = versions
    store.activate(b)
    store.activate(a)
    store.delete(b)
    with pytest.raises(NothingToRollbackError):
        store.rollback()
    assert store.current() == a


def test_rollback_with_no_earlier_activation(store, versions):
    with pytest.raises(NothingToRollbackError):
        store.rollback()


def test_rollback_refuses_a_corrupt_version(store, versions):
    a, b = versions
    store.activate(b)
    tamper(store.path(a) / "model.skops")
    with pytest.raises(InvalidModelError, match="sha256"):
        store.rollback()
    assert (store.current(), store.history()) == (b, [a, b])


def test_delete_removes_an_inactive_version(store, versions):
    a, b = versions
    store.delete(b)
    assert store.list_versions() == [a]
    assert not list(store.versions_dir.glob(".*"))


def test_delete_never_removes_the_active_version(store, versions):
    a, _ = versions
    with pytest.raises(ActiveVersionError):
        store.delete(a)
    assert store.load(a).version == a


def test_delete_unknown_version(store, versions):
    with pytest.raises(VersionNotFoundError):
        store.delete("no-such-version")


@pytest.mark.parametrize("name", ["model.skops", DEMOGRAPHICS])
def test_tampered_files_are_refused_at_load_and_activate(store, versions, name):
    a, b = versions
    tamper(store.path(b) / name)
    with pytest.raises(InvalidModelError, match=f"{name} does not match its sha256"):
        store.load(b)
    with pytest.raises(InvalidModelError, match="sha256"):
        store.activate(b)
    assert store.current() == a


def test_every_file_of_a_version_is_checked_on_load(store, versions):
    files, metadata = payload(store)
    version = store.publish({**files, "context.npz": b"fitted state"}, metadata)
    assert set(store.metadata(version)["files"]) == {
        "model.skops", DEMOGRAPHICS, "context.npz"}
    tamper(store.path(version) / "context.npz")
    with pytest.raises(InvalidModelError, match="context.npz does not match"):
        store.load(version)
    (store.path(version) / "context.npz").unlink()
    with pytest.raises(InvalidModelError, match="missing file"):
        store.load(version)


def test_metadata_cannot_point_outside_its_folder(store, versions):
    _, b = versions
    metadata_file = store.path(b) / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["files"]["../../CURRENT"] = "0" * 64
    metadata_file.write_text(json.dumps(metadata))
    with pytest.raises(InvalidModelError, match="invalid file name"):
        store.load(b)


class Doubler(BaseEstimator, RegressorMixin):
    """Not in the allowlist: loading it would import code we did not vet."""

    def fit(self, X, y):
        return self

    def predict(self, X):
        return np.full(len(X), 400_000.0)


def _n_features(metadata):
    return len(metadata["features"])


@checked_before_storing
@pytest.mark.parametrize("make, reason", [
    (lambda n: Doubler(), "disallowed types.*Doubler"),
    (lambda n: LinearRegression().fit(np.eye(n), np.ones(n)),
     "disallowed types.*LinearRegression"),
    (lambda n: pickle.dumps(small_model(n)), "not a skops file"),
    (lambda n: b"", "not a skops file"),
])
def test_unsafe_artifacts_are_refused(store, versions, make, reason):
    files, metadata = payload(store)
    artifact = make(_n_features(metadata))
    data = artifact if isinstance(artifact, bytes) else skops_bytes(artifact)
    with pytest.raises(InvalidModelError, match=reason):
        store.publish(with_artifact(files, metadata, data), metadata)
    assert store.list_versions() == list(versions)
    assert sorted(p.name for p in store.versions_dir.iterdir()) == sorted(versions)


def _edit(metadata, **changes):
    return {**metadata, **changes}


@checked_before_storing
@pytest.mark.parametrize("change, reason", [
    ({"feature_set": "luxury-v9"}, "unknown feature set 'luxury-v9'"),
    ({"features": ["bedrooms"]}, "features do not match feature set"),
    ({"features": "reversed"}, "features do not match feature set"),
    ({"artifact": {"file": "model.skops", "format": "pickle"}},
     "unknown artifact format 'pickle'"),
    ({"artifact": {"file": "model.skops", "format": "skops", "sha256": "0" * 64}},
     "does not match the sha256 given"),
    ({"artifact": {"file": "demographics.csv", "format": "skops"}},
     "needs its artifact file"),
    ({"artifact": "model.skops"}, "needs an 'artifact' object"),
    ({"interval": None}, "incomplete metadata"),
    ({"version": "../escape"}, "invalid version name"),
])
def test_invalid_metadata_is_refused(store, versions, change, reason):
    files, metadata = payload(store)
    if change.get("features") == "reversed":
        change = {"features": metadata["features"][::-1]}
    with pytest.raises(InvalidModelError, match=reason):
        store.publish(files, _edit(metadata, **change))
    assert store.list_versions() == list(versions)


@checked_before_storing
def test_a_model_without_a_price_for_every_example_is_refused(store, versions,
                                                              examples):
    files, metadata = payload(store)
    model = small_model(_n_features(metadata))
    model[-1]._y = model[-1]._y.copy()
    model[-1]._y[:] = np.nan
    with pytest.raises(InvalidModelError, match="non-finite or non-positive"):
        store.publish(with_artifact(files, metadata, skops_bytes(model)), metadata,
                      check=check_predictions(examples))
    assert store.list_versions() == list(versions)


@checked_before_storing
def test_negative_prices_are_refused(store, versions, examples):
    files, metadata = payload(store)
    model = small_model(_n_features(metadata), price=-1.0)
    with pytest.raises(InvalidModelError, match="non-finite or non-positive"):
        store.publish(with_artifact(files, metadata, skops_bytes(model)), metadata,
                      check=check_predictions(examples))


def test_a_model_that_passes_every_check_is_stored(store, versions, examples):
    files, metadata = payload(store)
    model = small_model(_n_features(metadata))
    version = store.publish(with_artifact(files, metadata, skops_bytes(model)),
                            metadata, check=check_predictions(examples))
    assert store.list_versions()[-1] == version


def lightgbm_payload(store, objective="regression", n_features=None):
    files, metadata = payload(store)
    n = n_features or _n_features(metadata)
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 10, (200, n)), rng.uniform(3e5, 7e5, 200)
    if objective == "binary":
        y = (y > 5e5).astype(int)
    model = lightgbm.LGBMRegressor(objective=objective, n_estimators=5,
                                   num_threads=1, verbose=-1).fit(X, y)
    files = {"model.lgb.txt": dump_lightgbm(model),
             DEMOGRAPHICS: files[DEMOGRAPHICS]}
    metadata["artifact"] = {"file": "model.lgb.txt", "format": "lightgbm"}
    return files, metadata


def test_a_lightgbm_text_model_is_stored_and_served(store, versions, examples):
    version = store.publish(*lightgbm_payload(store),
                            check=check_predictions(examples))
    price = store.load(version).predict(examples).price
    assert ((price > 3e5) & (price < 7e5)).all()


@checked_before_storing
@pytest.mark.parametrize("spoil, reason", [
    (lambda store: lightgbm_payload(store, objective="binary"),
     "objective 'binary' does not predict prices"),
    (lambda store: lightgbm_payload(store, n_features=5),
     "expects 5 features"),
    (lambda store: ({**lightgbm_payload(store)[0], "model.lgb.txt": b"tree\n"},
                    lightgbm_payload(store)[1]),
     "does not predict prices"),
    (lambda store: ({**lightgbm_payload(store)[0],
                     "model.lgb.txt": b"objective=regression\nnot a model"},
                    lightgbm_payload(store)[1]),
     "cannot load LightGBM model"),
])
def test_bad_lightgbm_models_are_refused(store, versions, spoil, reason):
    with pytest.raises(InvalidModelError, match=reason):
        store.publish(*spoil(store))
    assert store.list_versions() == list(versions)


@folder_only
def test_leftovers_of_a_crashed_publish_are_not_versions(store, versions):
    old = store.versions_dir / ".staging-crashed"
    old.mkdir()
    (old / "model.skops").write_bytes(b"half")
    an_hour_ago = time.time() - store_versions.STALE_STAGING_SECONDS - 1
    os.utime(old, (an_hour_ago, an_hour_ago))
    busy = store.versions_dir / ".staging-busy"
    busy.mkdir()
    (store.versions_dir / ".deleting-x-1").mkdir()
    assert store.list_versions() == list(versions)
    publish_copy(store)
    left = sorted(p.name for p in store.versions_dir.glob(".*"))
    assert left == [".staging-busy"]


class Crash(OSError):
    """An I/O failure, standing for the process dying at this step."""


@contextmanager
def crash_at(monkeypatch, step):
    """Make the store's ``step``-th durable file operation fail.

    Counts every file write (a crash tears it: half the bytes land), fsync
    and rename. Yields a list that holds the failed step, if one did.
    """
    real_replace, real_fsync = os.replace, os.fsync
    real_write = store_files.write_durably
    calls, crashed = [], []

    def reached(what):
        calls.append(what)
        if len(calls) == step + 1:
            crashed.append(what)
            return True
        return False

    def replace(src, dst):
        if reached(f"replace {Path(dst).name}"):
            raise Crash
        real_replace(src, dst)

    def fsync(fd):
        if reached("fsync"):
            raise Crash
        real_fsync(fd)

    def write(path, data):
        if reached(f"write {Path(path).name}"):
            Path(path).write_bytes(data[: len(data) // 2])
            raise Crash
        real_write(path, data)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", replace)
        m.setattr(os, "fsync", fsync)
        m.setattr(store_files, "write_durably", write)
        yield crashed


def snapshot(store):
    return store.list_versions(), store.current(), store.history()


def assert_consistent(store):
    """Every listed version and the pointer are whole; no stray folders."""
    for version in store.list_versions():
        store.load(version)
    assert store.current() in store.list_versions()
    visible = {p.name for p in store.versions_dir.iterdir()
               if not p.name.startswith(".")}
    assert visible == set(store.list_versions())
    assert not list(store.versions_dir.glob(".staging-*"))


NEW = "20990101-000000-000000-crash-test"
OPERATIONS = {
    "publish": lambda store, b: publish_copy(store, version=NEW),
    "activate": lambda store, b: store.activate(b),
    "rollback": lambda store, b: store.rollback(),
    "delete": lambda store, b: store.delete(b),
}


@folder_only
@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_crash_at_any_step_leaves_the_old_or_the_new_state(
        operation, store, versions, tmp_path, monkeypatch):
    a, b = versions
    if operation == "rollback":
        store.activate(b)
    run = OPERATIONS[operation]
    expected = ModelStore(shutil.copytree(store.root, tmp_path / "expected"))
    run(expected, b)
    old, new = snapshot(store), snapshot(expected)
    assert old != new
    steps = []
    for step in range(50):
        trial = ModelStore(shutil.copytree(store.root, tmp_path / f"step{step}"))
        with crash_at(monkeypatch, step) as crashed:
            try:
                run(trial, b)
            except Crash:
                pass
        state = snapshot(trial)
        assert state in (old, new), (step, crashed)
        assert_consistent(trial)
        if not crashed:
            assert state == new
            break
        steps.append((crashed[0], "old" if state == old else "new"))
    else:
        pytest.fail("the operation never completed")
    # Crashes early left the old state, crashes late the new one.
    outcomes = [outcome for _, outcome in steps]
    assert outcomes == sorted(outcomes, reverse=True)
    assert set(outcomes) == {"old", "new"}
