"""Price estimates: single homes, minimal inputs, batches and CSV."""
import logging

from flask import current_app, g, jsonify, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError

from ..inference.columns import records_to_columns
from ..inference.explain import ExplanationUnavailable
from ..inference.market import OutOfRangeError
from . import keys, prediction_log
from .api import Blueprint
from .csv_homes import CsvProblem, read_csv_rows
from .schemas.explain import EXPLAINED_EXAMPLE
from .schemas import (
    BatchPredictionSchema, BatchSchema, EstimateQuerySchema, HomeSchema,
    MinimalHomeSchema, PredictionSchema,
)

blp = Blueprint(
    "predict", __name__, url_prefix="/v1",
    description="Price estimates for homes about to be sold.",
)
blp.document_security(keys.security)
blp.document_errors({
    401: "No API key while keys are required, or an unknown key "
         "(`WWW-Authenticate` says which).",
    403: "A revoked key, or a key without the scope this operation needs.",
})
blp.document_errors({429: "Too many requests from this client; see Retry-After.",
                     503: "No model version is loaded yet."})
blp.document_errors({400: "The body is not valid JSON (or the CSV not UTF-8).",
                     413: "The body is larger than the service accepts.",
                     415: "The body has a content type the operation does not "
                          "take."}, methods=("post",))

log = logging.getLogger(__name__)

JSON = "application/json"
CSV_TYPES = ("text/csv", "multipart/form-data")
_HOME = HomeSchema()
_HOMES = HomeSchema(many=True)
_BATCH = BatchSchema()


def active_predictor():
    """Return the loaded predictor, or answer 503 while there is none."""
    predictor = current_app.extensions["housing"].predictor
    if predictor is None:
        abort(503, message="No model version is loaded yet; see /health/ready.")
    return predictor


def client_identity() -> str:
    """Who is asking, for a canary: the API key if one was sent, else the
    client's address."""
    key = g.get("api_key")
    return f"key:{key.id}" if key is not None else f"address:{request.remote_addr}"


def answering_predictor():
    """The predictor that answers this client: a canary's challenger for its
    share of clients, the active version otherwise; 503 while none."""
    active_predictor()
    return current_app.extensions["housing"].answering(client_identity())


@blp.before_request
def check_content_type():
    if request.method != "POST":
        return
    allowed = {"predict.Batch": (JSON, *CSV_TYPES),
               "predict.Jobs": CSV_TYPES}.get(request.endpoint, (JSON,))
    if request.mimetype not in allowed:
        abort(415, message=f"Send the body as {' or '.join(allowed)}.")


def unknown_zipcode(zipcode) -> list[str]:
    """The error of a zipcode with no demographics (the API's and the
    scoring command's)."""
    return [f"Unknown zipcode {zipcode!r}: GET /v1/zipcodes lists the zipcodes "
            "the service knows."]


def _reject_unknown_zipcodes(predictor, records, *path, many=True):
    """Answer 422 naming every home whose zipcode has no demographics."""
    known = predictor.demographics
    errors = {i: {"zipcode": unknown_zipcode(r["zipcode"])}
              for i, r in enumerate(records) if r["zipcode"] not in known}
    if errors:
        nested = errors if many else errors[0]
        for key in reversed(path):
            nested = {key: nested}
        abort(422, message="Unknown zipcode.", errors=nested)


def _model_ref(predictor) -> dict:
    ref = {"name": predictor.name, "version": predictor.version}
    if predictor.variant is not None:
        ref["variant"] = predictor.variant
    return ref


#: Documents and parses ``?explain=true&k=5&as_of=2015-01-15``
#: (see EstimateQuerySchema).
estimate_query = blp.arguments(EstimateQuerySchema, location="query",
                               as_kwargs=True)


def _months(predictor, as_of, n):
    """One ``YYYY-MM`` per home for ``?as_of``, or None; a 422 outside the
    training months or for a version with no market index."""
    if as_of is None:
        return None
    if predictor.market is None:
        abort(422, message="The active model version does not estimate as of "
                           "a date.",
              errors={"query": {"as_of": [f"{predictor.name} has no market "
                                          "index; leave out as_of."]}})
    try:
        predictor.market.offset_on(as_of)
    except OutOfRangeError as exc:
        abort(422, message="as_of is outside the training sales' months.",
              errors={"query": {"as_of": [str(exc)]}})
    return [f"{as_of.year:04d}-{as_of.month:02d}"] * n


def _explained(predictor, columns, price, k, months):
    try:
        return predictor.explain(columns, price, k, months)
    except ExplanationUnavailable:
        abort(422, message="The active model version cannot be explained.",
              errors={"query": {"explain": [
                  f"{predictor.name} has no explanation method."]}})


def estimate(predictor, records, explain=False, k=None, as_of=None
             ) -> tuple[list[dict], str | None]:
    """The estimates of ``records`` and the month whose market level they
    are at (None for a version without one); with ``explain``, why (``k``
    comparables); with ``as_of`` (a date), at that month's level."""
    columns = records_to_columns(records)
    months = _months(predictor, as_of, len(records))
    result = predictor.predict(columns, months)
    details = (_explained(predictor, columns, result.price, k, months)
               if explain else None)
    current_app.extensions["housing_metrics"].observe_predictions(
        request.endpoint, predictor.version, columns, result.price)
    estimates = [
        {
            "prediction": round(float(price), 2),
            "interval": {"lower": round(float(lo), 2), "upper": round(float(hi), 2),
                         "level": result.level},
            "warnings": warnings,
        }
        for price, lo, hi, warnings in zip(
            result.price, result.lower, result.upper, result.warnings
        )
    ]
    if details is not None:
        for estimate, detail in zip(estimates, details):
            estimate.update(detail)
    g.estimates = len(estimates)  # for the key's usage
    asked = months[0] if months else None
    ids = prediction_log.record(predictor, records, result, as_of=asked)
    if ids is not None:
        for estimate, prediction_id in zip(estimates, ids):
            estimate["prediction_id"] = prediction_id
        _counterpart(predictor, records, columns, months, ids)
    return estimates, result.as_of[0] if result.as_of else None


def _counterpart(predictor, records, columns, months, ids) -> None:
    """During a rollout, estimate the same homes with the other version
    (``ModelState.counterpart``) and log them linked to the answered ones.
    The client never sees them, and nothing the other version does can fail
    the request."""
    other = current_app.extensions["housing"].counterpart(predictor)
    if other is None:
        return
    if not set(other.inputs) <= set(columns):
        return  # a version that needs inputs this request did not send
    if months is not None and other.market is None:
        return  # as_of asked; that version has no notion of time
    try:
        result = other.predict({name: columns[name] for name in other.inputs},
                               months)
    except Exception:
        log.exception("the rollout's estimate by %s failed", other.version)
        return
    prediction_log.record(other, records, result, answered_ids=ids,
                          as_of=months[0] if months else None)


def _answer(predictor, as_of, **body):
    """The common part of every estimate answer, around ``body``."""
    answer = {**body, "currency": "USD", "model": _model_ref(predictor),
              "request_id": g.request_id}
    if as_of is not None:
        answer["as_of"] = as_of
    # jsonify directly: the body is already in the response schema's shape,
    # and dumping it through marshmallow again would double a request's cost.
    return jsonify(answer)


def _single(predictor, home, explain, k, as_of):
    _reject_unknown_zipcodes(predictor, [home], "json", many=False)
    estimates, month = estimate(predictor, [home], explain, k, as_of)
    return _answer(predictor, month, **estimates[0])


@blp.route("/predict")
class Predict(MethodView):
    @blp.arguments(HomeSchema, example={
        "bedrooms": 4, "bathrooms": 1.0, "sqft_living": 1680, "sqft_lot": 5043,
        "floors": 1.5, "waterfront": 0, "view": 0, "condition": 4, "grade": 6,
        "sqft_above": 1680, "sqft_basement": 0, "yr_built": 1911,
        "yr_renovated": 0, "zipcode": "98118", "lat": 47.5354, "long": -122.273,
        "sqft_living15": 1560, "sqft_lot15": 5765,
    })
    @estimate_query
    @blp.response(200, PredictionSchema, example=EXPLAINED_EXAMPLE)
    @blp.alt_response(422, description="A field or query parameter is invalid, "
                                       "or the zipcode unknown; `errors` names "
                                       "each one.")
    @blp.alt_response(503, description="No model version is loaded yet.")
    def post(self, home, explain, k, as_of):
        """Estimate the sale price of one home

        Send the 18 columns of `future_unseen_examples.csv`; the service adds
        the zipcode's demographics itself. The answer carries the price in
        USD, an 80% interval, the model version that made it, and warnings
        for inputs outside the range seen in training. With `explain=true`
        it also says why (`explanation`: a baseline and each input's effect
        in dollars, adding up to the price to the cent; for the reference
        k-NN, the 5 sales it averaged) and lists the `k` most similar sales
        of the training data (`comparables`); see docs/explanations.md.
        """
        return _single(answering_predictor(), home, explain, k, as_of)


@blp.route("/predict/minimal")
class PredictMinimal(MethodView):
    @blp.arguments(MinimalHomeSchema(partial=True), example={
        "bedrooms": 4, "bathrooms": 1.0, "sqft_living": 1680, "sqft_lot": 5043,
        "floors": 1.5, "sqft_above": 1680, "sqft_basement": 0, "zipcode": "98118",
    })
    @estimate_query
    @blp.response(200, PredictionSchema)
    @blp.alt_response(422, description="A field is missing, not used by the "
                                       "active model, or invalid; or a query "
                                       "parameter is invalid.")
    @blp.alt_response(503, description="No model version is loaded yet.")
    def post(self, home, explain, k, as_of):
        """Estimate a price from the 7 sales columns and the zipcode

        The fields are those `GET /v1/features` lists under `minimal`: the
        7 sales columns and the zipcode. A version that needs more (the
        boosted model reads all 18) answers with its minimal companion,
        trained in the same run on just these inputs, and says so
        (`model.variant: "minimal"`); its own holdout metrics and interval
        are under `minimal_model` in `GET /v1/features`. Every field is
        required; any other field is rejected. `explain=true` and `as_of`
        work as on `POST /v1/predict`.
        """
        predictor = minimal_predictor(answering_predictor())
        inputs = predictor.inputs
        errors = {name: ["Unknown field."] for name in home if name not in inputs}
        errors.update({name: ["Missing data for required field."]
                       for name in inputs if name not in home})
        if errors:
            abort(422, message="The fields do not match the active model's "
                               "minimal contract (GET /v1/features).",
                  errors={"json": errors})
        return _single(predictor, home, explain, k, as_of)


def minimal_predictor(predictor):
    """What answers minimal homes: the version's companion, or itself."""
    return predictor.minimal if predictor.minimal is not None else predictor


def _load_batch_json():
    body = blp.ARGUMENTS_PARSER.load_body(request)
    limit = current_app.config["MAX_BATCH_ROWS"]
    instances = body.get("instances") if isinstance(body, dict) else None
    if isinstance(instances, list) and len(instances) > limit:
        abort(422, message=f"At most {limit} homes per batch.",
              errors={"json": {"instances": [f"Longer than maximum length {limit}."]}})
    if isinstance(body, dict) and body.keys() == {"instances"} and instances:
        records = _HOME.fast_load_many(instances)
        if records is not None:
            return records, ("json", "instances")
    try:
        return _BATCH.load(body)["instances"], ("json", "instances")
    except ValidationError as exc:
        abort(422, message="Invalid homes in the batch; errors are keyed by "
                           "row index (from 0).", errors={"json": exc.messages})


def _load_batch_csv():
    if request.mimetype == "text/csv":
        raw = request.get_data()
    elif "file" in request.files:
        raw = request.files["file"].read()
    else:
        abort(422, message="Upload the CSV as the multipart field 'file'.",
              errors={"files": {"file": ["Missing data for required field."]}})
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        abort(400, message="The CSV is not UTF-8 text.")
    try:
        rows = read_csv_rows(text, current_app.config["MAX_BATCH_ROWS"])
    except CsvProblem as exc:
        abort(422, message=exc.message, errors={"csv": exc.errors})
    records = _HOME.fast_load_many(rows)
    if records is not None:
        return records, ("csv",)
    try:
        return _HOMES.load(rows), ("csv",)
    except ValidationError as exc:
        abort(422, message="Invalid homes in the CSV; errors are keyed by row "
                           "index (0 is the first row after the header).",
              errors={"csv": exc.messages})


@blp.route("/predict/batch")
class Batch(MethodView):
    @blp.doc(requestBody={
        "required": True,
        "content": {
            JSON: {"schema": BatchSchema},
            "text/csv": {"schema": {"type": "string"}, "example": (
                "bedrooms,bathrooms,sqft_living,sqft_lot,floors,waterfront,view,"
                "condition,grade,sqft_above,sqft_basement,yr_built,yr_renovated,"
                "zipcode,lat,long,sqft_living15,sqft_lot15\n"
                "4,1.0,1680,5043,1.5,0,0,4,6,1680,0,1911,0,98118,47.5354,"
                "-122.273,1560,5765\n")},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }},
        },
    })
    @estimate_query
    @blp.response(200, BatchPredictionSchema)
    @blp.alt_response(422, description="A row is invalid (`errors` is keyed by "
                                       "row index), a query parameter is "
                                       "invalid, or the batch too long. "
                                       "Nothing is predicted.")
    @blp.alt_response(503, description="No model version is loaded yet.")
    def post(self, explain, k, as_of):
        """Estimate prices for many homes at once

        Send `{"instances": [home, ...]}` as JSON, or the rows of a CSV with
        the header of `future_unseen_examples.csv`, either as a `text/csv`
        body or as the multipart field `file`. All homes are predicted in one
        call; one invalid row rejects the whole batch with errors keyed by
        its row index (from 0). With `explain=true` (at most 1,000 homes),
        every estimate says why, as on `POST /v1/predict`.
        """
        predictor = answering_predictor()
        if request.mimetype == JSON:
            records, path = _load_batch_json()
        else:
            records, path = _load_batch_csv()
        limit = current_app.config["MAX_EXPLAINED_ROWS"]
        if explain and len(records) > limit:
            rows = "instances" if path[0] == "json" else "rows"
            abort(422, message=f"At most {limit} homes per batch with "
                               "explain=true; split the batch.",
                  errors={path[0]: {rows: [
                      f"Longer than maximum length {limit} with explain=true."]}})
        _reject_unknown_zipcodes(predictor, records, *path)
        estimates, month = estimate(predictor, records, explain, k, as_of)
        return _answer(predictor, month, predictions=estimates,
                       count=len(records))
