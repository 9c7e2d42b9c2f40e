"""The configuration, loaded in its fixed order onto a bare Flask app."""
import os
from pathlib import Path

from flask import Flask


def configured_app(test_config=None) -> Flask:
    """A Flask app with its configuration loaded and nothing else.

    What the CLI builds: config without blueprints, metrics or a model.
    """
    app = Flask(
        "housing_api",
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
    app.config["PREDICTION_LOG_SPOOL_DIR"] = Path(
        app.config["PREDICTION_LOG_SPOOL_DIR"] or instance / "spool").resolve()
    return app
