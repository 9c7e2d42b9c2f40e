"""The admin API's requests and answers: versions, uploads, training jobs."""
from flask_smorest.fields import Upload
from marshmallow import RAISE, Schema, fields, validate

from .fields import StrictBoolean


class VersionSchema(Schema):
    version = fields.String()
    active = fields.Boolean()
    previous = fields.Boolean()
    metadata = fields.Dict()


class ModelListSchema(Schema):
    active = fields.String(allow_none=True)
    previous = fields.String(allow_none=True)
    loaded = fields.String(
        allow_none=True,
        metadata={"description": "Version loaded by the worker that answered."},
    )
    versions = fields.List(fields.Nested(VersionSchema))


class UploadSchema(Schema):
    artifact = Upload(required=True, metadata={"description": "A skops file."})
    metadata = Upload(required=True, metadata={"description": "metadata.json"})
    demographics = Upload(
        metadata={"description": "zipcode_demographics.csv used in training."}
    )


class ActivationSchema(Schema):
    version = fields.String()
    reload = fields.String(
        metadata={"description": "rolling (Gunicorn) or in-process (dev server)."}
    )
    message = fields.String()


class TrainRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    algorithm = fields.String(
        load_default="lightgbm", validate=validate.OneOf(["reference", "lightgbm"]),
        metadata={"description": "Which model to train."},
    )
    activate = StrictBoolean(
        load_default=False,
        metadata={"description": "Activate the new version if its holdout "
                                 "metrics are no worse than the active one's."},
    )


class ProgressSchema(Schema):
    step = fields.String(metadata={"description": "What the job is doing.",
                                   "example": "boosted model: the model, 5 "
                                              "nested folds and 4 forward "
                                              "origins for its intervals"})
    done = fields.Integer(metadata={"description": "Units of the step done."})
    total = fields.Integer(allow_none=True, metadata={
        "description": "Units in the step; null when it is not counted."})
    unit = fields.String()
    note = fields.String(allow_none=True, metadata={
        "description": "The last unit done (a fold, a cut-off...)."})
    seconds = fields.Float(metadata={"description": "Since the step began."})


class JobSchema(Schema):
    id = fields.String()
    state = fields.String(
        metadata={"description": "queued, running, succeeded or failed."}
    )
    algorithm = fields.String()
    activate = fields.Boolean()
    version = fields.String(allow_none=True)
    promoted = fields.Boolean(allow_none=True)
    reason = fields.String(allow_none=True)
    created_at = fields.String()
    finished_at = fields.String(allow_none=True)
    progress = fields.Nested(ProgressSchema, allow_none=True, metadata={
        "description": "The step running (or the last one), updated every few "
                       "seconds."})


class ModelUploadSchema(UploadSchema):
    context = Upload(metadata={
        "description": "Fitted state the model's feature set needs, if any "
                       "(the boosted model's neighbours.npz)."})
