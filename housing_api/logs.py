"""One JSON object per log line, and one line per request."""
import logging
import sys
import time

from flask import current_app, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

log = logging.getLogger("housing_api.access")


class _Handler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (it may be redirected later).

    Its class also marks it, so that configuring again replaces it.
    """

    def emit(self, record):
        self.stream = sys.stderr
        super().emit(record)


class _RequestId(logging.Filter):
    """Put the request id on every record logged while a request is handled.

    So that the traceback of a 500 can be found from the id in its body.
    """

    def filter(self, record):
        if not hasattr(record, "request_id") and has_request_context():
            record.request_id = g.get("request_id")
        return True


def formatter(fmt: str) -> logging.Formatter:
    """Return the JSON formatter, or a plain one for local development."""
    if fmt == "text":
        return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def configure(app) -> None:
    """Log to stderr in ``LOG_FORMAT`` at ``LOG_LEVEL``; log every request."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler()
    handler.setFormatter(formatter(app.config["LOG_FORMAT"]))
    handler.addFilter(_RequestId())
    root.addHandler(handler)
    root.setLevel(app.config["LOG_LEVEL"])
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
    if response.status_code >= 400:
        fields["error"] = g.get("error_message")
    log.info("request", extra=fields)
    return response
