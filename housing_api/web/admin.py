"""Model versions for operators: list, upload, activate, roll back, train."""
import hmac
import json

from flask import current_app, request, url_for
from flask.views import MethodView
from flask_smorest import abort
from werkzeug.routing import BaseConverter

from .. import formats
from ..inference.features import UnknownFeatureSetError, get_feature_set
from ..store import (
    DEMOGRAPHICS, ActiveVersionError, InvalidModelError, NothingToRollbackError,
    StoreConflictError, StoreUnavailableError, VersionNotFoundError,
    check_predictions,
)
from ..training import jobs
from .api import UNREACHABLE
from ..training.data import DEMOGRAPHICS_CSV, read_examples
from . import keys
from .api import Blueprint
from .schemas import (
    ActivationSchema, JobSchema, ModelListSchema, ModelUploadSchema,
    TrainRequestSchema, VersionSchema,
)

blp = Blueprint(
    "admin", __name__, url_prefix="/admin",
    description="Model versions and API keys, for operators: an admin token "
                "or an API key with the admin scope.",
)
SECURITY = [{"bearerAuth": []}, {"apiKeyHeader": []}]
blp.document_errors({
    401: "No admin token or API key, or an unknown one.",
    403: "A revoked key, a key without the admin scope, or the admin API "
         "disabled (no admin token configured and no admin key).",
    429: "Too many requests from this client; see Retry-After.",
})
NOT_FOUND = "No such model version."
UNWRITABLE = "The model store refused the write (disk full or read-only)."


class VersionConverter(BaseConverter):
    """A version in a URL: never ``rollback`` or ``train``, which are routes.

    Without it ``/admin/models/rollback`` also matched ``<version>``, and
    OPTIONS there advertised GET and DELETE.
    """

    regex = r"(?!(?:rollback|train)(?![0-9A-Za-z._-]))[^/]+"


# Before the routes below are added: they need the converter.
blp.record_once(lambda state: state.app.url_map.converters.setdefault(
    "version", VersionConverter))


def admin_tokens() -> list[str]:
    """Return the configured admin tokens.

    ``ADMIN_TOKEN`` (one) and ``ADMIN_TOKENS`` (a list, or comma-separated,
    so that a new token can be rolled out before the old one is removed).
    """
    tokens = []
    for key in ("ADMIN_TOKEN", "ADMIN_TOKENS"):
        value = current_app.config.get(key) or []
        # From the environment a digits-only token arrives as an int.
        tokens += value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [str(t).strip() for t in tokens if str(t).strip()]


@blp.before_request
def require_token():
    """An admin token (the bootstrap) or an API key with the ``admin`` scope."""
    tokens = admin_tokens()
    secret = keys.sent_secret()  # 401 for one in the URL
    if secret is not None and tokens:
        # Compare against every token, always, so timing reveals nothing.
        matches = [hmac.compare_digest(secret.encode(), t.encode()) for t in tokens]
        if any(matches):
            return
    if not tokens and not current_app.extensions["housing_keys"].any_with_scope(
            "admin"):
        abort(403, message="The admin API is disabled: no admin token is "
                           "configured (HOUSING_ADMIN_TOKENS) and no API key "
                           "has the admin scope.")
    if secret is None:
        abort(401, message="An admin token or an API key with the 'admin' "
                           "scope is required: `Authorization: Bearer <it>`.",
              headers={"WWW-Authenticate": 'Bearer realm="admin"'})
    keys.authorize("admin", secret=secret)


def _state():
    return current_app.extensions["housing"]


def _store_errors(exc):
    if isinstance(exc, VersionNotFoundError):
        abort(404, message=str(exc))
    if isinstance(exc, (ActiveVersionError, NothingToRollbackError)):
        abort(409, message=str(exc))
    if isinstance(exc, StoreUnavailableError):
        abort(503, message=UNREACHABLE.format(exc.strerror))
    if isinstance(exc, StoreConflictError):  # busy: lost every race it ran
        abort(503, message=f"{exc}; try again.")
    if isinstance(exc, OSError):
        abort(503, message=f"The model store could not be written "
                           f"({exc.strerror or exc}); try again once it has "
                           f"space and is writable.")
    abort(422, message=f"The model version was refused: {exc}")


def _describe(store, version, current, previous):
    return {"version": version, "active": version == current,
            "previous": version == previous, "metadata": store.metadata(version)}


@blp.route("/models")
class Models(MethodView):
    @blp.doc(security=SECURITY)
    @blp.response(200, ModelListSchema)
    def get(self):
        """List the stored model versions, newest last

        The active version and the one a rollback would restore are marked.
        """
        store = _state().store
        current, previous = store.current(), store.previous()
        versions = []
        for version in store.list_versions():
            try:
                versions.append(_describe(store, version, current, previous))
            except VersionNotFoundError:
                continue  # deleted while we listed
        return {"active": current, "previous": previous, "loaded": _state().version,
                "versions": versions}

    @blp.doc(security=SECURITY)
    @blp.arguments(ModelUploadSchema, location="files")
    @blp.response(201, VersionSchema)
    @blp.alt_response(422, description="The artifact or its metadata failed "
                                       "validation; nothing was stored.")
    @blp.alt_response(413, description="The upload is larger than the service "
                                       "accepts.")
    @blp.alt_response(503, description=UNWRITABLE)
    def post(self, files):
        """Upload a model version (validated and stored, not activated)

        Multipart fields: `artifact` (a skops file, or a LightGBM text model
        from `model_to_string`; never a pickle), `metadata` (JSON: `name`,
        `feature_set`, `features`, `artifact: {file, format}` with format
        `skops` or `lightgbm` and optionally the `sha256` you expect,
        `interval`, `input_ranges`, ...), and optionally `demographics` (the
        zipcode CSV the model was trained with; default: the service's own)
        and `context` (fitted state the feature set needs, e.g. the boosted
        model's `neighbours.npz`).
        The version must load without running code, match its feature set,
        and give finite, positive prices for every future example. Failures
        are 422 with the reason, and nothing is stored.
        """
        try:
            metadata = json.loads(files["metadata"].read())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            abort(422, message="metadata is not JSON.",
                  errors={"files": {"metadata": [str(exc)]}})
        if not isinstance(metadata, dict) or not isinstance(
            metadata.get("artifact"), dict
        ):
            abort(422, message="metadata must be an object with an 'artifact' "
                               "object naming the file and format.")
        metadata.pop("version", None)
        data_dir = current_app.config["DATA_DIR"]
        demographics = files.get("demographics")
        payload = {
            str(metadata["artifact"].get("file")): files["artifact"].read(),
            DEMOGRAPHICS: (demographics.read() if demographics
                           else (data_dir / DEMOGRAPHICS_CSV).read_bytes()),
        }
        context = files.get("context")
        if context:
            payload.update(_context_payload(metadata, context))
        _screen(metadata["artifact"], payload)
        store = _state().store
        try:
            version = store.publish(
                payload, metadata, check=check_predictions(read_examples(data_dir))
            )
        except (InvalidModelError, OSError) as exc:
            _store_errors(exc)
        return {"version": version}, 201, {
            "Location": url_for("admin.ModelVersion", version=version)}


def _screen(artifact, payload) -> None:
    """Refuse unsafe uploads from their bytes, before anything is written."""
    try:
        for name, data in payload.items():
            if name == str(artifact.get("file")):
                formats.screen(str(artifact.get("format")), data)
            elif name != DEMOGRAPHICS:
                formats.screen_zip(data, name)
    except formats.ArtifactError as exc:
        abort(422, message=f"The model version was refused: {exc}")


def _context_payload(metadata, context) -> dict:
    """Name the uploaded context file as the version's feature set expects."""
    try:
        name = get_feature_set(str(metadata.get("feature_set"))).context_file
    except UnknownFeatureSetError:
        return {}  # publish refuses the version and says why
    if name is None:
        abort(422, message="The model's feature set takes no context file.",
              errors={"files": {"context": ["not used by this feature set"]}})
    return {name: context.read()}


@blp.route("/models/<version:version>")
class ModelVersion(MethodView):
    @blp.doc(security=SECURITY)
    @blp.response(200, VersionSchema)
    @blp.alt_response(404, description=NOT_FOUND)
    def get(self, version):
        """Show one stored version's metadata"""
        store = _state().store
        try:
            return _describe(store, version, store.current(), store.previous())
        except VersionNotFoundError as exc:
            _store_errors(exc)

    @blp.doc(security=SECURITY)
    @blp.response(204)
    @blp.alt_response(409, description="The version is active.")
    @blp.alt_response(404, description=NOT_FOUND)
    @blp.alt_response(503, description=UNWRITABLE)
    def delete(self, version):
        """Delete a stored version that is not active"""
        try:
            _state().store.delete(version)
        except (VersionNotFoundError, ActiveVersionError, StoreConflictError,
                OSError) as exc:
            _store_errors(exc)


def _activated(version):
    how = _state().request_reload()
    return {"version": version, "reload": how,
            "message": "Every worker serves this version once /health/ready "
                       "reports it."}, 202


@blp.route("/models/<version:version>/activate")
class Activate(MethodView):
    @blp.doc(security=SECURITY)
    @blp.response(202, ActivationSchema)
    @blp.alt_response(422, description="The version failed its integrity "
                                       "check; the active one keeps serving.")
    @blp.alt_response(404, description=NOT_FOUND)
    @blp.alt_response(503, description=UNWRITABLE)
    def post(self, version):
        """Make a stored version the active one (rolling reload)"""
        try:
            _state().store.activate(version)
        except (VersionNotFoundError, InvalidModelError, StoreConflictError,
                OSError) as exc:
            _store_errors(exc)
        return _activated(version)


@blp.route("/models/rollback")
class Rollback(MethodView):
    @blp.doc(security=SECURITY)
    @blp.response(202, ActivationSchema)
    @blp.alt_response(409, description="There is no earlier activation.")
    @blp.alt_response(422, description="The earlier version failed its "
                                       "integrity check; nothing changed.")
    @blp.alt_response(503, description=UNWRITABLE)
    def post(self):
        """Re-activate the version that was active before the current one

        Each rollback goes one activation further back; deleted versions
        are skipped.
        """
        try:
            version = _state().store.rollback()
        except (NothingToRollbackError, InvalidModelError, StoreConflictError,
                OSError) as exc:
            _store_errors(exc)
        return _activated(version)


@blp.route("/models/train")
class Train(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(TrainRequestSchema, required=False)
    @blp.response(202, JobSchema)
    @blp.alt_response(409, description="As many training jobs as allowed "
                                       "(MAX_TRAINING_JOBS) are running.")
    @blp.alt_response(400, description="The body is not valid JSON.")
    @blp.alt_response(415, description="The body is not JSON.")
    @blp.alt_response(503, description=UNWRITABLE)
    def post(self, args):
        """Train a new version from the data folder, in a separate process

        Answers at once with a job to poll. With `activate: true` the new
        version goes live only if its holdout metrics are no worse than the
        active version's; the job says whether and why. Without a body:
        the defaults below. At most `MAX_TRAINING_JOBS` jobs run at once.
        """
        if request.content_length and not request.is_json:
            abort(415, message="Send the body as application/json, or none.")
        config = current_app.config
        try:
            job = jobs.start_training(config["MODEL_DIR"], config["DATA_DIR"],
                                      args["algorithm"], args["activate"],
                                      int(config["MAX_TRAINING_JOBS"]),
                                      config["MODEL_STORE"])
        except jobs.TooManyJobsError as exc:
            abort(409, message=str(exc))
        except OSError as exc:
            _store_errors(exc)
        return job, 202, {"Location": url_for("admin.Job", job_id=job["id"])}


@blp.route("/jobs/<job_id>")
class Job(MethodView):
    @blp.doc(security=SECURITY)
    @blp.response(200, JobSchema)
    @blp.alt_response(404, description="No such job.")
    def get(self, job_id):
        """Show a training job's state and outcome"""
        job = jobs.read(current_app.config["MODEL_DIR"], job_id)
        if job is None:
            abort(404, message=f"No job {job_id!r}.")
        return job
