"""Fields that refuse what JSON clients get wrong, and document themselves."""
from datetime import date, datetime, time, timezone

from marshmallow import ValidationError, fields, validate

MIN_YEAR = 1800


def max_year() -> int:
    """Next year: the latest year a home can be built or renovated."""
    return date.today().year + 1


class Number(fields.Float):
    """A JSON number: strings, booleans, NaN and infinities are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, (str, bool)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class WholeNumber(fields.Integer):
    """A JSON integer; 3.0 is accepted as 3, 3.5 and "3" are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, (str, bool)) or (
            isinstance(value, float) and not value.is_integer()
        ):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """A JSON true or false; 0, 1 and "yes" are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Zipcode(fields.String):
    """A 5-digit US zipcode, as a string or an integer; always a string."""

    OPENAPI = {"oneOf": [{"type": "string", "pattern": "^[0-9]{5}$"},
                         {"type": "integer", "minimum": 0, "maximum": 99999}]}

    default_error_messages = {"invalid": "Not a 5-digit zipcode."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:05d}" if 0 <= value <= 99999 else str(value)
        value = super()._deserialize(value, attr, data, **kwargs)
        if len(value) != 5 or not value.isascii() or not value.isdigit():
            raise self.make_error("invalid")
        return value


def openapi_property(converter, field, ret, **kwargs):
    """apispec attribute function: fields that document themselves."""
    own = getattr(field, "OPENAPI", None)
    if own is not None:
        ret.pop("type", None)
        ret.update(own)
    return ret


def ranged(cls, lo, hi, description, example, **kwargs):
    """A required field of ``cls`` between ``lo`` and ``hi``, documented."""
    return cls(
        required=True,
        validate=validate.Range(min=lo, max=hi, **kwargs),
        metadata={"description": description, "example": example},
    )


class Year(WholeNumber):
    """A year, from 0 up to next year (checked when validating)."""

    def _validated(self, value):
        value = super()._validated(value)
        if value is not None and value < 0:
            raise ValidationError("Must be greater than or equal to 0.")
        if value is not None and value > max_year():
            raise ValidationError(f"Must be at most {max_year()}.")
        return value


def year_field(description, example, minimum):
    """A required year, documented from ``minimum`` to next year."""
    # Bounds for the OpenAPI document; validation checks them on each call.
    return Year(required=True,
                metadata={"description": description, "example": example,
                          "minimum": minimum, "maximum": max_year()})


class Moment(fields.Field):
    """A day (``2026-11-30``, its start) or an ISO 8601 time, as a UTC datetime."""

    OPENAPI = {"type": "string", "format": "date-time",
               "example": "2026-11-30T00:00:00Z"}
    default_error_messages = {"invalid": "Not a date (YYYY-MM-DD) or an ISO 8601 "
                                         "date and time."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            if len(value) == 10:
                moment = datetime.combine(date.fromisoformat(value), time())
            else:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise self.make_error("invalid") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.isoformat()
