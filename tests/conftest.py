import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from housing_api import create_app
from housing_api.cli import main
from housing_api.training import boosting
from housing_api.store import ModelStore
from housing_api.cli.smoke import read_homes
from housing_api.training.train import train_version

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TOKEN = "test-admin-token-0123456789"


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory):
    """A store holding the reference model, trained once per session."""
    root = tmp_path_factory.mktemp("trained") / "model"
    store = ModelStore(root)
    version, _ = train_version(DATA_DIR, store, "reference")
    store.activate(version)
    return root


@pytest.fixture
def model_dir(trained_store, tmp_path):
    """A private copy of the trained store, free to change."""
    return Path(shutil.copytree(trained_store, tmp_path / "model"))


@pytest.fixture
def store(model_dir):
    return ModelStore(model_dir)


@pytest.fixture
def app(model_dir):
    return create_app({
        "TESTING": True,
        "MODEL_DIR": model_dir,
        "DATA_DIR": DATA_DIR,
        "ADMIN_TOKENS": TOKEN,
        # Limits have their own tests (test_ops); here they would only make
        # fast sequences of requests flaky.
        "RATELIMIT_ENABLED": False,
    })


@pytest.fixture
def client(app):
    return app.test_client()


class HousingCliRunner(CliRunner):
    """Runs ``housing-api`` commands with ``config`` as ``HOUSING_*`` variables.

    The way a user configures the CLI; ``invoke(args=[...])`` as with
    Flask's test runner.
    """

    def __init__(self, config):
        super().__init__(env={f"HOUSING_{key}": str(value)
                              for key, value in config.items()})

    def invoke(self, cli=None, args=None, **kwargs):
        return super().invoke(cli or main, args, **kwargs)


@pytest.fixture
def runner(model_dir):
    return HousingCliRunner({"MODEL_DIR": model_dir, "DATA_DIR": DATA_DIR})


@pytest.fixture
def admin_headers():
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="session")
def homes():
    """The 100 future examples, typed as a JSON client would send them."""
    return read_homes(DATA_DIR / "future_unseen_examples.csv")


@pytest.fixture
def home(homes):
    return dict(homes[0])


def assert_served_alike(model_dir, homes, lean_type):
    """The lean and the library path answer every home identically."""
    answers = {}
    for lean in (True, False):
        app = create_app({"TESTING": True, "MODEL_DIR": model_dir,
                          "RATELIMIT_ENABLED": False, "LEAN_INFERENCE": lean})
        estimator = app.extensions["housing"].predictor.estimator
        assert isinstance(estimator, lean_type) is lean
        client = app.test_client()
        batch = client.post("/v1/predict/batch", json={"instances": homes})
        singles = [client.post("/v1/predict", json=h).get_json()["prediction"]
                   for h in homes]
        answers[lean] = (batch.get_json()["predictions"], singles)
    assert answers[True] == answers[False]


#: Boosted-model settings small enough for the suite.
SMALL_BOOSTING = {"num_boost_round": 100, "learning_rate": 0.1}


@pytest.fixture(scope="session")
def boosted_store(trained_store, tmp_path_factory):
    """The session's reference store plus a small boosted version, active."""
    root = tmp_path_factory.mktemp("boosted") / "model"
    shutil.copytree(trained_store, root)
    store = ModelStore(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(boosting, "DEFAULT_PARAMS",
                      {**boosting.DEFAULT_PARAMS, **SMALL_BOOSTING})
        version, _ = train_version(DATA_DIR, store, "lightgbm")
    store.activate(version)
    return root
