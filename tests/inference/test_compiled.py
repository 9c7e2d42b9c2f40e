"""Compiled trees: LightGBM's predictions, made here, used only when they match."""
import shutil

import numpy as np
import pytest

from housing_api.formats import LightGBMRegressor
from housing_api.inference.lean import LeanBooster
from housing_api.inference.lean import compiled
from housing_api.store import InvalidModelError, ModelStore
from housing_api.training.compiling import check_rows, compile_version
from housing_api.training.data import Sales, read_examples

from conftest import DATA_DIR


def relative_difference(got, expected) -> float:
    return float(np.max(np.abs(np.asarray(got) - expected) / np.abs(expected)))


@pytest.fixture(scope="module")
def compiled_store(boosted_store, tmp_path_factory):
    """A copy of the boosted store with the active version's trees compiled."""
    root = tmp_path_factory.mktemp("compiled") / "model"
    shutil.copytree(boosted_store, root)
    store = ModelStore(root)
    compile_version(store, store.current(), DATA_DIR, echo=lambda line: None)
    return store


@pytest.fixture(scope="module")
def every_home():
    """Every King County sale (training rows and holdout) and future example."""
    return Sales.read(DATA_DIR).columns, read_examples(DATA_DIR)


def test_the_store_serves_the_compiled_trees_with_the_librarys_prices(
        compiled_store, every_home):
    version = compiled_store.current()
    served = compiled_store.load(version)
    library = ModelStore(compiled_store.root, lean=False).load(version)
    assert isinstance(served.estimator, compiled.CompiledTrees)
    assert isinstance(library.estimator, LightGBMRegressor)
    for columns in every_home:
        assert relative_difference(served.predict(columns).price,
                                   library.predict(columns).price) <= 1e-9


def test_one_home_at_a_time_matches_the_batch(compiled_store, every_home):
    served = compiled_store.load(compiled_store.current())
    examples = every_home[1]
    features = served.features(examples)
    batch = served.estimator.predict(features)
    one = np.concatenate([served.estimator.predict(row) for row in features])
    np.testing.assert_array_equal(one, batch)
    booster = ModelStore(compiled_store.root, lean=False).load(
        compiled_store.current()).estimator.booster
    assert relative_difference(batch, booster.predict(features)) <= 1e-9


def test_explanations_still_come_from_lightgbm(compiled_store, every_home):
    served = compiled_store.load(compiled_store.current())
    library = ModelStore(compiled_store.root, lean=False).load(
        compiled_store.current())
    homes = {name: values[:3] for name, values in every_home[1].items()}
    price = served.predict(homes).price
    assert served.explain(homes, price) == library.explain(homes, price)


def test_the_c_api_path_stays_selectable(compiled_store):
    version = compiled_store.current()
    off = ModelStore(compiled_store.root, compiled=False).load(version)
    assert isinstance(off.estimator, LeanBooster)


def test_trees_compiled_for_another_cpu_are_not_used(compiled_store, monkeypatch):
    monkeypatch.setattr(compiled, "toolchain", lambda: "lleaves0-llvmlite0-other-0")
    served = compiled_store.load(compiled_store.current())
    assert isinstance(served.estimator, LeanBooster)


def test_an_object_of_another_model_is_refused_at_load(compiled_store, tmp_path,
                                                       caplog):
    version = compiled_store.current()
    store = ModelStore(tmp_path / "model")
    shutil.copytree(compiled_store.root, store.root)
    [own] = store.compiled_dir.glob("*.o")
    # Another model's machine code under this model's name: a smaller forest.
    import lightgbm

    model_file = store.path(version) / store.metadata(version)["artifact"]["file"]
    booster = lightgbm.Booster(model_file=str(model_file))
    other = tmp_path / "other.txt"
    booster.save_model(str(other), num_iteration=10)
    own.unlink()
    compiled.compile_trees(other, own, compiled.probe_rows(other, 64))
    served = store.load(version)
    assert isinstance(served.estimator, LeanBooster)
    assert "differ from the booster" in caplog.text


def test_nothing_is_written_when_the_compiled_trees_disagree(compiled_store, tmp_path,
                                                             monkeypatch):
    version = compiled_store.current()
    model_file = compiled_store.path(version) / "model.lgb.txt"
    out = tmp_path / "compiled" / "trees.o"
    monkeypatch.setattr(compiled, "TOLERANCE", -1.0)  # nothing can agree
    with pytest.raises(compiled.CompilationUnavailable, match="differ"):
        compiled.compile_trees(model_file, out,
                               check_rows(compiled_store, version, DATA_DIR)[:50])
    assert list(out.parent.iterdir()) == []


def test_only_lightgbm_versions_compile(trained_store):
    store = ModelStore(trained_store)
    with pytest.raises(InvalidModelError, match="not a LightGBM model"):
        store.compiled_object(store.current())


def test_deleting_a_version_removes_its_compiled_trees(compiled_store, tmp_path):
    store = ModelStore(tmp_path / "model")
    shutil.copytree(compiled_store.root, store.root)
    version = store.current()
    assert len(list(store.compiled_dir.glob("*.o"))) == 1
    store.rollback()
    store.delete(version)
    assert list(store.compiled_dir.glob("*.o")) == []


@pytest.fixture
def small_boosting(monkeypatch):
    from conftest import use_small_boosting

    use_small_boosting(monkeypatch)


def test_train_compiles_the_boosted_version_before_activating_it(
        runner, store, small_boosting):
    result = runner.invoke(args=["train", "--algorithm", "lightgbm"])
    assert result.exit_code == 0, result.output
    assert "compiled in" in result.stdout
    assert "equal to LightGBM on 21,713 homes" in result.stdout
    served = store.load(store.current())
    assert isinstance(served.estimator, compiled.CompiledTrees)


def test_train_compiles_nothing_a_configuration_will_not_serve(
        model_dir, store, small_boosting):
    from conftest import DATA_DIR, HousingCliRunner

    runner = HousingCliRunner({"MODEL_DIR": model_dir, "DATA_DIR": DATA_DIR,
                               "COMPILED_TREES": "false"})
    result = runner.invoke(args=["train", "--algorithm", "lightgbm"])
    assert result.exit_code == 0, result.output
    assert "not compiled: this configuration serves through LightGBM" \
        in result.stdout
    assert not store.compiled_dir.exists()
    assert isinstance(store.load(store.current()).estimator, LeanBooster)


def test_train_no_compile_serves_through_the_c_api(runner, store, small_boosting):
    result = runner.invoke(args=["train", "--algorithm", "lightgbm", "--no-compile"])
    assert result.exit_code == 0, result.output
    assert not store.compiled_dir.exists()
    assert isinstance(store.load(store.current()).estimator, LeanBooster)
    # Compiled later, on the machine that serves it:
    result = runner.invoke(args=["models", "compile"])
    assert result.exit_code == 0, result.output
    assert isinstance(store.load(store.current()).estimator, compiled.CompiledTrees)
    again = runner.invoke(args=["models", "compile", store.current()])
    assert "already in" in again.stdout


def test_compile_refuses_the_reference_model(runner, store):
    result = runner.invoke(args=["models", "compile", store.current()])
    assert result.exit_code == 1
    assert "not a LightGBM model" in result.stderr
