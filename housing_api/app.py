"""The application factory."""
import logging

from .monitoring.adaptation import IntervalAdaptation
from .monitoring.gauges import LiveGauges
from .monitoring.rollouts import AbortRule, RolloutGuard
from .serving import ModelState
from .settings import configured_app, model_store
from .store import ModelStoreError
from .web import (
    access_log, blueprints, keys, limits, metrics, prediction_log, proxies,
    request_ids, security, ui,
)

log = logging.getLogger("housing_api")


def create_app(test_config=None):
    """Create and configure the app, and load the active model version.

    Config order: ``housing_api.config``, ``instance/config.py``,
    ``HOUSING_*`` environment variables, then ``test_config``.
    """
    app = configured_app(test_config)
    proxies.init_app(app)
    security.init_app(app)
    request_ids.init_app(app)
    access_log.init_app(app)
    blueprints.init_app(app)
    # Metrics first: their before_request starts the clock that their
    # after_request needs, and the limiter's before_request raises the 429
    # that would otherwise skip it (refused requests would not be counted).
    service_metrics = metrics.init_app(app)
    prediction_log.init_app(app)  # the database, which the keys need
    # Keys before limits: a key's own quota applies, not its address's.
    keys.init_app(app)
    ui.init_app(app)  # the pages find their session's key here
    limits.init_app(app)
    state = serve_active_version(app, service_metrics)
    rule = AbortRule.from_config(app.config)
    app.extensions["housing_gauges"] = LiveGauges(
        service_metrics, state, app.extensions["housing_db"],
        app.config["PREDICTION_LOG_SPOOL_DIR"] / "gauges.lock",
        interval=app.config["MONITORING_REFRESH_INTERVAL"],
        guard=rule and RolloutGuard(state, rule, service_metrics))
    # Intervals adapt to the sales reported for the estimates in the log.
    app.extensions["housing_adaptation"] = IntervalAdaptation(
        state, app.extensions["housing_db"],
        app.config["INTERVAL_ADAPTATION_STEP"],
        app.config["INTERVAL_ADAPTATION_REFRESH"],
    ) if app.config["PREDICTION_LOG"] else None
    return app


def serve_active_version(app, service_metrics) -> ModelState:
    """Put the model state in ``app.extensions`` and load CURRENT's version."""
    state = ModelState(
        model_store(app.config),
        service_metrics)
    app.extensions["housing"] = state
    try:
        state.reload()
    except ModelStoreError:
        # Live but not ready: /health/ready says 503 until a good version.
        log.exception("the active model version could not be loaded")
    service_metrics.set_model(state.predictor)
    return state
