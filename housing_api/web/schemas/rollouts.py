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


class RolloutStatusSchema(Schema):
    rollout = fields.Nested(RolloutSchema, allow_none=True)
    judgement = fields.Dict(allow_none=True, metadata={
        "description": "`price_ratio`: the challenger's price over the "
                       "champion's on every home both priced; `sales`: on the "
                       "homes with a reported sale, both versions' MAE and "
                       "MAPE and the paired difference (challenger minus "
                       "champion) with its bootstrap 95% interval."})
