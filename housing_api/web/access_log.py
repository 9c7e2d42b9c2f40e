"""One log line per request, and the request id on every line logged meanwhile."""
import logging
import time

from flask import current_app, g, has_request_context, request

from ..ops import logs

log = logging.getLogger("housing_api.access")


class _RequestId(logging.Filter):
    """Put the request id on every record logged while a request is handled.

    So that the traceback of a 500 can be found from the id in its body.
    """

    def filter(self, record):
        if not hasattr(record, "request_id") and has_request_context():
            record.request_id = g.get("request_id")
        return True


def init_app(app) -> None:
    """Log to stderr in ``LOG_FORMAT`` at ``LOG_LEVEL``; log every request."""
    logs.configure(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"],
                   filters=[_RequestId()])
    app.before_request(_start_timer)
    app.after_request(_log_request)


def _start_timer():
    g.started = time.perf_counter()


def _log_request(response):
    state = current_app.extensions["housing"]
    fields = {
        "request_id": g.get("request_id"),
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - g.get("started", 0)) * 1000, 3),
        "model_version": state.version,
        "client": request.remote_addr,
    }
    key = g.get("api_key")
    if key is not None:  # the prefix, never the secret
        fields["api_key"] = key.prefix
    if response.status_code >= 400:
        fields["error"] = g.get("error_message")
    log.info("request", extra=fields)
    return response
