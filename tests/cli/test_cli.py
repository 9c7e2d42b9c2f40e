"""``housing-api models ...``, run as a user runs them (config from HOUSING_*)."""
import json
import pickle

import pandas as pd
import pytest

import reference_script
from conftest import DATA_DIR, HousingCliRunner
from housing_api.training import train as training
from model_files import (
    payload, publish_copy, skops_bytes, small_model, tamper, with_artifact,
)


@pytest.fixture
def second(store):
    return publish_copy(store)


def models(runner, *args):
    return runner.invoke(args=["models", *args])


def test_list_marks_active_and_previous(runner, store, second):
    first = store.current()
    store.activate(second)
    result = models(runner, "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"^ {first}  R2 0.")
    assert lines[1].startswith(f"* {second}  R2 0.")


def test_list_an_empty_store(tmp_path):
    runner = HousingCliRunner({"MODEL_DIR": tmp_path / "model",
                               "DATA_DIR": DATA_DIR})
    result = models(runner, "list")
    assert result.exit_code == 0
    assert "no model versions" in result.stdout


def test_activate(runner, store, second):
    result = models(runner, "activate", second)
    assert result.exit_code == 0
    assert result.stdout == f"active: {second}\n"
    assert store.current() == second


@pytest.mark.parametrize("version, message", [
    ("no-such-version", "no model version 'no-such-version'"),
])
def test_activate_unknown(runner, store, version, message):
    before = store.current()
    result = models(runner, "activate", version)
    assert result.exit_code == 1
    assert message in result.stderr
    assert store.current() == before


def test_activate_tampered_version_is_refused(runner, store, second):
    before = store.current()
    tamper(store.path(second) / "model.skops")
    result = models(runner, "activate", second)
    assert result.exit_code == 1
    assert "sha256" in result.stderr
    assert store.current() == before


def test_rollback(runner, store, second):
    first = store.current()
    store.activate(second)
    result = models(runner, "rollback")
    assert (result.exit_code, result.stdout) == (0, f"active: {first}\n")
    result = models(runner, "rollback")
    assert result.exit_code == 1
    assert "no earlier activation" in result.stderr
    assert store.current() == first


def test_delete(runner, store, second):
    first = store.current()
    result = models(runner, "delete", second)
    assert (result.exit_code, result.stdout) == (0, f"deleted: {second}\n")
    result = models(runner, "delete", first)
    assert result.exit_code == 1
    assert "is active" in result.stderr
    assert store.list_versions() == [first]


def sound_realty_script(out_dir):
    """What Sound Realty's create_model.py writes: model.pkl, model_features.json."""
    with open(out_dir / "model.pkl", "wb") as f:
        pickle.dump(reference_script.knn_pipeline(), f)
    with open(out_dir / "model_features.json", "w") as f:
        json.dump(list(reference_script.load()[0].columns), f)
    return out_dir / "model.pkl", out_dir / "model_features.json"


@pytest.fixture(scope="module")
def script_output(tmp_path_factory):
    return sound_realty_script(tmp_path_factory.mktemp("script"))


def test_import_converts_the_scripts_pickle(runner, store, script_output, client,
                                            home):
    model_pkl, features = script_output
    before = store.current()
    result = models(runner, "import", str(model_pkl), "--features", str(features))
    assert result.exit_code == 0, result.output
    assert "warning: loading a pickle executes code" in result.stderr
    version = result.stdout.split()[-1]
    assert store.list_versions() == [before, version]
    assert store.current() == before
    metadata = store.metadata(version)
    assert metadata["artifact"]["format"] == "skops"
    assert not list(store.path(version).glob("*.pkl"))
    assert metadata["imported_from"] == str(model_pkl)
    assert metadata["metrics"]["holdout"]["r2"] > 0.6

    # The imported version prices homes exactly as the script's model does.
    with open(model_pkl, "rb") as f:
        original = pickle.load(f)
    store.activate(version)
    client.application.extensions["housing"].reload()
    served = client.post("/v1/predict", json=home).get_json()
    assert served["model"]["version"] == version
    columns = list(original.feature_names_in_)
    demographics = pd.read_csv(DATA_DIR / "zipcode_demographics.csv",
                               dtype={"zipcode": str})
    row = pd.DataFrame([home]).merge(demographics, on="zipcode")[columns]
    assert served["prediction"] == pytest.approx(original.predict(row)[0])


def test_import_and_activate(runner, store, script_output):
    model_pkl, features = script_output
    result = models(runner, "import", str(model_pkl), "--features", str(features),
                    "--activate")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(" (active)\n")
    assert store.current() == store.list_versions()[-1]


def test_import_refuses_a_features_file_that_does_not_match(runner, store,
                                                            script_output,
                                                            tmp_path):
    model_pkl, features = script_output
    wrong = tmp_path / "features.json"
    wrong.write_text(json.dumps(json.loads(features.read_text())[::-1]))
    result = models(runner, "import", str(model_pkl), "--features", str(wrong))
    assert result.exit_code == 1
    assert "does not list the reference features" in result.stderr
    assert len(store.list_versions()) == 1


def test_import_refuses_a_file_that_is_not_a_pickle(runner, store, script_output,
                                                    tmp_path):
    _, features = script_output
    junk = tmp_path / "model.pkl"
    junk.write_bytes(b"not a pickle at all")
    result = models(runner, "import", str(junk), "--features", str(features))
    assert result.exit_code == 1
    assert "is not a loadable pickle" in result.stderr
    assert len(store.list_versions()) == 1


def test_train_reports_a_refused_version(runner, store, monkeypatch):
    files, metadata = payload(store)
    bad = with_artifact(files, metadata, skops_bytes(
        small_model(len(metadata["features"]), price=-1.0)))
    monkeypatch.setattr(training, "build_version",
                        lambda data_dir, algorithm, reported=None: (bad, metadata))
    result = runner.invoke(args=["train", "--algorithm", "reference"])
    assert result.exit_code == 1
    assert "the new version was refused" in result.stderr
    assert "non-finite or non-positive" in result.stderr
    assert len(store.list_versions()) == 1


def test_rollout_commands_start_show_and_end_a_canary(runner, store):
    from model_files import publish_copy

    champion, challenger = store.current(), publish_copy(store)
    result = runner.invoke(args=["rollout", "status"])
    assert result.exit_code == 0 and "no rollout in progress" in result.stdout
    result = runner.invoke(args=["rollout", "start", challenger, "--mode",
                                 "canary", "--share", "0.1"])
    assert result.exit_code == 0, result.output
    assert f"canary of {challenger} against {champion}" in result.stdout
    assert "10% of clients" in result.stdout
    status = runner.invoke(args=["rollout", "status"])
    assert status.exit_code == 0, status.output
    assert "10% of clients" in status.stdout
    assert "homes priced by both: 0\nno sales reported for them yet" in status.stdout
    assert "challenger's drift on 0 estimates: no data" in status.stdout
    assert "automatic abort: off (ROLLOUT_AUTO_ABORT)" in status.stdout
    again = runner.invoke(args=["rollout", "start", challenger, "--mode", "shadow"])
    assert again.exit_code == 1
    assert "is in progress; promote or abort it first" in again.output
    result = runner.invoke(args=["rollout", "promote"])
    assert result.exit_code == 0 and f"active: {challenger}" in result.stdout
    assert store.current() == challenger and store.rollout() is None
    status = runner.invoke(args=["rollout", "status"])
    assert status.stdout.startswith("no rollout in progress\nlast ended: canary "
                                    f"of {challenger} against {champion}")
    assert "; promoted at " in status.stdout


def test_rollout_status_says_when_a_canary_would_end_by_itself(model_dir, store):
    from conftest import HousingCliRunner
    from model_files import publish_copy

    runner = HousingCliRunner({"MODEL_DIR": model_dir, "ROLLOUT_AUTO_ABORT": "true",
                               "ROLLOUT_ABORT_MIN_SALES": 50})
    store.start_rollout(publish_copy(store), "canary", 0.2)
    status = runner.invoke(args=["rollout", "status"])
    assert status.exit_code == 0, status.output
    assert ("automatic abort: on, once the canary's MAPE is worse by more than "
            "1.00% on 50 sales or more") in status.stdout


def test_rollout_abort_keeps_the_active_version(runner, store):
    from model_files import publish_copy

    champion, challenger = store.current(), publish_copy(store)
    runner.invoke(args=["rollout", "start", challenger, "--mode", "shadow"])
    result = runner.invoke(args=["rollout", "abort"])
    assert result.exit_code == 0
    assert f"ended the shadow of {challenger}; {champion} answers" in result.stdout
    result = runner.invoke(args=["rollout", "abort"])
    assert result.exit_code == 1 and "no rollout is in progress" in result.output
    bad = runner.invoke(args=["rollout", "start", challenger, "--mode", "canary"])
    assert bad.exit_code == 1 and "share must be above 0" in bad.output
    assert store.current() == champion
