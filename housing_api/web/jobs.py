"""``/v1/jobs``: score a whole file as a job, outside the web workers.

``POST`` stores the upload and queues the job (202 and its ``Location``);
a job process (``housing-api worker``) claims and scores it; ``GET``
follows it and streams its result and refused rows; ``DELETE`` cancels a
job or removes a finished one. A client sees only its own jobs: its API
key's, or without one its address's.
"""
import uuid
from datetime import timedelta

from flask import current_app, request, send_file, url_for
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy.exc import SQLAlchemyError

from ..jobs import queue
from ..jobs.files import ERRORS, RESULT, UploadTooLarge, job_files
from ..serving.scoring import ERROR_COLUMNS, ScoringError, check_header
from .predict import blp, client_identity
from .schemas.jobs import JobQuerySchema, ScoringJobListSchema, ScoringJobSchema

#: Bytes read from the request at a time.
BLOCK = 1 << 20
UNAVAILABLE = "The database is unavailable; try again once it is back."


def _engine():
    return current_app.extensions["housing_db"].get()


def _files():
    return job_files(current_app.config["JOBS_DIR"],
                     current_app.config["JOBS_SCRATCH_DIR"])


def _shown(job) -> dict:
    out = job.to_dict()
    end = job.finished_at or (queue.utcnow() if job.started_at else None)
    out["seconds"] = (end - job.started_at).total_seconds() if job.started_at \
        else None
    out["links"] = {"self": url_for("predict.Job", job_id=job.id)}
    if job.state == queue.SUCCEEDED:
        out["links"]["result"] = url_for("predict.JobResult", job_id=job.id)
        out["links"]["errors"] = url_for("predict.JobErrors", job_id=job.id)
    return out


def _blocks():
    """The CSV's bytes: the body itself, or the multipart field ``file``."""
    if request.mimetype == "text/csv":
        stream = request.stream
    elif "file" in request.files:
        stream = request.files["file"].stream
    else:
        abort(422, message="Upload the CSV as the multipart field 'file'.",
              errors={"files": {"file": ["Missing data for required field."]}})
    while block := stream.read(BLOCK):
        yield block


def _own(job_id):
    try:
        job = queue.get(_engine(), job_id, client_identity())
    except SQLAlchemyError:
        abort(503, message=UNAVAILABLE)
    if job is None:
        abort(404, message="No such job of yours.")
    return job


@blp.route("/jobs")
class Jobs(MethodView):
    @blp.arguments(JobQuerySchema, location="query")
    @blp.doc(requestBody={"required": True, "content": {
        "text/csv": {"schema": {"type": "string"}},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}}}}}})
    @blp.response(202, ScoringJobSchema)
    @blp.alt_response(404, description="No such model version.")
    @blp.alt_response(413, description="The file is over MAX_JOB_UPLOAD_BYTES.")
    @blp.alt_response(422, description="The file's header is not that of "
                                       "future_unseen_examples.csv.")
    @blp.alt_response(503, description="No version is active (and none was "
                                       "asked for), or the database is "
                                       "unavailable.")
    def post(self, query):
        """Score a whole file of homes as a job

        Send a CSV with the header of `future_unseen_examples.csv`, of any
        length up to `MAX_JOB_UPLOAD_BYTES` (1 GB by default), as a
        `text/csv` body or the multipart field `file`. The answer is 202 with
        the job's `Location`: follow it until `state` is `succeeded`, then
        read `result` (one row per valid home, in input order) and `errors`
        (the refused rows and why), as `housing-api score` writes them.
        """
        config = current_app.config
        version = query.get("version")
        store = current_app.extensions["housing"].store
        if version is not None and not store.exists(version):
            abort(404, message=f"No model version {version!r}.")
        if version is None and store.current() is None:
            abort(503, message="No model version is active yet; see "
                               "/health/ready.")
        limit = config["MAX_JOB_UPLOAD_BYTES"]
        too_large = f"The file is larger than {limit:,} bytes (MAX_JOB_UPLOAD_BYTES)."
        if (request.content_length or 0) > limit:
            abort(413, message=too_large)
        # This endpoint's own limit, not the JSON endpoints' (Flask 3.1).
        request.max_content_length = limit
        files, job_id = _files(), uuid.uuid4().hex
        try:
            size = files.save_upload(job_id, _blocks(), limit)
        except UploadTooLarge:
            abort(413, message=too_large)
        try:
            check_header(files.header(job_id))
        except UnicodeDecodeError:
            files.remove(job_id)
            abort(400, message="The CSV is not UTF-8 text.")
        except ScoringError as exc:
            files.remove(job_id)
            abort(422, message=f"The file cannot be scored: {exc}.",
                  errors={"csv": {"header": [str(exc)]}})
        try:
            job = queue.submit(
                _engine(), client_identity(), size,
                timedelta(hours=config["JOB_RETENTION_HOURS"]), version=version,
                explain=query["explain"], job_id=job_id)
        except SQLAlchemyError:
            files.remove(job_id)
            abort(503, message=UNAVAILABLE)
        return _shown(job), 202, {"Location": url_for("predict.Job",
                                                      job_id=job.id)}

    @blp.response(200, ScoringJobListSchema)
    @blp.alt_response(503, description=UNAVAILABLE)
    def get(self):
        """List your jobs, newest first"""
        try:
            jobs = queue.owned_by(_engine(), client_identity())
        except SQLAlchemyError:
            abort(503, message=UNAVAILABLE)
        return {"jobs": [_shown(job) for job in jobs]}


@blp.route("/jobs/<job_id>")
class Job(MethodView):
    @blp.response(200, ScoringJobSchema)
    @blp.alt_response(404, description="No such job of yours.")
    @blp.alt_response(503, description=UNAVAILABLE)
    def get(self, job_id):
        """A job's state: rows done of rows total, rows refused, timings"""
        return _shown(_own(job_id))

    @blp.response(202, ScoringJobSchema)
    @blp.alt_response(204, description="The finished job and its files are "
                                       "deleted.")
    @blp.alt_response(404, description="No such job of yours.")
    @blp.alt_response(503, description=UNAVAILABLE)
    def delete(self, job_id):
        """Cancel a job, or delete a finished one with its files

        A queued job is cancelled at once; a running one stops at its next
        chunk (202, `cancel_requested`). A finished job is deleted (204).
        """
        job = _own(job_id)
        try:
            if job.state in queue.FINISHED:
                _files().remove(job.id)
                queue.remove(_engine(), job.id)
                return "", 204
            job = queue.cancel(_engine(), job.id, client_identity())
        except SQLAlchemyError:
            abort(503, message=UNAVAILABLE)
        if job.state == queue.CANCELLED:
            _files().remove(job.id)
        return _shown(job), 202


def _finished_file(job_id, name):
    """The succeeded job and its file ``name`` to read (None if it has none)."""
    job = _own(job_id)
    if job.state != queue.SUCCEEDED:
        abort(409, message=f"The job is {job.state}; its result is there once "
                           "it has succeeded.")
    try:
        return job, _files().open(job.id, name)
    except FileNotFoundError:
        return job, None


@blp.route("/jobs/<job_id>/result")
class JobResult(MethodView):
    @blp.response(200, {"type": "string"}, content_type="text/csv")
    @blp.alt_response(404, description="No such job of yours.")
    @blp.alt_response(409, description="The job has not succeeded (yet).")
    def get(self, job_id):
        """The job's estimates, as CSV (streamed)"""
        job, file = _finished_file(job_id, RESULT)
        if file is None:  # deleted meanwhile
            abort(404, message="No such job of yours.")
        return send_file(file, mimetype="text/csv", as_attachment=True,
                         download_name=f"estimates-{job.id}.csv")


@blp.route("/jobs/<job_id>/errors")
class JobErrors(MethodView):
    @blp.response(200, {"type": "string"}, content_type="text/csv")
    @blp.alt_response(404, description="No such job of yours.")
    @blp.alt_response(409, description="The job has not succeeded (yet).")
    def get(self, job_id):
        """The rows the job refused and why, as CSV (streamed)"""
        job, file = _finished_file(job_id, ERRORS)
        name = f"refused-{job.id}.csv"
        if file is None:  # none refused: just the header
            return current_app.response_class(
                ",".join(ERROR_COLUMNS) + "\n", mimetype="text/csv",
                headers={"Content-Disposition": f"attachment; filename={name}"})
        return send_file(file, mimetype="text/csv", as_attachment=True,
                         download_name=name)
