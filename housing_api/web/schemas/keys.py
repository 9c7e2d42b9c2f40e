"""The admin API's keys: what is asked to make one, and what is shown of it."""
from limits import parse_many
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ...keys import SCOPES


def _valid_quota(value: str) -> None:
    try:
        parse_many(value)
    except ValueError:
        raise ValidationError(
            "Not a rate limit: write e.g. '100 per second' or "
            "'10 per second; 1000 per hour'.") from None


class KeyCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(1, 100),
                         metadata={"description": "Who holds the key.",
                                   "example": "agents-app"})
    scopes = fields.List(
        fields.String(validate=validate.OneOf(SCOPES)), required=True,
        validate=validate.Length(1, len(SCOPES)),
        metadata={"description": "What the key may do: predict (/v1/predict*), "
                                 "sales (/v1/sales and the monitoring reads), "
                                 "admin (/admin)."})
    quota = fields.String(
        load_default=None, allow_none=True,
        validate=[validate.Length(1, 200), _valid_quota],
        metadata={"description": "Its rate limit in flask-limiter notation; "
                                 "absent: API_KEY_QUOTA.",
                  "example": "100 per second"})


class KeyRotateSchema(Schema):
    class Meta:
        unknown = RAISE

    old_key_valid_for = fields.Integer(
        load_default=0, strict=True, validate=validate.Range(0, 30 * 24 * 3600),
        metadata={"description": "Seconds the old key keeps working, so that "
                                 "its holder can switch (0: refused at once)."})


class KeySchema(Schema):
    id = fields.String(metadata={"description": "Names the key in /admin/keys/<id>."})
    prefix = fields.String(metadata={"description": "The key's first characters, "
                                                    "as in the logs."})
    name = fields.String()
    scopes = fields.List(fields.String())
    quota = fields.String(allow_none=True,
                          metadata={"description": "null: API_KEY_QUOTA."})
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(
        allow_none=True, metadata={"description": "To the minute or so."})
    revoked_at = fields.DateTime(
        allow_none=True, metadata={"description": "Refused from then on (a "
                                                  "rotation may set it ahead)."})
    revoked = fields.Boolean()
    replaced_by = fields.String(allow_none=True,
                                metadata={"description": "The key a rotation "
                                                         "issued in its place."})


class KeyCreatedSchema(KeySchema):
    key = fields.String(metadata={"description": "The secret: shown this once, "
                                                 "stored only as a hash."})


class KeyRotatedSchema(KeyCreatedSchema):
    replaces = fields.Nested(KeySchema, metadata={"description": "The old key."})


class KeyListSchema(Schema):
    keys = fields.List(fields.Nested(KeySchema))


class UsageQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    days = fields.Integer(load_default=30, validate=validate.Range(1, 3660),
                          metadata={"description": "The last this many UTC days, "
                                                   "today included."})


class UsageDaySchema(Schema):
    day = fields.Date()
    requests = fields.Integer()
    estimates = fields.Integer(metadata={"description": "Homes priced."})


class UsageSchema(Schema):
    key = fields.Nested(KeySchema)
    days = fields.List(fields.Nested(UsageDaySchema),
                       metadata={"description": "Days with any use, oldest first; "
                                                "up to the last few seconds."})
    requests = fields.Integer(metadata={"description": "Over these days."})
    estimates = fields.Integer()
