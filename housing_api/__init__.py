"""Sound Realty's house-price service."""
import logging
import os
import re
import uuid
from pathlib import Path

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from . import logs, metrics
from .errors import Api
from .model_store import ModelStore, ModelStoreError
from .schemas import openapi_property
from .serving import ModelState

api = Api()
log = logging.getLogger(__name__)

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def create_app(test_config=None):
    """Create and configure the app.

    Config order: ``housing_api.config``, ``instance/config.py``,
    ``HOUSING_*`` environment variables, then ``test_config``.
    """
    app = Flask(
        __name__,
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

    hops = int(app.config["PROXY_COUNT"])
    if hops:
        # Trust exactly this many proxies' X-Forwarded-* headers, no more.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops,
                                x_host=hops, x_port=hops, x_prefix=hops)
    app.before_request(_assign_request_id)
    app.after_request(_return_request_id)
    logs.configure(app)

    api.init_app(app)
    api.ma_plugin.converter.add_attribute_function(openapi_property)
    from . import admin, health, limits, predict

    api.register_blueprint(predict.blp)
    api.register_blueprint(health.blp)
    api.register_blueprint(admin.blp)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer"}
    )

    # Metrics first: their before_request starts the clock that their
    # after_request needs, and the limiter's before_request raises the 429
    # that would otherwise skip it (refused requests would not be counted).
    service_metrics = metrics.init_app(app)
    limits.init_app(app)

    state = ModelState(
        ModelStore(app.config["MODEL_DIR"], lean=app.config["LEAN_INFERENCE"]),
        service_metrics)
    app.extensions["housing"] = state
    try:
        state.reload()
    except ModelStoreError:
        # Live but not ready: /health/ready says 503 until a good version.
        log.exception("the active model version could not be loaded")
    service_metrics.set_model(state.predictor)

    from . import cli

    cli.init_app(app)
    return app


def _assign_request_id():
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _REQUEST_ID_RE.match(given) else uuid.uuid4().hex


def _return_request_id(response):
    response.headers["X-Request-ID"] = g.get("request_id") or uuid.uuid4().hex
    return response
