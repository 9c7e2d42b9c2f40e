"""The models page: every stored version, and the active one's live accuracy,
drift and intervals, with CSV downloads. Pages of ``ui.bp``."""
import csv
import io
import math

from flask import Response, abort, current_app, render_template
from sqlalchemy.exc import SQLAlchemyError

from ..monitoring.drift import NoTrainingDistributionError, drift
from ..monitoring.performance import performance
from . import charts
from .ui import bp

UNAVAILABLE = "The database is unavailable; try again shortly."


def _weeks(version):
    """``version``'s live accuracy by week of sale, or None without a database."""
    engine = current_app.extensions["housing_db"].get()
    try:
        return performance(engine, version, by="week")
    except SQLAlchemyError:
        return None


def _drift(version, metadata):
    """(``version``'s drift, None) or (None, why there is none)."""
    engine = current_app.extensions["housing_db"].get()
    try:
        return drift(engine, version, metadata.get("training_distribution")), None
    except NoTrainingDistributionError as exc:
        return None, str(exc)
    except SQLAlchemyError:
        return None, UNAVAILABLE


def _live(version, metadata):
    """(weekly accuracy, drift, why either is missing) of ``version``."""
    weeks = _weeks(version)
    if weeks is None:
        return None, None, UNAVAILABLE
    found, problem = _drift(version, metadata)
    return weeks, found, problem


def _active_version() -> tuple[str, dict]:
    """The active version and its metadata, or 404."""
    store = current_app.extensions["housing"].store
    current = store.current()
    if current is None:
        abort(404)
    return current, store.metadata(current)


@bp.route("/models")
def models():
    """The stored versions with their holdout metrics; the active one live."""
    store = current_app.extensions["housing"].store
    current, previous = store.current(), store.previous()
    versions = []
    for version in reversed(store.list_versions()):
        metadata = store.metadata(version)
        versions.append({"version": version, "name": metadata.get("name"),
                         "created_at": metadata.get("created_at"),
                         "holdout": metadata.get("metrics", {}).get("holdout", {}),
                         "active": version == current,
                         "previous": version == previous})
    weeks = found = problem = None
    if current is not None:
        weeks, found, problem = _live(current, store.metadata(current))
    return render_template(
        "ui/models.html", versions=versions, current=current, weeks=weeks,
        drift=found, problem=problem, bands=_bands(current),
        charts=charts.model_charts(weeks or [], (found or {}).get("features", [])))


def _bands(version) -> list[dict] | None:
    """Each price band of the served ``version``'s interval "now", and how
    far the sales reported so far have moved its bounds (``monitoring.
    adaptation``: -0.01 is a bound 1% lower); None if it is not served here."""
    predictor = current_app.extensions["housing"].predictor
    if predictor is None or predictor.version != version:
        return None
    moved, edges = predictor.moved, predictor.interval.edges
    # + 0.0: a band no sale moved reads +0.00%, not -0.00%.
    return [{"from": lo, "to": hi, "sales": moved.sales,
             "lower": math.expm1(-moved.lower[i]) + 0.0,
             "upper": math.expm1(moved.upper[i]) + 0.0}
            for i, (lo, hi) in enumerate(zip([None, *edges], [*edges, None]))]


def _csv_response(name, header, rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename={name}"})


LIVE_FIELDS = ("group", "n", "mae", "rmse", "mape", "median_ape", "r2", "bias",
               "coverage", "first_sale", "last_sale")


@bp.route("/models/performance.csv")
def performance_csv():
    """The active version's live accuracy by week of sale, as CSV."""
    current, _ = _active_version()
    weeks = _weeks(current)
    if weeks is None:
        abort(503)
    header = ["week", *LIVE_FIELDS[1:]]
    return _csv_response(f"performance-{current}.csv", header,
                         [[w.get(f) for f in LIVE_FIELDS] for w in weeks])


@bp.route("/models/drift.csv")
def drift_csv():
    """The active version's drift table, as CSV."""
    current, metadata = _active_version()
    found, _ = _drift(current, metadata)
    if found is None:
        abort(503)
    fields = ("name", "psi", "rows", "verdict")
    return _csv_response(f"drift-{current}.csv", fields,
                         [[f.get(x) for x in fields] for f in found["features"]])
