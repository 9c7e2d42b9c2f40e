"""One error shape for every response, produced here only."""
import json

import flask_smorest
import flask_smorest.error_handler
import marshmallow as ma
from flask import current_app, g
from flask_smorest import abort
from marshmallow import missing
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import ServiceUnavailable

from ..store import StoreUnavailableError


class ErrorSchema(flask_smorest.error_handler.ErrorSchema):
    """Every error body: code, status, message, errors (fields), request id."""

    request_id = ma.fields.String(
        metadata={"description": "Quote it when reporting a problem."})


class Api(flask_smorest.Api):
    """flask-smorest's Api, with ``message`` and ``request_id`` always set.

    Body: ``{"code", "status", "message", "errors"?, "request_id"}``. Flask
    routes unhandled exceptions here as 500s, after logging them; the body
    never carries a traceback.
    """

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        payload, code, extra = super().handle_http_exception(error)
        # The exception's own headers (Allow on 405, WWW-Authenticate, ...)
        # but not its HTML content type.
        headers = {k: v for k, v in error.get_headers()
                   if k.lower() != "content-type"}
        headers.update(extra or {})
        payload.setdefault("message", error.description)
        payload["request_id"] = g.get("request_id")
        g.error_message = payload["message"]
        if code == 422:
            current_app.extensions["housing_metrics"].observe_rejection(
                payload.get("errors"))
        return payload, code, headers


#: The 503 of any request that needed the model store while it was out of
#: reach (an object store's bucket); what is loaded goes on serving.
UNREACHABLE = ("The model store is unreachable ({}); nothing changed. Try "
               "again once it is back.")


def store_unreachable(exc: StoreUnavailableError):
    """A 503 in the common shape, for a request the store failed."""
    from .. import extensions

    return extensions.api.handle_http_exception(
        ServiceUnavailable(UNREACHABLE.format(exc.strerror)))


class Parser(FlaskParser):
    """webargs' parser, with messages a client can act on."""

    DEFAULT_VALIDATION_STATUS = 422

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._instances = {}

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except RecursionError:
            # Deeply nested arrays exhaust the decoder's stack: bad input,
            # not a server error.
            raise json.JSONDecodeError("nested too deeply", "<body>", 0) from None
        except ValueError as exc:
            # e.g. an integer literal longer than Python's 4300-digit limit
            raise json.JSONDecodeError(str(exc), "<body>", 0) from None

    def parse(self, argmap, req=None, *, location=None, **kwargs):
        # Schemas with a fast path (HomeSchema) skip marshmallow for valid
        # bodies; anything else takes the full route and its error messages.
        if isinstance(argmap, type) and hasattr(argmap, "fast_load"):
            # One instance per class: building a schema costs more than
            # validating a home on the fast path.
            if argmap not in self._instances:
                self._instances[argmap] = argmap()
            argmap = self._instances[argmap]
        empty = getattr(argmap, "EMPTY", None)
        if empty is not None and location == "query" and not (
                req or self.get_default_request()).args:
            return dict(empty)  # the common case: no query string at all
        fast_load = getattr(argmap, "fast_load", None)
        if fast_load is not None and (location or self.location) == "json":
            data = self.load_json(req or self.get_default_request(), argmap)
            if data is not missing:
                result = fast_load(data, partial=argmap.partial is True)
                if result is not None:
                    return result
        return super().parse(argmap, req, location=location, **kwargs)

    def load_body(self, req):
        """Return the decoded JSON body ({} when empty), or answer 400."""
        body = self.load_json(req, None)
        return {} if body is missing else body

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        abort(400, message="The body is not valid JSON.",
              errors={"json": [f"Invalid JSON body: {getattr(error, 'msg', error)}"]})

    def handle_error(self, error, req, schema, *, error_status_code,
                     error_headers):
        abort(error_status_code or self.DEFAULT_VALIDATION_STATUS,
              message="Invalid input: `errors` names each field and the reason.",
              errors=error.messages, headers=error_headers or {})


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with our argument parser.

    Every documented error response carries the error schema, and
    :meth:`document_errors` documents the errors that every operation of
    the blueprint can answer (auth, rate limit, body problems).
    """

    ARGUMENTS_PARSER = Parser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._common_errors = []
        self._security = None
        self._prepare_doc_cbks.append(self._prepare_errors_doc)
        self._prepare_doc_cbks.append(self._prepare_security_doc)

    def document_security(self, security) -> None:
        """Every operation's ``security``: a list, or ``security(app)``."""
        self._security = security

    def _prepare_security_doc(self, doc, doc_info, *, app, **kwargs):
        if self._security is not None and "security" not in doc:
            security = self._security
            doc["security"] = security(app) if callable(security) else security
        return doc

    def document_errors(self, responses: dict, methods=None) -> None:
        """Document ``{status: description}`` on every operation (of ``methods``)."""
        self._common_errors.append((dict(responses), methods))

    def _prepare_errors_doc(self, doc, doc_info, *, method, **kwargs):
        responses = doc.setdefault("responses", {})
        for errors, methods in self._common_errors:
            if methods is None or method in methods:
                for status, description in errors.items():
                    responses.setdefault(str(status), {"description": description})
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for status, response in responses.items():
            if str(status)[0] in "45" and isinstance(response, dict) \
                    and "$ref" not in response:
                response.setdefault("content", error)
        return doc
