"""One JSON object per log line, on whatever stderr is now."""
import logging
import sys

from pythonjsonlogger.json import JsonFormatter


class _Handler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (it may be redirected later).

    Its class also marks it, so that configuring again replaces it.
    """

    def emit(self, record):
        self.stream = sys.stderr
        super().emit(record)


def formatter(fmt: str) -> logging.Formatter:
    """Return the JSON formatter, or a plain one for local development."""
    if fmt == "text":
        return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def configure(fmt: str, level: str, filters=()) -> None:
    """Log to stderr in ``fmt`` at ``level``, replacing an earlier call's handler."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler()
    handler.setFormatter(formatter(fmt))
    for log_filter in filters:
        handler.addFilter(log_filter)
    root.addHandler(handler)
    root.setLevel(level)
    # boto3 says where it found credentials each time a process makes a
    # client (the master, then every worker): its warnings are enough.
    for name in ("boto3", "botocore", "s3transfer"):
        logging.getLogger(name).setLevel(logging.WARNING)
