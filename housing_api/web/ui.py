"""Pages for Sound Realty's agents: an estimate form, a CSV batch, the models.

Rendered on the server (Jinja); the forms post back to these views, which
validate with the API's own schemas and estimate with the API's own code,
so a page and a request to ``/v1`` answer alike. With keys required, a page
asks for a key once and keeps its digest (never the key) in the signed
session cookie.
"""
import csv
import io
from urllib.parse import urlsplit

from flask_wtf.csrf import CSRFError
from flask import (
    Blueprint, Response, abort, current_app, g, redirect, render_template,
    request, session, url_for,
)
from marshmallow import ValidationError

from ..inference.columns import CLIENT_COLUMNS
from ..inference.comparables import DEFAULT_K
from ..keys import KeysUnavailableError, digest
from ..serving.scoring import csv_cell
from . import charts
from .csv_homes import CsvProblem, read_csv_rows
from .predict import client_identity, estimate, minimal_predictor
from .schemas import HomeSchema
from .schemas.homes import MinimalHomeSchema
from .security import csrf

bp = Blueprint("ui", __name__, static_folder="static",
               static_url_path="/ui/static")

_HOME = HomeSchema()
_MINIMAL = MinimalHomeSchema(partial=True)
#: What the form calls each client column, and its unit.
LABELS = {
    "bedrooms": ("Bedrooms", ""), "bathrooms": ("Bathrooms", ""),
    "sqft_living": ("Living area", "sq ft"), "sqft_lot": ("Lot", "sq ft"),
    "floors": ("Floors", ""), "waterfront": ("Waterfront", "0 or 1"),
    "view": ("View", "0 to 4"), "condition": ("Condition", "1 to 5"),
    "grade": ("Grade", "1 to 13"), "sqft_above": ("Above ground", "sq ft"),
    "sqft_basement": ("Basement", "sq ft"), "yr_built": ("Year built", ""),
    "yr_renovated": ("Year renovated", "0 if never"),
    "zipcode": ("Zipcode", ""), "lat": ("Latitude", "degrees"),
    "long": ("Longitude", "degrees"),
    "sqft_living15": ("Living area, 15 nearest homes", "sq ft"),
    "sqft_lot15": ("Lot, 15 nearest homes", "sq ft"),
}
#: Rows of a batch shown on its page.
PREVIEW_ROWS = 20
#: The key's session entry: the SHA-256 of the key, hex.
SESSION_KEY = "api_key_digest"


def init_app(app) -> None:
    """Register the pages, and find the session's key before any limit."""
    from . import ui_models  # noqa: F401 - its pages, on this blueprint

    app.register_blueprint(bp)
    # App-level, after the keys' own authenticate and before the limiter's
    # check (both are registered around this call), so that a page's
    # requests count against its key's quota, not its address's.
    app.before_request(identify)


def identify() -> None:
    """Put the session's API key in ``g.api_key`` on the pages."""
    if request.blueprint != "ui" or SESSION_KEY not in session:
        return
    try:
        key = current_app.extensions["housing_keys"].lookup_new(
            bytes.fromhex(session[SESSION_KEY]))
    except (KeysUnavailableError, ValueError):
        return
    if key is None or key.revoked() or "predict" not in key.scopes:
        session.pop(SESSION_KEY, None)  # revoked since: ask again
        return
    g.api_key = key


@bp.before_request
def check_csrf():
    if request.method == "POST":
        csrf.protect()


@bp.errorhandler(CSRFError)
def csrf_failed(error):
    return render_template("ui/problem.html", title="Form expired",
                           message=f"{error.description} Reload the page and "
                                   "send the form again."), 400


@bp.before_request
def require_key():
    if request.endpoint in ("ui.key", "ui.static"):
        return None
    if current_app.config["REQUIRE_API_KEY"] and g.get("api_key") is None:
        return redirect(url_for("ui.key", next=request.full_path.rstrip("?")))
    return None


def _predictor():
    """What answers this agent (a canary's challenger for its share)."""
    return current_app.extensions["housing"].answering(client_identity())


@bp.app_context_processor
def page_context():
    return {"signed_in": g.get("api_key"),
            "keys_required": current_app.config["REQUIRE_API_KEY"]}


# -- the estimate form -------------------------------------------------------

def field_specs(names) -> list[dict]:
    """What the form shows for each of ``names``: label, unit, bounds, start."""
    rules = _HOME._fast_rules()
    specs = []
    for name in names:
        kind, lo, hi = rules[name]
        label, unit = LABELS[name]
        field = _HOME.fields[name]
        specs.append({
            "name": name, "label": label, "unit": unit, "kind": kind,
            "min": lo, "max": hi,
            "step": "1" if kind == "int" else "any",
            "start": field.metadata.get("example"),
            "help": field.metadata.get("description", ""),
        })
    return specs


def _read_form(names) -> dict:
    """The form's values typed as a JSON client would send them."""
    return {name: csv_cell(name, request.form.get(name, "").strip())
            for name in names if request.form.get(name, "").strip() != ""}


def _validate(values, minimal, predictor) -> tuple[dict | None, dict]:
    """(home, {}) or (None, errors by field), by the API's own schemas."""
    schema = _MINIMAL if minimal else _HOME
    errors = {}
    try:
        # The fast path for valid homes; marshmallow for the messages.
        home = _HOME.fast_load(values, partial=minimal) or schema.load(values)
    except ValidationError as exc:
        home, errors = None, {name: list(messages) if isinstance(
            messages, list) else [str(messages)]
            for name, messages in exc.messages.items()}
    if minimal:
        for name in predictor.inputs:
            if name not in values:
                errors.setdefault(name, ["Missing data for required field."])
    zipcode = values.get("zipcode")
    if home is not None and zipcode not in predictor.demographics:
        errors["zipcode"] = [f"Unknown zipcode {zipcode!r}."]
    return (None if errors else home), errors


@bp.route("/", methods=["GET", "POST"])
def index():
    """The estimate form, and the estimate beside it."""
    predictor = _predictor()
    if predictor is None:
        return render_template("ui/no_model.html"), 503
    minimal = request.values.get("inputs") == "minimal"
    if minimal:  # as POST /v1/predict/minimal: the version's companion
        predictor = minimal_predictor(predictor)
    names = predictor.inputs if minimal else CLIENT_COLUMNS
    specs = field_specs(names)
    values = {s["name"]: s["start"] for s in specs}
    errors, result = {}, None
    status = 200
    if request.method == "POST":
        values = _read_form(names)
        home, errors = _validate(values, minimal, predictor)
        if home is None:
            status = 422
        else:
            estimates, _ = estimate(predictor, [home], explain=True, k=DEFAULT_K)
            result = estimates[0]
            result["charts"] = charts.estimate_charts(home, result)
    return render_template(
        "ui/estimate.html", specs=specs, values=values, errors=errors,
        result=result, minimal=minimal, predictor=predictor,
        zipcodes=sorted(predictor.demographics.zipcodes),
        minimal_inputs=len(predictor.inputs)), status


# -- a CSV batch -------------------------------------------------------------

def _batch_from_upload() -> tuple[str | None, str | None]:
    """(the CSV text, None) or (None, why not)."""
    upload = request.files.get("file")
    text = request.form.get("csv")  # the preview's download form
    if text is None:
        if upload is None or not upload.filename:
            return None, "Choose a CSV file to upload."
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            return None, "The file is not UTF-8 text."
    return text, None


def _score(text, predictor):
    """(rows, estimates or None per row, errors by row, header problem)."""
    try:
        rows = read_csv_rows(text, current_app.config["MAX_BATCH_ROWS"])
    except CsvProblem as exc:
        details = "; ".join(f"{where}: {' '.join(map(str, what))}"
                            if isinstance(what, list) else f"row {where}"
                            for where, what in exc.errors.items())
        return [], [], {}, f"{exc.message} ({details})"
    homes, errors = [], {}
    for i, row in enumerate(rows):
        home, problems = _validate(row, False, predictor)
        if home is None:
            errors[i] = problems
        homes.append(home)
    valid = [h for h in homes if h is not None]
    estimates, _ = estimate(predictor, valid) if valid else ([], None)
    answers = iter(estimates)
    return rows, [next(answers) if h is not None else None for h in homes], \
        errors, None


@bp.route("/batch", methods=["GET", "POST"])
def batch():
    """Upload a CSV; see the first rows and the row errors."""
    predictor = _predictor()
    if predictor is None:
        return render_template("ui/no_model.html"), 503
    context = {"header": CLIENT_COLUMNS, "limit": current_app.config[
        "MAX_BATCH_ROWS"], "predictor": predictor}
    if request.method == "GET":
        return render_template("ui/batch.html", **context)
    text, problem = _batch_from_upload()
    if problem:
        return render_template("ui/batch.html", problem=problem, **context), 422
    rows, answers, errors, problem = _score(text, predictor)
    if problem:
        return render_template("ui/batch.html", problem=problem, **context), 422
    return render_template(
        "ui/batch.html", csv_text=text, rows=rows[:PREVIEW_ROWS],
        answers=answers[:PREVIEW_ROWS], errors=errors, total=len(rows),
        estimated=sum(a is not None for a in answers), **context)


@bp.route("/batch/estimates.csv", methods=["POST"])
def batch_csv():
    """Every row of the posted CSV with its estimate (or its error), as CSV."""
    predictor = _predictor()
    if predictor is None:
        abort(503)
    text, problem = _batch_from_upload()
    rows, answers, errors, header_problem = ([], [], {}, problem) if problem \
        else _score(text, predictor)
    if header_problem:
        abort(422, header_problem)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CLIENT_COLUMNS, "prediction", "lower", "upper", "level",
                     "model_version", "error"])
    for i, (row, answer) in enumerate(zip(rows, answers)):
        cells = [row.get(name, "") for name in CLIENT_COLUMNS]
        if answer is None:
            reasons = "; ".join(f"{name}: {' '.join(messages)}"
                                for name, messages in errors[i].items())
            writer.writerow([*cells, "", "", "", "", predictor.version, reasons])
        else:
            interval = answer["interval"]
            writer.writerow([*cells, answer["prediction"], interval["lower"],
                             interval["upper"], interval["level"],
                             predictor.version, ""])
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": "attachment; filename=estimates.csv"})


# -- the key ------------------------------------------------------------------

def _safe_next(target: str | None) -> str:
    """Where to go after the key page: a path of this site, else the form."""
    parts = urlsplit(target or "")
    if not target or parts.scheme or parts.netloc or not target.startswith("/") \
            or target.startswith("//"):
        return url_for("ui.index")
    return target


@bp.route("/key", methods=["GET", "POST"])
def key():
    """Ask for an API key once; keep its digest in the session."""
    target = _safe_next(request.values.get("next"))
    error = None
    if request.method == "POST":
        if request.form.get("action") == "forget":
            session.pop(SESSION_KEY, None)
            return redirect(url_for("ui.key"))
        secret = request.form.get("key", "").strip()
        found = None
        try:
            found = current_app.extensions["housing_keys"].lookup_new(
                digest(secret)) if secret else None
        except KeysUnavailableError:
            error = "API keys cannot be checked right now; try again shortly."
        if error is None:
            if found is None:
                error = "Unknown API key."
            elif found.revoked():
                error = f"API key {found.prefix}... is revoked."
            elif "predict" not in found.scopes:
                error = f"API key {found.prefix}... lacks the 'predict' scope."
        if error is None:
            session[SESSION_KEY] = digest(secret).hex()
            return redirect(target)
    return render_template("ui/key.html", error=error, next=target), \
        401 if error else 200
