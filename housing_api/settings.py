"""The configuration, loaded in its fixed order onto a bare Flask app."""
import os
from pathlib import Path

from flask import Flask


class ConfigError(ValueError):
    """A setting that cannot work: the message names it and says why."""


def configured_app(test_config=None) -> Flask:
    """A Flask app with its configuration loaded and nothing else.

    What the CLI builds: config without blueprints, metrics or a model.
    """
    app = Flask(
        "housing_api",
        template_folder="web/templates",
        instance_relative_config=True,
        instance_path=os.environ.get("HOUSING_INSTANCE_PATH"),
    )
    app.config.from_object("housing_api.config")
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("HOUSING")
    if test_config is not None:
        app.config.from_mapping(test_config)
    for key in ("MODEL_DIR", "DATA_DIR"):
        app.config[key] = Path(app.config[key]).resolve()
    instance = Path(app.instance_path)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = f"sqlite:///{instance.resolve() / 'housing.db'}"
    _check_database_url(app.config["DATABASE_URL"])
    if app.config["MODEL_STORE"]:
        _check_url("HOUSING_MODEL_STORE", app.config["MODEL_STORE"],
                   "empty (the folder HOUSING_MODEL_DIR)")
    app.config["PREDICTION_LOG_SPOOL_DIR"] = Path(
        app.config["PREDICTION_LOG_SPOOL_DIR"] or instance / "spool").resolve()
    jobs = app.config["JOBS_DIR"]
    if str(jobs).startswith("s3://"):
        _check_url("HOUSING_JOBS_DIR", jobs, "a folder")
    else:
        app.config["JOBS_DIR"] = Path(jobs or instance / "jobs").resolve()
    app.config["JOBS_SCRATCH_DIR"] = Path(
        app.config["JOBS_SCRATCH_DIR"] or instance / "jobs-scratch").resolve()
    return app


def model_store(config, **options):
    """The model store the configuration names, serving as it says."""
    from .store import open_store

    return open_store(config["MODEL_STORE"], config["MODEL_DIR"],
                      lean=config["LEAN_INFERENCE"],
                      compiled=config["COMPILED_TREES"], **options)


def _check_url(name, url, otherwise) -> None:
    from .ops.buckets import parse_url

    try:
        parse_url(url)
    except ValueError:
        raise ConfigError(f"{name}={url!r}: expected {otherwise} or "
                          "s3://bucket/prefix") from None


def _check_database_url(url) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except ArgumentError:
        # Not the value itself: it may hold a password.
        raise ConfigError(
            "HOUSING_DATABASE_URL is not a SQLAlchemy database URL; expected "
            "e.g. postgresql+psycopg://user:password@host:5432/housing or "
            "sqlite:////path/to/housing.db") from None
