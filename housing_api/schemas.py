"""The API contract: request and response schemas."""
from datetime import date

from flask_smorest.fields import Upload
from marshmallow import (
    RAISE, Schema, ValidationError, fields, validate, validates_schema,
)

MIN_YEAR = 1800
_INF = float("inf")


def _max_year() -> int:
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


def _field(cls, lo, hi, description, example, **kwargs):
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
        if value is not None and value > _max_year():
            raise ValidationError(f"Must be at most {_max_year()}.")
        return value


def _year(description, example, minimum):
    # Bounds for the OpenAPI document; validation checks them on each call.
    return Year(required=True,
                metadata={"description": description, "example": example,
                          "minimum": minimum, "maximum": _max_year()})


class HomeSchema(Schema):
    """A home about to be sold: the 18 columns of future_unseen_examples.csv."""

    class Meta:
        unknown = RAISE
        ordered = True

    bedrooms = _field(WholeNumber, 0, 50, "Number of bedrooms.", 4)
    bathrooms = _field(Number, 0, 25, "Bathrooms (0.25 steps: 0.75 = 3/4 bath).",
                       1.0)
    sqft_living = _field(WholeNumber, 1, 1_000_000,
                         "Interior living area, sq ft (above + basement).", 1680)
    sqft_lot = _field(WholeNumber, 1, 100_000_000, "Lot area, sq ft.", 5043)
    floors = _field(Number, 1, 10, "Number of floors (0.5 steps).", 1.5)
    waterfront = _field(WholeNumber, 0, 1, "1 if on the waterfront, else 0.", 0)
    view = _field(WholeNumber, 0, 4, "Quality of the view, 0 (none) to 4.", 0)
    condition = _field(WholeNumber, 1, 5, "Condition, 1 (poor) to 5.", 4)
    grade = _field(WholeNumber, 1, 13,
                   "King County building grade, 1 (poor) to 13.", 6)
    sqft_above = _field(WholeNumber, 1, 1_000_000,
                        "Living area above ground, sq ft.", 1680)
    sqft_basement = _field(WholeNumber, 0, 1_000_000,
                           "Living area below ground, sq ft.", 0)
    yr_built = _year(f"Year built ({MIN_YEAR} to next year).", 1911, MIN_YEAR)
    yr_renovated = _year("Year of the last renovation: 0 if never, else not "
                         "before yr_built.", 0, 0)
    zipcode = Zipcode(
        required=True,
        metadata={"description": "5-digit zipcode, one of GET /v1/zipcodes "
                                 "(an integer such as 98118 is accepted too).",
                  "example": "98118"},
    )
    lat = _field(Number, -90, 90, "Latitude, degrees.", 47.5354)
    long = _field(Number, -180, 180, "Longitude, degrees.", -122.273)
    sqft_living15 = _field(WholeNumber, 1, 1_000_000,
                           "Living area of the 15 nearest neighbours, sq ft.", 1560)
    sqft_lot15 = _field(WholeNumber, 1, 100_000_000,
                        "Lot area of the 15 nearest neighbours, sq ft.", 5765)

    @validates_schema
    def check_areas(self, data, **kwargs):
        parts = ("sqft_above", "sqft_basement", "sqft_living")
        if all(p in data for p in parts) and (
            data["sqft_above"] + data["sqft_basement"] != data["sqft_living"]
        ):
            raise ValidationError(
                "sqft_above + sqft_basement must equal sqft_living.", "sqft_living"
            )

    @validates_schema
    def check_years(self, data, **kwargs):
        built, renovated = data.get("yr_built"), data.get("yr_renovated")
        if built is not None and built < MIN_YEAR:
            raise ValidationError(f"Must be at least {MIN_YEAR}.", "yr_built")
        if built is not None and renovated and renovated < built:
            raise ValidationError(
                "Must be 0 (never renovated) or not before yr_built.", "yr_renovated"
            )

    def fast_load(self, data, partial=False, rules=None):
        """Return what ``load(data)`` returns when ``data`` is valid, else None.

        The hot path: a handful of type and range checks per field instead of
        marshmallow's machinery (about 20x faster). Anything it does not
        accept goes through ``load`` for the detailed errors; a property test
        holds the two to the same results. ``fast_load_many`` passes ``rules``
        once for all its homes.
        """
        if type(data) is not dict:
            return None
        if rules is None:
            rules = self._fast_rules()
        if not partial and len(data) != len(rules):
            return None
        out = {}
        for name, value in data.items():
            rule = rules.get(name)
            if rule is None:
                return None
            kind, lo, hi = rule
            vtype = type(value)
            if kind == "zipcode":
                if vtype is int and 0 <= value <= 99999:
                    value = f"{value:05d}"
                elif not (vtype is str and len(value) == 5 and value.isascii()
                          and value.isdigit()):
                    return None
            elif vtype is int or vtype is float:
                if kind == "int":
                    if vtype is float:
                        if not value.is_integer():
                            return None
                        value = int(value)
                elif vtype is int:
                    value = float(value)
                elif value != value or value in (_INF, -_INF):
                    return None
                if not lo <= value <= hi:
                    return None
            else:
                return None
            out[name] = value
        built = out.get("yr_built")
        if built is not None and built < MIN_YEAR:
            return None
        renovated = out.get("yr_renovated")
        if built is not None and renovated and renovated < built:
            return None
        if "sqft_living" in out and "sqft_above" in out and "sqft_basement" in out:
            if out["sqft_above"] + out["sqft_basement"] != out["sqft_living"]:
                return None
        return out

    def fast_load_many(self, rows) -> list | None:
        """``fast_load`` of every row, or None as soon as one is refused."""
        rules = self._fast_rules()
        homes = []
        for row in rows:
            home = self.fast_load(row, rules=rules)
            if home is None:
                return None
            homes.append(home)
        return homes

    def _fast_rules(self) -> dict:
        """(kind, min, max) per field, from the fields' own validators."""
        year = _max_year()
        if getattr(self, "_rules_year", None) != year:
            rules = {}
            for name, field in self.fields.items():
                if isinstance(field, Zipcode):
                    rules[name] = ("zipcode", None, None)
                elif isinstance(field, Year):
                    rules[name] = ("int", 0, year)
                else:
                    [bounds] = [v for v in field.validators
                                if isinstance(v, validate.Range)]
                    kind = "int" if isinstance(field, WholeNumber) else "float"
                    rules[name] = (kind, bounds.min, bounds.max)
            self._rules, self._rules_year = rules, year
        return self._rules


class MinimalHomeSchema(HomeSchema):
    """Only the columns the active model reads (see GET /v1/features)."""

    class Meta(HomeSchema.Meta):
        pass


class BatchSchema(Schema):
    """Many homes in one request, predicted together."""

    class Meta:
        unknown = RAISE

    instances = fields.List(
        fields.Nested(HomeSchema),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "The homes, up to the configured batch limit "
                                 "(10,000 by default)."},
    )


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


class EstimateSchema(Schema):
    prediction = fields.Float(metadata={"description": "Estimated price, USD."})
    interval = fields.Nested(IntervalSchema)
    warnings = fields.List(
        fields.String(),
        metadata={"description": "Inputs outside the range seen in training."},
    )


class PredictionSchema(EstimateSchema):
    currency = fields.String(metadata={"example": "USD"})
    model = fields.Nested(ModelRefSchema)
    request_id = fields.String()


class BatchPredictionSchema(Schema):
    predictions = fields.List(fields.Nested(EstimateSchema))
    count = fields.Integer()
    currency = fields.String(metadata={"example": "USD"})
    model = fields.Nested(ModelRefSchema)
    request_id = fields.String()


class FieldSpecSchema(Schema):
    name = fields.String()
    type = fields.String()
    required = fields.Boolean()
    minimum = fields.Float(allow_none=True)
    maximum = fields.Float(allow_none=True)
    description = fields.String()


class FeaturesSchema(Schema):
    full = fields.List(fields.Nested(FieldSpecSchema))
    minimal = fields.List(fields.Nested(FieldSpecSchema))
    model_features = fields.List(fields.String())
    model = fields.Nested(ModelRefSchema)


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
    interval = fields.Dict()
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


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})
    model = fields.Nested(ModelRefSchema, allow_none=True)


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


class ModelUploadSchema(UploadSchema):
    context = Upload(metadata={
        "description": "Fitted state the model's feature set needs, if any "
                       "(the boosted model's neighbours.npz)."})
