"""``/admin/rollout``: start, judge, promote or abort a shadow or canary."""
from dataclasses import asdict

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy.exc import SQLAlchemyError

from ..monitoring.rollouts import AbortRule, judge
from ..store import (
    InvalidModelError, RolloutError, StoreUnavailableError, VersionNotFoundError,
)
from .admin import SECURITY, UNWRITABLE, blp
from .api import UNREACHABLE
from .schemas import (
    RolloutRequestSchema, RolloutShareSchema, RolloutStartedSchema,
    RolloutStatusSchema,
)

#: Once every worker has reloaded (a rolling reload under Gunicorn):
STARTED = "Every worker serves this rollout once its reload is done."
PROMOTED = "Every worker serves the challenger as the active version once its " \
    "reload is done."
RESHARED = "Every worker serves the canary at its new share once its reload " \
    "is done; its clients stay in a larger share."
ABORTED = "Every worker answers with the active version alone once its reload " \
    "is done."


@blp.before_request
def check_content_type():
    if request.method in ("POST", "PATCH") and request.endpoint == "admin.Rollout" \
            and request.content_length and not request.is_json:
        abort(415, message="Send the body as application/json.")


def _state():
    return current_app.extensions["housing"]


def _refused(exc):
    if isinstance(exc, VersionNotFoundError):
        abort(404, message=str(exc))
    if isinstance(exc, RolloutError):
        abort(409, message=str(exc))
    if isinstance(exc, StoreUnavailableError):
        abort(503, message=UNREACHABLE.format(exc.strerror))
    if isinstance(exc, OSError):
        abort(503, message=UNWRITABLE)
    abort(422, message=f"The challenger was refused: {exc}")


def _reloading(rollout, message):
    return {"rollout": asdict(rollout), "reload": _state().request_reload(),
            "message": message}, 202


@blp.route("/rollout")
class Rollout(MethodView):
    @blp.doc(security=SECURITY)
    @blp.response(200, RolloutStatusSchema)
    @blp.alt_response(503, description="The prediction log's database is "
                                       "unavailable.")
    def get(self):
        """The rollout in progress, and how its two versions compare

        On every home both versions priced, the challenger's price over the
        champion's; on the homes with a reported sale, each one's MAE and
        MAPE and the paired difference (challenger minus champion, below
        zero the challenger is better) with a bootstrap 95% interval; the
        challenger's drift since the rollout began; whether an automatic
        abort is on, and due. And the last rollout that ended, and how.
        """
        store = _state().store
        rollout, ended = store.rollout(), store.ended_rollout()
        last = asdict(ended) if ended else None
        if rollout is None:
            return {"rollout": None, "judgement": None, "last_ended": last}
        try:
            found = judge(current_app.extensions["housing_db"].get(), rollout,
                          store.metadata(rollout.challenger).get(
                              "training_distribution"),
                          AbortRule.from_config(current_app.config))
        except SQLAlchemyError:
            abort(503, message="The prediction log's database is unavailable; "
                               "try again once it is back.")
        return {"rollout": asdict(rollout), "judgement": found, "last_ended": last}

    @blp.doc(security=SECURITY)
    @blp.arguments(RolloutRequestSchema)
    @blp.response(202, RolloutStartedSchema)
    @blp.alt_response(400, description="The body is not valid JSON.")
    @blp.alt_response(415, description="The body is not JSON.")
    @blp.alt_response(404, description="No such model version.")
    @blp.alt_response(409, description="A rollout is in progress, or the "
                                       "version is the active one.")
    @blp.alt_response(422, description="A field is invalid (a canary needs "
                                       "its share), or the version failed its "
                                       "integrity check.")
    @blp.alt_response(503, description=UNWRITABLE)
    def post(self, args):
        """Try a version beside the active one: a shadow or a canary

        Every master sharing the store loads the challenger before its
        workers fork and rolls them (zero failed requests, as every
        activation).
        """
        if args["mode"] == "canary" and "share" not in args:
            abort(422, message="A canary needs its share.",
                  errors={"json": {"share": ["Required for a canary."]}})
        try:
            rollout = _state().store.start_rollout(
                args["version"], args["mode"], args.get("share"))
        except (VersionNotFoundError, RolloutError, InvalidModelError,
                OSError) as exc:
            _refused(exc)
        return _reloading(rollout, STARTED)

    @blp.doc(security=SECURITY)
    @blp.arguments(RolloutShareSchema)
    @blp.response(202, RolloutStartedSchema)
    @blp.alt_response(400, description="The body is not valid JSON.")
    @blp.alt_response(415, description="The body is not JSON.")
    @blp.alt_response(409, description="No canary is in progress (a shadow has "
                                       "no share).")
    @blp.alt_response(422, description="The share is not above 0 and at most 1.")
    @blp.alt_response(503, description=UNWRITABLE)
    def patch(self, args):
        """Change the running canary's share of clients

        The same rollout: a client in the canary stays in a larger share.
        """
        try:
            rollout = _state().store.set_rollout_share(args["share"])
        except (RolloutError, OSError) as exc:
            _refused(exc)
        return _reloading(rollout, RESHARED)


@blp.route("/rollout/promote")
class Promote(MethodView):
    @blp.doc(security=SECURITY)
    @blp.response(202, RolloutStartedSchema)
    @blp.alt_response(409, description="No rollout is in progress.")
    @blp.alt_response(422, description="The challenger failed its integrity "
                                       "check; nothing changed.")
    @blp.alt_response(503, description=UNWRITABLE)
    def post(self):
        """Make the challenger the active version, ending its rollout"""
        try:
            rollout = _state().store.promote_rollout()
        except (RolloutError, InvalidModelError, OSError) as exc:
            _refused(exc)
        return _reloading(rollout, PROMOTED)


@blp.route("/rollout/abort")
class Abort(MethodView):
    @blp.doc(security=SECURITY)
    @blp.response(202, RolloutStartedSchema)
    @blp.alt_response(409, description="No rollout is in progress.")
    @blp.alt_response(503, description=UNWRITABLE)
    def post(self):
        """End the rollout; the active version answers everyone"""
        try:
            rollout = _state().store.abort_rollout()
        except (RolloutError, OSError) as exc:
            _refused(exc)
        return _reloading(rollout, ABORTED)
