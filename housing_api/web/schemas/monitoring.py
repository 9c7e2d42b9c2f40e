"""Sales reported back, and the live accuracy measured on them."""
from datetime import datetime, timezone

from marshmallow import (
    RAISE, Schema, ValidationError, fields, validate, validates_schema,
)

from .fields import Moment, Number
from .responses import ModelRefSchema

#: Most sales accepted in one report.
MAX_SALES_ROWS = 10_000
GROUPINGS = ("week", "zipcode", "price_third")


def _not_in_the_future(value):
    if value > datetime.now(timezone.utc).date():
        raise ValidationError("Must not be in the future.")


class SaleSchema(Schema):
    """The price one home sold for, quoting the estimate's prediction_id."""

    class Meta:
        unknown = RAISE
        ordered = True

    prediction_id = fields.String(
        required=True, validate=validate.Regexp(
            r"^[0-9a-f]{32}$", error="Not a prediction_id (32 hex digits)."),
        metadata={"description": "From the estimate's answer.",
                  "example": "5f0c8d2a3b1e4f6a9c7d2e1b0a3f4c5d"})
    sale_price = Number(
        required=True,
        validate=validate.Range(min=0, min_inclusive=False, max=1e10),
        metadata={"description": "What the home sold for, USD.",
                  "example": 512000})
    sale_date = fields.Date(
        required=True, validate=_not_in_the_future,
        metadata={"description": "The day of the sale (YYYY-MM-DD), not in "
                                 "the future.", "example": "2026-11-30"})


class SalesSchema(Schema):
    """Sales reported together: all are stored, or none."""

    class Meta:
        unknown = RAISE

    sales = fields.List(
        fields.Nested(SaleSchema), required=True,
        validate=validate.Length(min=1, max=MAX_SALES_ROWS),
        metadata={"description": f"1 to {MAX_SALES_ROWS:,} sales."})


class SalesReceiptSchema(Schema):
    received = fields.Integer(metadata={"description": "Rows in the report."})
    recorded = fields.Integer(metadata={"description": "Sales stored now."})
    already_reported = fields.Integer(metadata={
        "description": "Sales stored before, with the same price and date."})
    request_id = fields.String()


class PerformanceQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    version = fields.String(metadata={
        "description": "A stored model version [default: the active one]."})
    since = fields.Date(metadata={"description": "First sale date counted."})
    until = fields.Date(metadata={"description": "Last sale date counted."})
    by = fields.String(validate=validate.OneOf(GROUPINGS), metadata={
        "description": "Group by week of sale, zipcode, or third of the "
                       "estimated price [default: no grouping]."})

    @validates_schema
    def check_range(self, data, **kwargs):
        if "since" in data and "until" in data and data["since"] > data["until"]:
            raise ValidationError("Must not be after until.", "since")


class LiveFiguresSchema(Schema):
    group = fields.String(allow_none=True, metadata={
        "description": "Monday of the week, zipcode, or price third; null "
                       "without grouping."})
    n = fields.Integer(metadata={"description": "Reported sales counted."})
    mae = fields.Float(metadata={"description": "Mean absolute error, USD."})
    rmse = fields.Float(metadata={"description": "Root mean squared error, USD."})
    mape = fields.Float(metadata={"description": "Mean absolute % error (0.1 = 10%)."})
    median_ape = fields.Float(metadata={"description": "Median absolute % error."})
    r2 = fields.Float(allow_none=True)
    bias = fields.Float(metadata={
        "description": "Mean signed % error: above 0, estimates too high."})
    coverage = fields.Float(metadata={
        "description": "Share of sales inside their estimate's interval."})
    first_sale = fields.String()
    last_sale = fields.String()
    price_range = fields.List(fields.Float(), metadata={
        "description": "Estimated prices of the third (by=price_third)."})


class PerformanceSchema(Schema):
    model = fields.Nested(ModelRefSchema)
    by = fields.String(allow_none=True)
    since = fields.Date(allow_none=True)
    until = fields.Date(allow_none=True)
    holdout = fields.Dict(metadata={
        "description": "The version's figures on its holdout split, at training."})
    live = fields.List(fields.Nested(LiveFiguresSchema))


class DriftQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    version = fields.String(metadata={
        "description": "A stored model version [default: the active one]."})
    since = Moment(metadata={"description": "First estimate counted (a day "
                                            "or a time, UTC by default)."})
    until = Moment(metadata={"description": "Last estimate counted."})

    @validates_schema
    def check_range(self, data, **kwargs):
        if "since" in data and "until" in data and data["since"] > data["until"]:
            raise ValidationError("Must not be after until.", "since")


class BinSchema(Schema):
    upper = fields.Float(allow_none=True, metadata={
        "description": "The bin's upper edge (included); null for the last."})
    training = fields.Float(metadata={"description": "Share in training."})
    live = fields.Float(allow_none=True, metadata={"description": "Share now."})


class FeatureDriftSchema(Schema):
    name = fields.String(metadata={"example": "sqft_living"})
    rows = fields.Integer(metadata={"description": "Recent estimates with it."})
    psi = fields.Float(allow_none=True, metadata={
        "description": "Population stability index against training."})
    verdict = fields.String(metadata={
        "description": "none (< 0.1), moderate (0.1 to 0.25), major (> 0.25); "
                       "too few rows (under 10 per bin) or no data."})
    bins = fields.List(fields.Nested(BinSchema), allow_none=True, metadata={
        "description": "Training deciles and the shares in each; null for the "
                       "zipcode."})


class DriftSchema(Schema):
    model = fields.Nested(ModelRefSchema)
    since = Moment(allow_none=True)
    until = Moment(allow_none=True)
    rows = fields.Integer(metadata={"description": "Recent estimates counted."})
    verdict = fields.String(metadata={"description": "The worst feature's."})
    features = fields.List(fields.Nested(FeatureDriftSchema), metadata={
        "description": "Each client input, then the predicted price."})
