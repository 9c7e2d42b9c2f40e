"""The database and the prediction log, bound to the app."""
from flask import current_app, g, request

from ..db import ProcessEngine
from ..monitoring.log import Estimates, PredictionLog, new_ids, utcnow


def init_app(app) -> None:
    """Put the database and the :class:`PredictionLog` (or None) on the app."""
    config = app.config
    database = app.extensions["housing_db"] = ProcessEngine(config["DATABASE_URL"])
    app.extensions["housing_log"] = PredictionLog(
        config["DATABASE_URL"], config["PREDICTION_LOG_SPOOL_DIR"],
        flush_interval=config["PREDICTION_LOG_FLUSH_INTERVAL"],
        buffer_size=config["PREDICTION_LOG_BUFFER"], engine=database,
    ) if config["PREDICTION_LOG"] else None


def record(predictor, homes, result, answered_ids=None, as_of=None
           ) -> list[str] | None:
    """Log this request's estimates; return their prediction ids (None if off).

    ``answered_ids`` marks them as a rollout's other estimates, each made
    beside the answered estimate with that id (see ``monitoring.rollouts``);
    ``as_of`` is the month asked (``YYYY-MM``), None for estimates "now".
    """
    prediction_log = current_app.extensions["housing_log"]
    if prediction_log is None:
        return None
    ids = new_ids(len(result.price))
    prediction_log.record(Estimates(
        ids=ids, request_id=g.request_id, endpoint=request.endpoint,
        model_version=predictor.version, client=request.remote_addr,
        api_key_id=key.id if (key := g.get("api_key")) is not None else None,
        homes=homes, price=result.price, lower=result.lower,
        upper=result.upper, level=result.level, created_at=utcnow(),
        answered_ids=answered_ids, variant=predictor.variant, as_of=as_of))
    return ids
