"""What the predict and health endpoints answer."""
from marshmallow import Schema, fields

from .explain import ExplanationSchema, ComparableSchema


class IntervalSchema(Schema):
    lower = fields.Float(metadata={"description": "Lower bound, USD."})
    upper = fields.Float(metadata={"description": "Upper bound, USD."})
    level = fields.Float(
        metadata={"description": "Share of sales expected inside, e.g. 0.8."}
    )


class ModelRefSchema(Schema):
    name = fields.String(metadata={"example": "reference-knn"})
    version = fields.String(
        metadata={"example": "20261123-181512-123456-reference-knn"}
    )
    variant = fields.String(metadata={
        "description": "`minimal` when the version's minimal companion made "
                       "the estimate (POST /v1/predict/minimal); absent "
                       "otherwise.",
        "example": "minimal"})


class EstimateSchema(Schema):
    prediction_id = fields.String(metadata={
        "description": "Quote it in POST /v1/sales once the home has sold "
                       "(absent when the prediction log is off).",
        "example": "5f0c8d2a3b1e4f6a9c7d2e1b0a3f4c5d"})
    prediction = fields.Float(metadata={"description": "Estimated price, USD."})
    interval = fields.Nested(IntervalSchema)
    warnings = fields.List(
        fields.String(),
        metadata={"description": "Inputs outside the range seen in training."},
    )
    explanation = fields.Nested(ExplanationSchema, metadata={
        "description": "With explain=true: why this price."})
    comparables = fields.List(
        fields.Nested(ComparableSchema), allow_none=True,
        metadata={"description": "With explain=true: the k training sales most "
                                 "like the home, most similar first; null for a "
                                 "version stored without its sales."})


class PredictionSchema(EstimateSchema):
    currency = fields.String(metadata={"example": "USD"})
    as_of = fields.String(metadata={
        "description": "The month (YYYY-MM) whose market level the estimates "
                       "are at: the query's `as_of`, or else the latest month "
                       "of the training sales. Absent for a version with no "
                       "notion of time.",
        "example": "2015-05"})
    model = fields.Nested(ModelRefSchema)
    request_id = fields.String()


class BatchPredictionSchema(Schema):
    predictions = fields.List(fields.Nested(EstimateSchema))
    count = fields.Integer()
    currency = fields.String(metadata={"example": "USD"})
    as_of = fields.String(metadata={
        "description": "The month (YYYY-MM) whose market level the estimates "
                       "are at: the query's `as_of`, or else the latest month "
                       "of the training sales. Absent for a version with no "
                       "notion of time.",
        "example": "2015-05"})
    model = fields.Nested(ModelRefSchema)
    request_id = fields.String()


class FieldSpecSchema(Schema):
    name = fields.String()
    type = fields.String()
    required = fields.Boolean()
    minimum = fields.Float(allow_none=True)
    maximum = fields.Float(allow_none=True)
    description = fields.String()


class MinimalModelSchema(Schema):
    """The minimal companion of a version that needs more than its inputs."""

    model = fields.Nested(ModelRefSchema)
    features = fields.List(fields.String())
    metrics = fields.Dict(metadata={"description": "Its own holdout metrics."})
    interval = fields.Dict()
    interval_as_of = fields.Dict()
    interval_adaptation = fields.Dict(metadata={
        "description": "How far the sales reported since have moved each "
                       "band's bounds of `interval` (log ratios: `lower` "
                       "and `upper`, positive wider), on how many `sales`, "
                       "by `step` per sale outside."})


class FeaturesSchema(Schema):
    full = fields.List(fields.Nested(FieldSpecSchema))
    minimal = fields.List(fields.Nested(FieldSpecSchema))
    model_features = fields.List(fields.String())
    model = fields.Nested(ModelRefSchema)
    minimal_model = fields.Nested(MinimalModelSchema)


class ZipcodesSchema(Schema):
    zipcodes = fields.List(fields.String())
    count = fields.Integer()
    model = fields.Nested(ModelRefSchema)


class ModelInfoSchema(Schema):
    """A model version's metadata."""

    version = fields.String()
    name = fields.String()
    algorithm = fields.String()
    feature_set = fields.String()
    features = fields.List(fields.String())
    inputs = fields.List(fields.String())
    metrics = fields.Dict()
    interval = fields.Dict(metadata={
        "description": "The 80% interval of estimates \"now\" (no as_of)."})
    interval_as_of = fields.Dict(metadata={
        "description": "The interval of estimates as of a month in training."})
    interval_adaptation = fields.Dict(metadata={
        "description": "How far the sales reported since have moved each "
                       "band's bounds of `interval` (log ratios: `lower` "
                       "and `upper`, positive wider), on how many `sales`, "
                       "by `step` per sale outside."})
    market_index = fields.Dict(metadata={
        "description": "Log market level per month relative to the latest."})
    companions = fields.Dict(metadata={
        "description": "`minimal`: the companion model that answers "
                       "POST /v1/predict/minimal, with its own metrics."})
    input_ranges = fields.Dict()
    artifact = fields.Dict()
    library_versions = fields.Dict()
    training_data_sha256 = fields.String()
    demographics_sha256 = fields.String()
    created_at = fields.String()
    hyperparameters = fields.Dict()
    trainer = fields.String(
        metadata={"description": "Training algorithm (housing-api train "
                                 "--algorithm)."})


class ServedRolloutSchema(Schema):
    id = fields.String()
    mode = fields.String(metadata={"example": "canary"})
    challenger = fields.String()
    share = fields.Float()


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})
    model = fields.Nested(ModelRefSchema, allow_none=True)
    rollout = fields.Nested(ServedRolloutSchema, allow_none=True, metadata={
        "description": "The rollout this process serves beside the model, or "
                       "null (readiness only)."})
