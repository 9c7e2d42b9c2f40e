import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from databases import fresh_database
from housing_api import create_app
from housing_api.cli import main
from housing_api.training import boosting, minimal
from housing_api.store import ModelStore
from housing_api.cli.smoke import read_homes
from housing_api.training.train import train_version

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TOKEN = "test-admin-token-0123456789"


@pytest.fixture(scope="session", autouse=True)
def instance_folder(tmp_path_factory):
    """A private instance folder for the session's apps, its database migrated.

    So no test reads a developer's ``instance/config.py`` or writes the
    repository's ``instance/housing.db``. Gunicorn servers get their own
    (``servers.gunicorn_server``).
    """
    from housing_api.db import migrate

    folder = tmp_path_factory.mktemp("instance")
    migrate.upgrade(f"sqlite:///{folder / 'housing.db'}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOUSING_INSTANCE_PATH", str(folder))
        yield folder


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
def folder_store(model_dir):
    return ModelStore(model_dir)


@pytest.fixture
def app(model_dir):
    app = create_app({
        "TESTING": True,
        "MODEL_DIR": model_dir,
        "DATA_DIR": DATA_DIR,
        "ADMIN_TOKENS": TOKEN,
        # Limits have their own tests (test_ops); here they would only make
        # fast sequences of requests flaky.
        "RATELIMIT_ENABLED": False,
    })
    yield app
    close_app(app)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database, migrated: SQLite, then PostgreSQL (see databases.py)."""
    from housing_api.db import migrate

    with fresh_database(request.param, tmp_path) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def engine(database_url):
    """An engine on the (migrated) database of ``database_url``."""
    from housing_api.db import make_engine

    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def make_logged_app(model_dir, database_url, spool_dir):
    """An app whose prediction log writes to ``database_url``."""
    return create_app({
        "TESTING": True, "MODEL_DIR": model_dir, "DATA_DIR": DATA_DIR,
        "RATELIMIT_ENABLED": False, "DATABASE_URL": database_url,
        "PREDICTION_LOG_SPOOL_DIR": spool_dir,
    })


def close_app(app):
    """Stop the app's prediction log, its keys' refresher and its engines."""
    if app.extensions["housing_log"] is not None:
        app.extensions["housing_log"].close()
    app.extensions["housing_keys"].close()
    app.extensions["housing_db"].dispose()


@pytest.fixture
def logged_app(model_dir, database_url, tmp_path):
    """The app (reference model) with its prediction log in ``database_url``."""
    app = make_logged_app(model_dir, database_url, tmp_path / "spool")
    yield app
    close_app(app)


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


def estimates(predictions: list[dict]) -> list[dict]:
    """The estimates without their prediction ids, which are new every time."""
    ids = [p.pop("prediction_id") for p in predictions]
    assert len(set(ids)) == len(ids)
    return predictions


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
        answers[lean] = (estimates(batch.get_json()["predictions"]), singles)
    assert answers[True] == answers[False]


#: Boosted-model settings small enough for the suite.
SMALL_BOOSTING = {"num_boost_round": 100, "learning_rate": 0.1}


def use_small_boosting(patch: pytest.MonkeyPatch) -> None:
    """Train the boosted model and its minimal companion small."""
    patch.setattr(boosting, "DEFAULT_PARAMS",
                  {**boosting.DEFAULT_PARAMS, **SMALL_BOOSTING})
    patch.setattr(minimal, "MINIMAL_PARAMS",
                  {**minimal.MINIMAL_PARAMS, **SMALL_BOOSTING})


@pytest.fixture(scope="session")
def boosted_store(trained_store, tmp_path_factory):
    """The session's reference store plus a small boosted version, active."""
    root = tmp_path_factory.mktemp("boosted") / "model"
    shutil.copytree(trained_store, root)
    store = ModelStore(root)
    with pytest.MonkeyPatch.context() as patch:
        use_small_boosting(patch)
        version, _ = train_version(DATA_DIR, store, "lightgbm")
    store.activate(version)
    return root


@pytest.fixture
def boosted_client(boosted_store, tmp_path):
    """A test client serving a copy of ``boosted_store``."""
    model_dir = shutil.copytree(boosted_store, tmp_path / "model")
    return create_app({"TESTING": True, "MODEL_DIR": model_dir, "DATA_DIR": DATA_DIR,
                       "ADMIN_TOKENS": TOKEN, "RATELIMIT_ENABLED": False}
                      ).test_client()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server over HTTP, for the session (``buckets``)."""
    from buckets import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def bucket_url(s3_endpoint, monkeypatch):
    """``s3://<a new, empty bucket>/models``, this process set up to reach it."""
    from buckets import new_bucket, s3_env

    for name, value in s3_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    return f"s3://{new_bucket(s3_endpoint)}/models"


@pytest.fixture(scope="session")
def s3_template(s3_endpoint, trained_store, tmp_path_factory):
    """A bucket holding the trained version, active: copied, not rebuilt,
    for each test that needs one (``s3_store``)."""
    from buckets import new_bucket, s3_env
    from housing_api.store import open_store
    from housing_api.store.copying import copy_versions

    with pytest.MonkeyPatch.context() as patch:
        for name, value in s3_env(s3_endpoint).items():
            patch.setenv(name, value)
        url = f"s3://{new_bucket(s3_endpoint)}/models"
        source = ModelStore(trained_store)
        store = open_store(url, tmp_path_factory.mktemp("s3-template"))
        copy_versions(source, store)
        store.activate(source.current())
    return url


@pytest.fixture
def s3_store(bucket_url, s3_template, s3_endpoint, tmp_path):
    """An object store holding the trained version, active (a copy of
    ``s3_template``, with a cache of its own)."""
    from buckets import s3_client
    from housing_api.store import open_store

    client = s3_client(s3_endpoint)
    template = s3_template.split("/")[2]
    target = bucket_url.split("/")[2]
    for obj in client.list_objects_v2(Bucket=template)["Contents"]:
        client.copy_object(Bucket=target, Key=obj["Key"],
                           CopySource={"Bucket": template, "Key": obj["Key"]})
    return open_store(bucket_url, tmp_path / "cache")


@pytest.fixture(params=["folder", "s3"])
def any_store(request):
    """A folder store and an object store holding the trained version, in
    turn: a test that uses it holds for both."""
    return request.getfixturevalue(f"{request.param}_store")
