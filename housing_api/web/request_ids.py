"""Request ids: the client's ``X-Request-ID`` if it is sane, else a new one."""
import re
import uuid

from flask import g, request

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def init_app(app) -> None:
    """Give every request an id, and return it in ``X-Request-ID``."""
    app.before_request(_assign_request_id)
    app.after_request(_return_request_id)


def _assign_request_id():
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _REQUEST_ID_RE.match(given) else uuid.uuid4().hex


def _return_request_id(response):
    response.headers["X-Request-ID"] = g.get("request_id") or uuid.uuid4().hex
    return response
