"""A rollout's requests and answers (``/admin/rollout``)."""
from marshmallow import RAISE, Schema, fields, validate


class RolloutRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    version = fields.String(required=True, metadata={
        "description": "The challenger: a stored version, not the active one."})
    mode = fields.String(required=True, validate=validate.OneOf(
        ["shadow", "canary"]), metadata={
        "description": "shadow: both versions estimate, clients see the active "
                       "version's answers; canary: `share` of the clients get "
                       "the challenger's."})
    share = fields.Float(validate=validate.Range(min=0, max=1, min_inclusive=False),
                         metadata={"description": "The canary's share of "
                                                  "clients (required for one)."})


class RolloutShareSchema(Schema):
    class Meta:
        unknown = RAISE

    share = fields.Float(required=True, validate=validate.Range(
        min=0, max=1, min_inclusive=False), metadata={
        "description": "The canary's new share of clients."})


class RolloutSchema(Schema):
    id = fields.String()
    challenger = fields.String()
    champion = fields.String()
    mode = fields.String()
    share = fields.Float()
    started_at = fields.String()


class RolloutStartedSchema(Schema):
    rollout = fields.Nested(RolloutSchema)
    reload = fields.String(
        metadata={"description": "rolling (Gunicorn) or in-process (dev server)."})
    message = fields.String()


class PairedDifferenceSchema(Schema):
    difference = fields.Float(metadata={
        "description": "Challenger minus champion, mean over the homes."})
    low = fields.Float(metadata={"description": "Bootstrap 95% interval, low."})
    high = fields.Float(metadata={"description": "Bootstrap 95% interval, high."})


class LiveErrorsSchema(Schema):
    mae = fields.Float()
    mape = fields.Float()


class PairedSalesSchema(Schema):
    n = fields.Integer(metadata={"description": "Homes with a reported sale "
                                                "that both versions priced."})
    champion = fields.Nested(LiveErrorsSchema, allow_none=True)
    challenger = fields.Nested(LiveErrorsSchema, allow_none=True)
    mae = fields.Nested(PairedDifferenceSchema, allow_none=True)
    mape = fields.Nested(PairedDifferenceSchema, allow_none=True)


class PriceRatioSchema(Schema):
    n = fields.Integer(metadata={"description": "Homes both versions priced."})
    sampled = fields.Integer(metadata={
        "description": "The most recent of them the figures rest on."})
    mean = fields.Float()
    quantiles = fields.Dict(keys=fields.String(), values=fields.Float(), metadata={
        "description": "p5, p25, p50, p75 and p95 of the challenger's price "
                       "over the champion's."})


class FeatureIndexSchema(Schema):
    name = fields.String()
    rows = fields.Integer()
    psi = fields.Float(allow_none=True)
    verdict = fields.String()


class ChallengerDriftSchema(Schema):
    rows = fields.Integer(metadata={"description": "The challenger's estimates "
                                                   "since the rollout began."})
    verdict = fields.String(metadata={"description": "The worst feature's."})
    features = fields.List(fields.Nested(FeatureIndexSchema), metadata={
        "description": "Each input's and the price's population stability index "
                       "against the challenger's training data (bins: "
                       "GET /v1/model/drift?version=...)."})


class AutoAbortSchema(Schema):
    enabled = fields.Boolean(metadata={"description": "ROLLOUT_AUTO_ABORT."})
    margin = fields.Float(metadata={"description": "MAPE points, as a fraction."})
    min_sales = fields.Integer()
    due = fields.String(allow_none=True, metadata={
        "description": "Why the canary ends at the next check, or null."})


class JudgementSchema(Schema):
    sales = fields.Nested(PairedSalesSchema, metadata={
        "description": "On the homes with a reported sale, both versions' MAE "
                       "and MAPE and the paired difference (challenger minus "
                       "champion, below zero the challenger is better) with "
                       "its bootstrap 95% interval."})
    price_ratio = fields.Nested(PriceRatioSchema, metadata={
        "description": "The challenger's price over the champion's on every "
                       "home both priced."})
    challenger_drift = fields.Nested(
        ChallengerDriftSchema, allow_none=True, metadata={
            "description": "Null when the challenger has no training "
                           "distribution."})
    auto_abort = fields.Nested(AutoAbortSchema)


class EndedRolloutSchema(Schema):
    rollout = fields.Nested(RolloutSchema)
    ended_at = fields.String()
    outcome = fields.String(metadata={
        "description": "promoted, aborted, aborted automatically, or superseded "
                       "(another version was activated)."})
    reason = fields.String(allow_none=True)


class RolloutStatusSchema(Schema):
    rollout = fields.Nested(RolloutSchema, allow_none=True)
    judgement = fields.Nested(JudgementSchema, allow_none=True)
    last_ended = fields.Nested(EndedRolloutSchema, allow_none=True, metadata={
        "description": "The last rollout that ended, and how."})
