"""``housing-api`` (also ``flask --app housing_api``): train, smoke, models."""
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext

from . import jobs
from .model_store import ModelStore, ModelStoreError
from .training import ALGORITHMS, promotion_decision, train_version


def _store() -> ModelStore:
    return ModelStore(current_app.config["MODEL_DIR"])


def _fail(message: str):
    raise click.ClickException(message)


#: ``housing-api train`` with no --algorithm: the reference first, so that
#: the boosted model goes live with the reference one rollback away.
DEFAULT_TRAINING = ("reference", "lightgbm")


@click.command("train")
@click.option("--algorithm", type=click.Choice(["all", *sorted(ALGORITHMS)]),
              default="all", show_default=True,
              help="all: the reference model, then the boosted one (active).")
@click.option("--activate/--no-activate", default=True, show_default=True,
              help="Make the new version the active one.")
@click.option("--promote-if-better", is_flag=True,
              help="Activate only if holdout metrics are no worse than the "
                   "active version's.")
@click.option("--job", "job_id", hidden=True)
@with_appcontext
def train_command(algorithm, activate, promote_if_better, job_id):
    """Train models from the data folder and store each as a new version."""
    for name in DEFAULT_TRAINING if algorithm == "all" else (algorithm,):
        _train_one(name, activate, promote_if_better, job_id)


def _train_one(algorithm, activate, promote_if_better, job_id):
    config = current_app.config
    model_dir, data_dir = config["MODEL_DIR"], config["DATA_DIR"]
    if job_id:
        jobs.update(model_dir, job_id, state="running")
    store = _store()
    click.echo(f"training {algorithm} ...")
    try:
        version, metadata = train_version(data_dir, store, algorithm)
        promoted, reason = (activate, "activated as asked" if activate
                            else "not activated (--no-activate)")
        if promote_if_better:
            promoted, reason = promotion_decision(store, metadata)
        if promoted:
            store.activate(version)
    except Exception as exc:
        if job_id:
            jobs.update(model_dir, job_id, state="failed", reason=str(exc),
                        finished_at=datetime.now(timezone.utc).isoformat())
        if isinstance(exc, ModelStoreError):
            _fail(f"the new version was refused: {exc}")
        raise
    if job_id:
        jobs.update(model_dir, job_id, state="succeeded", version=version,
                    promoted=promoted, reason=reason,
                    finished_at=datetime.now(timezone.utc).isoformat())
    holdout = metadata["metrics"]["holdout"]
    click.echo(f"stored {version}: holdout R2 {holdout['r2']:.4f}, "
               f"MAE ${holdout['mae']:,.0f}, MAPE {holdout['mape']:.1%}")
    click.echo(f"{'active' if promoted else 'not active'}: {reason}")


@click.command("smoke")
@click.option("--url", required=True, help="Base URL of a running service.")
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Homes to send [default: DATA_DIR/"
                                 "future_unseen_examples.csv].")
@click.option("--wait", type=float, default=0, show_default=True,
              help="Seconds to wait for /health/ready first.")
@with_appcontext
def smoke_command(url, csv_path, wait):
    """Post every example to a running service and check every answer."""
    from .smoke import run_smoke, wait_until_ready

    if wait and not wait_until_ready(url, wait):
        _fail(f"{url} was not ready within {wait:g} s")
    path = Path(csv_path or current_app.config["DATA_DIR"]
                / "future_unseen_examples.csv")
    report = run_smoke(url, path)
    click.echo(report.summary())
    if report.failures:
        sys.exit(1)


@click.group("models", cls=AppGroup)
def models_group():
    """List, activate, roll back, delete and import model versions."""


@models_group.command("list")
def list_command():
    """List stored versions (* active, ^ previous)."""
    store = _store()
    current, previous = store.current(), store.previous()
    if not store.list_versions():
        click.echo(f"no model versions in {store.root}")
    for version in store.list_versions():
        metrics = store.metadata(version).get("metrics", {}).get("holdout", {})
        mark = "*" if version == current else "^" if version == previous else " "
        click.echo(f"{mark} {version}  R2 {metrics.get('r2', float('nan')):.4f}  "
                   f"MAPE {metrics.get('mape', float('nan')):.1%}")


@models_group.command("activate")
@click.argument("version")
def activate_command(version):
    """Activate VERSION; running servers pick it up within seconds."""
    try:
        _store().activate(version)
    except (ModelStoreError, OSError) as exc:
        _fail(str(exc))
    click.echo(f"active: {version}")


@models_group.command("rollback")
def rollback_command():
    """Re-activate the version active before the current one."""
    try:
        version = _store().rollback()
    except (ModelStoreError, OSError) as exc:
        _fail(str(exc))
    click.echo(f"active: {version}")


@models_group.command("delete")
@click.argument("version")
def delete_command(version):
    """Delete VERSION (never the active one)."""
    try:
        _store().delete(version)
    except (ModelStoreError, OSError) as exc:
        _fail(str(exc))
    click.echo(f"deleted: {version}")


@models_group.command("import")
@click.argument("pickle_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--features", "features_path", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="model_features.json written by the training script.")
@click.option("--activate", is_flag=True, help="Activate it once stored.")
def import_command(pickle_path, features_path, activate):
    """Convert a local model.pkl from Sound Realty's script into a version.

    Unpickling runs code from the file: only import a file you made.
    """
    from .importer import import_pickle

    click.echo("warning: loading a pickle executes code from it; only import "
               "files from a trusted local source.", err=True)
    store = _store()
    try:
        version = import_pickle(Path(pickle_path), Path(features_path),
                                current_app.config["DATA_DIR"], store)
        if activate:
            store.activate(version)
    except (ModelStoreError, OSError) as exc:
        _fail(str(exc))
    click.echo(f"stored {version}" + (" (active)" if activate else ""))


@click.command("evaluate")
@click.option("--version", "versions", multiple=True,
              help="Stored version to evaluate (repeatable) [default: the "
                   "active one and the newest of each other algorithm].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True)
@click.option("--quick", is_flag=True,
              help="Fewer folds and learning-curve points (for tests).")
@with_appcontext
def evaluate_command(versions, out, quick):
    """Write reports/evaluation.md: every protocol, side by side."""
    from .evaluation import evaluate_version
    from .report import write_report

    store = _store()
    if not versions:
        versions = default_versions(store)
    if not versions:
        _fail("no stored model version to evaluate; run 'housing-api train'")
    evaluations = []
    for version in versions:
        click.echo(f"evaluating {version} ...")
        try:
            evaluations.append(evaluate_version(
                store, version, current_app.config["DATA_DIR"], quick=quick))
        except ModelStoreError as exc:
            _fail(str(exc))
    command = "housing-api evaluate" + (" --quick" if quick else "")
    click.echo(f"wrote {write_report(evaluations, out, command)}")


@click.command("search")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("reports/search_results.json"), show_default=True)
@with_appcontext
def search_command(out):
    """Search the boosted model's hyperparameters by CV (about 45 min).

    Reads only the training split. Prints the winner; copy it into
    boosting.DEFAULT_PARAMS to make it the default.
    """
    from .search import search

    out.parent.mkdir(parents=True, exist_ok=True)
    chosen = search(current_app.config["DATA_DIR"], out, echo=click.echo)
    click.echo(f"DEFAULT_PARAMS = {chosen}")


def default_versions(store: ModelStore) -> list[str]:
    """The active version, then the newest version of each other trainer."""
    active = store.current()
    chosen = {store.metadata(active).get("trainer"): active} if active else {}
    for version in reversed(store.list_versions()):
        chosen.setdefault(store.metadata(version).get("trainer"), version)
    return list(chosen.values())


def init_app(app):
    """Register the commands on ``app.cli`` (``flask --app housing_api``)."""
    for command in (train_command, smoke_command, models_group, evaluate_command,
                    search_command):
        app.cli.add_command(command)


def _create_app():
    from . import create_app

    return create_app()


main = FlaskGroup(
    name="housing-api", create_app=_create_app, add_default_commands=False,
    add_version_option=False, load_dotenv=False,
    help="Sound Realty house-price service: training and operations.",
)
