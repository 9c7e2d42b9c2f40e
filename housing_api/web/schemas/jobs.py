"""Scoring jobs (``/v1/jobs``): the submit query and a job's status."""
from marshmallow import RAISE, Schema, fields


class JobQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    version = fields.String(metadata={
        "description": "A stored version [default: the active one when the "
                       "job starts]."})
    explain = fields.Boolean(load_default=False, metadata={
        "description": "Add each estimate's explanation and comparable sales "
                       "(JSON columns; milliseconds per home)."})


class ScoringJobSchema(Schema):
    id = fields.String()
    state = fields.String(metadata={
        "description": "queued, running, succeeded, failed or cancelled."})
    version = fields.String(allow_none=True, metadata={
        "description": "The version asked for (null: the active one)."})
    model_version = fields.String(allow_none=True, metadata={
        "description": "The version making the estimates, once started."})
    explain = fields.Boolean()
    upload_bytes = fields.Integer()
    rows_total = fields.Integer(allow_none=True, metadata={
        "description": "Rows in the file, once a job process has read it."})
    rows_done = fields.Integer(metadata={"description": "Rows read so far."})
    rows_failed = fields.Integer(metadata={
        "description": "Rows refused so far (`errors` says why)."})
    attempts = fields.Integer(metadata={
        "description": "Times a job process started it (more than 1: a process "
                       "stopped and another started it over)."})
    cancel_requested = fields.Boolean()
    error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(metadata={
        "description": "The job and its files are deleted after this."})
    seconds = fields.Float(allow_none=True, metadata={
        "description": "From start to finish (or to now, while running)."})
    links = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "`self`; `result` and `errors` once it has succeeded."})


class ScoringJobListSchema(Schema):
    jobs = fields.List(fields.Nested(ScoringJobSchema))
