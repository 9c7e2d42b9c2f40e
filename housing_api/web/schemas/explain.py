"""The estimate query (why, as of when) and the explanation and comparables blocks."""
from marshmallow import (
    Schema, ValidationError, fields, post_load, validate, validates_schema,
)

from ...inference.columns import CLIENT_COLUMNS
from ...inference.comparables import DEFAULT_K, MAX_K
from ...inference.explain import MARKET
from ...inference.features.base import NEIGHBOURHOOD


class EstimateQuerySchema(Schema):
    """``?explain=true[&k=5]``: add an explanation and comparable sales;
    ``?as_of=2015-01-15``: estimate at that month's market level."""

    explain = fields.Boolean(load_default=False, metadata={
        "description": "Add `explanation` and `comparables` to each estimate "
                       "(at most 1,000 homes per batch)."})
    k = fields.Integer(validate=validate.Range(1, MAX_K), metadata={
        "description": f"How many comparable sales (default {DEFAULT_K}); only "
                       "with explain=true."})
    as_of = fields.Date(metadata={
        "description": "Estimate at the market level of this date's month, "
                       "which must lie within the months of the model's "
                       "training sales (`GET /v1/model`: `market_index`). "
                       "Without it the estimate is at the latest month's "
                       "level: \"now\" as far as the training data knows."})

    #: What an empty query string loads to, without marshmallow.
    EMPTY = {"explain": False, "k": DEFAULT_K, "as_of": None}

    @validates_schema
    def check_k(self, data, **kwargs):
        if "k" in data and not data["explain"]:
            raise ValidationError("Only with explain=true.", "k")

    @post_load
    def defaults(self, data, **kwargs):
        data.setdefault("k", DEFAULT_K)
        data.setdefault("as_of", None)
        return data


class ComparableSchema(Schema):
    """A sale from the model version's training data."""

    date = fields.String(metadata={"format": "date", "example": "2014-10-13",
                                   "description": "Date of sale."})
    price = fields.Float(metadata={"description": "Sale price, USD.",
                                   "example": 366350.0})
    price_per_sqft = fields.Float(metadata={
        "description": "Price per sq ft of living area, USD.", "example": 218.07})
    sqft_living = fields.Integer(metadata={"example": 1680})
    bedrooms = fields.Integer(metadata={"example": 4})
    bathrooms = fields.Float(metadata={"example": 1.0})
    grade = fields.Integer(metadata={"example": 6})
    yr_built = fields.Integer(metadata={"example": 1911})
    zipcode = fields.String(metadata={"example": "98118"})
    lat = fields.Float(metadata={"example": 47.5354})
    long = fields.Float(metadata={"example": -122.273})
    distance_km = fields.Float(allow_none=True, metadata={
        "description": "From the home, km; null when the home was sent "
                       "without lat and long.", "example": 0.224})
    similarity = fields.Float(metadata={
        "description": "1 / (1 + distance): 1 for a sale just like the home "
                       "(docs/explanations.md gives the distance).",
        "example": 0.714})


class NeighbourSchema(ComparableSchema):
    """A neighbour of a k-NN: a training sale and its share of the price.

    The sale's details are absent for a version stored without its sales.
    """

    weight = fields.Float(metadata={"description": "Its weight in the mean "
                                                   "(0.2 for 5 equal neighbours).",
                                    "example": 0.2})
    effect = fields.Float(metadata={"description": "weight x price, USD, in cents "
                                                   "that add up to the prediction.",
                                    "example": 73270.0})


class EffectSchema(Schema):
    input = fields.String(validate=validate.OneOf(
                              [*CLIENT_COLUMNS, NEIGHBOURHOOD, MARKET]),
                          metadata={"description": "A client column, "
                                    "`neighbourhood`: the zipcode's demographics, "
                                    "or `as_of`: the market's level in the "
                                    "`as_of` month against the latest.",
                                    "example": "sqft_living"})
    value = fields.Raw(metadata={"description": "The input as sent (the zipcode "
                                 "for `neighbourhood`).", "example": 1680})
    effect = fields.Float(metadata={"description": "What this input adds to the "
                                    "baseline, USD.", "example": -42849.12})


class ExplanationSchema(Schema):
    """baseline + every effect = the prediction, to the cent."""

    method = fields.String(
        validate=validate.OneOf(["tree-shap", "nearest-neighbours"]),
        metadata={"description": "`tree-shap` (the boosted model: `effects`) or "
                                 "`nearest-neighbours` (the k-NN: `neighbours`).",
                  "example": "tree-shap"})
    baseline = fields.Float(metadata={
        "description": "USD. tree-shap: the model's typical home, where every "
                       "effect starts; nearest-neighbours: 0.",
        "example": 464235.8})
    effects = fields.List(fields.Nested(EffectSchema), metadata={
        "description": "tree-shap only: one effect per input, largest first."})
    neighbours = fields.List(fields.Nested(NeighbourSchema), metadata={
        "description": "nearest-neighbours only: the sales whose mean is the "
                       "prediction."})


#: An answer of POST /v1/predict?explain=true&k=3 (the boosted model).
EXPLAINED_EXAMPLE = {
    "prediction": 327128.83,
    "interval": {
        "level": 0.8,
        "lower": 276263.06,
        "upper": 381825.2
    },
    "warnings": [],
    "explanation": {
        "method": "tree-shap",
        "baseline": 464235.8,
        "effects": [
            {"input": "sqft_living", "value": 1680, "effect": -42849.12},
            {"input": "grade", "value": 6, "effect": -41511.33},
            {"input": "long", "value": -122.273, "effect": -27656.07},
            {"input": "lat", "value": 47.5354, "effect": -25766.31},
            {"input": "condition", "value": 4, "effect": 15808.1},
            {"input": "sqft_basement", "value": 0, "effect": 7996.57},
            {"input": "sqft_living15", "value": 1560, "effect": -6882.67},
            {"input": "bathrooms", "value": 1.0, "effect": -4185.05},
            {"input": "neighbourhood", "value": "98118", "effect": 4049.85},
            {"input": "view", "value": 0, "effect": -3834.39},
            {"input": "sqft_lot", "value": 5043, "effect": -3639.64},
            {"input": "bedrooms", "value": 4, "effect": -3040.57},
            {"input": "sqft_above", "value": 1680, "effect": -2998.22},
            {"input": "yr_built", "value": 1911, "effect": -1750.76},
            {"input": "waterfront", "value": 0, "effect": -1056.87},
            {"input": "zipcode", "value": "98118", "effect": 830.38},
            {"input": "floors", "value": 1.5, "effect": -477.76},
            {"input": "yr_renovated", "value": 0, "effect": -424.09},
            {"input": "sqft_lot15", "value": 5765, "effect": 280.98}
        ]
    },
    "comparables": [
        {
            "date": "2015-03-24",
            "price": 366350.0,
            "price_per_sqft": 218.07,
            "sqft_living": 1680,
            "bedrooms": 4,
            "bathrooms": 1.0,
            "grade": 6,
            "yr_built": 1911,
            "zipcode": "98118",
            "lat": 47.5354,
            "long": -122.273,
            "distance_km": 0.0,
            "similarity": 1.0
        },
        {
            "date": "2014-10-13",
            "price": 194990.0,
            "price_per_sqft": 124.99,
            "sqft_living": 1560,
            "bedrooms": 6,
            "bathrooms": 2.5,
            "grade": 6,
            "yr_built": 1913,
            "zipcode": "98118",
            "lat": 47.5335,
            "long": -122.272,
            "distance_km": 0.224,
            "similarity": 0.714
        },
        {
            "date": "2015-05-08",
            "price": 370000.0,
            "price_per_sqft": 189.74,
            "sqft_living": 1950,
            "bedrooms": 4,
            "bathrooms": 2.0,
            "grade": 6,
            "yr_built": 1908,
            "zipcode": "98118",
            "lat": 47.5372,
            "long": -122.269,
            "distance_km": 0.361,
            "similarity": 0.5684
        }
    ],
    "prediction_id": "5f0c8d2a3b1e4f6a9c7d2e1b0a3f4c5d",
    "currency": "USD",
    "model": {
        "name": "lightgbm-neighbourhood",
        "version": "20261202-063545-577920-lightgbm-neighbourhood"
    },
    "request_id": "c53395232d3948709bf798545a190ad3"
}
