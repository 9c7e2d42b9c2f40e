"""``/admin/keys``: create, list, revoke, rotate API keys; their usage."""
from datetime import datetime, timedelta, timezone

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy.exc import SQLAlchemyError

from ..keys import (
    KeyNotFoundError, KeyRevokedError, create_key, digest, list_keys,
    revoke_key, rotate_key, usage,
)
from .admin import SECURITY, blp
from .schemas import (
    KeyCreatedSchema, KeyCreateSchema, KeyListSchema, KeyRotatedSchema,
    KeyRotateSchema, KeySchema, UsageQuerySchema, UsageSchema,
)

UNKNOWN = "No API key has this id."
UNAVAILABLE = "The database is unavailable; nothing was changed."


@blp.before_request
def check_content_type():
    # After the admin check (registered first): JSON bodies only.
    if request.method == "POST" and request.endpoint in ("admin.Keys",
                                                         "admin.Rotate") \
            and request.content_length and not request.is_json:
        abort(415, message="Send the body as application/json.")


def _database():
    return current_app.extensions["housing_db"].get()


def _cache():
    return current_app.extensions["housing_keys"]


def _unavailable(exc):
    current_app.logger.warning("database unavailable: %s", type(exc).__name__)
    abort(503, message=f"{UNAVAILABLE} Try again shortly.")


def _issued(key, secret) -> dict:
    # This process knows the new key at once; the others at their next
    # refresh (API_KEY_REFRESH_INTERVAL).
    _cache().put(key, digest(secret))
    return {**key.public(), "key": secret}


@blp.route("/keys")
class Keys(MethodView):
    @blp.doc(security=SECURITY)
    @blp.response(200, KeyListSchema)
    @blp.alt_response(503, description=UNAVAILABLE)
    def get(self):
        """List the API keys (never their secrets)"""
        try:
            return {"keys": [key.public() for key in list_keys(_database())]}
        except SQLAlchemyError as exc:
            _unavailable(exc)

    @blp.doc(security=SECURITY)
    @blp.arguments(KeyCreateSchema, example={
        "name": "agents-app", "scopes": ["predict"], "quota": "100 per second"})
    @blp.response(201, KeyCreatedSchema)
    @blp.alt_response(400, description="The body is not valid JSON.")
    @blp.alt_response(415, description="The body is not JSON.")
    @blp.alt_response(422, description="An unknown scope, or a quota that is "
                                       "not a rate limit.")
    @blp.alt_response(503, description=UNAVAILABLE)
    def post(self, body):
        """Create an API key

        The answer carries the secret as `key`, this once: only its hash is
        stored. Every worker accepts it within API_KEY_REFRESH_INTERVAL
        seconds (5 by default).
        """
        try:
            key, secret = create_key(_database(), body["name"], body["scopes"],
                                     body["quota"])
        except SQLAlchemyError as exc:
            _unavailable(exc)
        return _issued(key, secret)


def _known(call, *args, **kwargs):
    try:
        return call(_database(), *args, **kwargs)
    except KeyNotFoundError:
        abort(404, message=UNKNOWN)
    except SQLAlchemyError as exc:
        _unavailable(exc)


@blp.route("/keys/<key_id>")
class Key(MethodView):
    @blp.doc(security=SECURITY)
    @blp.response(200, KeySchema)
    @blp.alt_response(404, description=UNKNOWN)
    @blp.alt_response(503, description=UNAVAILABLE)
    def delete(self, key_id):
        """Revoke an API key

        Refused (403) from now on: by this worker at once, by every worker
        within API_KEY_REFRESH_INTERVAL seconds. Revoking it again changes
        nothing.
        """
        key = _known(revoke_key, key_id)
        _cache().put(key)
        return key.public()


@blp.route("/keys/<key_id>/rotate")
class Rotate(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(KeyRotateSchema, required=False,
                   example={"old_key_valid_for": 3600})
    @blp.response(201, KeyRotatedSchema)
    @blp.alt_response(400, description="The body is not valid JSON.")
    @blp.alt_response(404, description=UNKNOWN)
    @blp.alt_response(409, description="The key is revoked: create a new one.")
    @blp.alt_response(415, description="The body is not JSON.")
    @blp.alt_response(503, description=UNAVAILABLE)
    def post(self, body, key_id):
        """Replace an API key with a new one

        The new key has the same name, scopes and quota; its secret is in
        the answer, this once. The old key keeps working for
        `old_key_valid_for` seconds (0: refused at once).
        """
        try:
            old, new, secret = _known(rotate_key, key_id,
                                      old_valid_for=body["old_key_valid_for"])
        except KeyRevokedError as exc:
            abort(409, message=str(exc))
        _cache().put(old)
        return {**_issued(new, secret), "replaces": old.public()}


@blp.route("/keys/<key_id>/usage")
class Usage(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(UsageQuerySchema, location="query")
    @blp.response(200, UsageSchema)
    @blp.alt_response(404, description=UNKNOWN)
    @blp.alt_response(503, description=UNAVAILABLE)
    def get(self, query, key_id):
        """An API key's requests and estimates per day

        Counted by each worker and written every API_KEY_REFRESH_INTERVAL
        seconds, so the last few seconds may be missing.
        """
        since = (datetime.now(timezone.utc)
                 - timedelta(days=query["days"] - 1)).date()
        key, days = _known(usage, key_id, since=since)
        return {"key": key.public(), "days": days,
                "requests": sum(d["requests"] for d in days),
                "estimates": sum(d["estimates"] for d in days)}
