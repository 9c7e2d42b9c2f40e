"""What the service estimates with: the input contracts, the active
version's metadata (with how far reported sales have moved its interval)
and the zipcodes it knows. Routes of ``predict.blp``."""
from flask import current_app
from flask.views import MethodView

from .predict import _HOME, _model_ref, active_predictor, blp, minimal_predictor
from .schemas import FeaturesSchema, ModelInfoSchema, ZipcodesSchema


def _field_specs(names=None) -> list[dict]:
    rules = _HOME._fast_rules()
    return [
        {
            "name": name,
            "type": {"zipcode": "string", "int": "integer"}.get(kind, "number"),
            "required": True,
            "minimum": lo,
            "maximum": hi,
            "description": _HOME.fields[name].metadata.get("description", ""),
        }
        for name, (kind, lo, hi) in rules.items()
        if names is None or name in names
    ]


@blp.route("/features")
class Features(MethodView):
    @blp.response(200, FeaturesSchema)
    def get(self):
        """Describe the input contracts

        `full` is what `POST /v1/predict` takes, `minimal` what
        `POST /v1/predict/minimal` takes for the active model version, and
        `model_features` the features the model computes from them. For a
        version with a minimal companion, `minimal_model` describes it: its
        features, holdout metrics and intervals.
        """
        predictor = active_predictor()
        features = {"full": _field_specs(),
                    "minimal": _field_specs(minimal_predictor(predictor).inputs),
                    "model_features": predictor.metadata["features"],
                    "model": _model_ref(predictor)}
        if predictor.minimal is not None:
            companion = predictor.minimal.metadata
            features["minimal_model"] = {
                "model": _model_ref(predictor.minimal),
                **{key: companion[key] for key in (
                    "features", "metrics", "interval", "interval_as_of")},
                "interval_adaptation": _adaptation(predictor.minimal)}
        return features


def _adaptation(predictor) -> dict:
    """How far the sales reported so far have moved ``predictor``'s interval
    (``monitoring.adaptation``): log ratios per band, 0 where none did."""
    on = current_app.extensions.get("housing_adaptation") is not None
    return {"step": current_app.config["INTERVAL_ADAPTATION_STEP"] if on else 0.0,
            **predictor.moved.to_dict()}


@blp.route("/model")
class Model(MethodView):
    @blp.response(200, ModelInfoSchema)
    def get(self):
        """Describe the active model version, with its holdout metrics

        `interval_adaptation` says how far the sales reported for its
        estimates "now" have moved the bounds of each price band of
        `interval` (log ratios; positive: wider), and on how many sales.
        """
        predictor = active_predictor()
        return {**predictor.metadata,
                "interval_adaptation": _adaptation(predictor)}


@blp.route("/zipcodes")
class Zipcodes(MethodView):
    @blp.response(200, ZipcodesSchema)
    def get(self):
        """List the zipcodes the service has demographics for"""
        predictor = active_predictor()
        zipcodes = sorted(predictor.demographics.zipcodes)
        return {"zipcodes": zipcodes, "count": len(zipcodes),
                "model": _model_ref(predictor)}
