"""Sales reported back, and the live accuracy of each model version."""
from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import RAISE
from sqlalchemy.exc import SQLAlchemyError

from ..monitoring.drift import NoTrainingDistributionError, drift
from ..monitoring.performance import performance
from ..monitoring.sales import (
    ConflictingSalesError, UnknownPredictionsError, report_sales,
)
from . import keys
from .api import Blueprint
from .schemas import (
    DriftQuerySchema, DriftSchema, PerformanceQuerySchema, PerformanceSchema,
    SalesReceiptSchema, SalesSchema,
)

blp = Blueprint(
    "monitoring", __name__, url_prefix="/v1",
    description="Sale prices reported back, and how right the estimates were.",
)
blp.document_security(keys.security)
blp.document_errors({
    401: "No API key while keys are required, or an unknown key "
         "(`WWW-Authenticate` says which).",
    403: "A revoked key, or a key without the scope this operation needs.",
})
blp.document_errors({429: "Too many requests from this client; see Retry-After.",
                     503: "The database is unavailable; try again shortly."})
blp.document_errors({400: "The body is not valid JSON.",
                     413: "The body is larger than the service accepts.",
                     415: "The body has a content type the operation does not "
                          "take."}, methods=("post",))


def database():
    """This process's engine of the configured database."""
    return current_app.extensions["housing_db"].get()


def _unavailable(exc):
    current_app.logger.warning("database unavailable: %s", type(exc).__name__)
    abort(503, message="The database is unavailable; try again shortly.")


def _version(query) -> tuple[str, dict]:
    """The version a query names (the active one by default), or 404."""
    state = current_app.extensions["housing"]
    version = query.get("version") or state.version
    if version is None or not state.store.exists(version):
        abort(404, message="No such model version." if version else
              "No model version is active.")
    return version, state.store.metadata(version)


@blp.before_request
def check_content_type():
    if request.method == "POST" and request.mimetype != "application/json":
        abort(415, message="Send the body as application/json.")


@blp.route("/sales")
class Sales(MethodView):
    @blp.arguments(SalesSchema, example={"sales": [
        {"prediction_id": "5f0c8d2a3b1e4f6a9c7d2e1b0a3f4c5d",
         "sale_price": 512000, "sale_date": "2026-11-30"}]})
    @blp.response(200, SalesReceiptSchema)
    @blp.alt_response(409, description="A sale was already reported with "
                                       "another price or date; `errors` names "
                                       "the row. Nothing is stored.")
    @blp.alt_response(422, description="A row is invalid or names an unknown "
                                       "prediction_id; `errors` is keyed by row "
                                       "index. Nothing is stored.")
    def post(self, body):
        """Report the prices homes sold for

        Each sale quotes the `prediction_id` of the estimate it answers (an
        estimate is in the log within a second or so of its answer). All
        rows are stored or none. Reporting the same sale again changes
        nothing; another price or date for it is a 409.
        """
        try:
            receipt = report_sales(database(), body["sales"])
        except UnknownPredictionsError as exc:
            abort(422, message="Unknown prediction ids; errors are keyed by "
                               "row index (from 0).",
                  errors={"json": {"sales": {
                      i: {"prediction_id": [f"No estimate {pid!r} in the log."]}
                      for i, pid in exc.rows.items()}}})
        except ConflictingSalesError as exc:
            abort(409, message="Already reported with another price or date; "
                               "errors are keyed by row index (from 0).",
                  errors={"json": {"sales": {
                      i: {"sale_price": [
                          f"Already reported: {s['sale_price']:g} on "
                          f"{s['sale_date']}."]}
                      for i, s in exc.rows.items()}}})
        except SQLAlchemyError as exc:
            _unavailable(exc)
        return {**receipt, "request_id": g.request_id}


@blp.route("/model/performance")
class Performance(MethodView):
    # An unknown parameter (a typo of `by`, say) is a 422, not ignored.
    @blp.arguments(PerformanceQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, PerformanceSchema)
    @blp.alt_response(404, description="No such model version.")
    def get(self, query):
        """Measure a model version on the sales reported for its estimates

        n, MAE, RMSE, MAPE, median APE, R2, bias and 80% interval coverage,
        overall or `by` week of sale, zipcode or third of the estimated
        price, next to the version's holdout figures. `since` and `until`
        bound the sale date.
        """
        version, metadata = _version(query)
        try:
            live = performance(database(), version, query.get("since"),
                               query.get("until"), query.get("by"))
        except SQLAlchemyError as exc:
            _unavailable(exc)
        return {"model": {"name": metadata["name"], "version": version},
                "by": query.get("by"), "since": query.get("since"),
                "until": query.get("until"),
                "holdout": metadata.get("metrics", {}).get("holdout", {}),
                "live": live}


@blp.route("/model/drift")
class Drift(MethodView):
    @blp.arguments(DriftQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, DriftSchema)
    @blp.alt_response(404, description="No such model version.")
    @blp.alt_response(409, description="The version was trained without a "
                                       "training distribution to compare with.")
    def get(self, query):
        """Compare recent inputs and prices with the version's training data

        For each client input and for the predicted price: the population
        stability index of the estimates logged between `since` and `until`
        against the training data's deciles (the zipcode: its shares), the
        rows it rests on, and a verdict: none below 0.1, moderate to 0.25,
        major above.
        """
        version, metadata = _version(query)
        try:
            found = drift(database(), version,
                          metadata.get("training_distribution"),
                          query.get("since"), query.get("until"))
        except NoTrainingDistributionError as exc:
            abort(409, message=str(exc))
        except SQLAlchemyError as exc:
            _unavailable(exc)
        return {"model": {"name": metadata["name"], "version": version},
                "since": query.get("since"), "until": query.get("until"),
                **found}
