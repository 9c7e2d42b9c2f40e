"""``housing-api train``: fit models and store each as a new version."""
from datetime import datetime, timezone

import click

from .context import config, fail, model_store

#: ``housing-api train`` with no --algorithm: the reference first, so that
#: the boosted model goes live with the reference one rollback away.
DEFAULT_TRAINING = ("reference", "lightgbm")
ALGORITHMS = ("lightgbm", "reference")


@click.command("train")
@click.option("--algorithm", type=click.Choice(["all", *ALGORITHMS]),
              default="all", show_default=True,
              help="all: the reference model, then the boosted one (active).")
@click.option("--activate/--no-activate", default=True, show_default=True,
              help="Make the new version the active one.")
@click.option("--promote-if-better", is_flag=True,
              help="Activate only if holdout metrics are no worse than the "
                   "active version's.")
@click.option("--with-sales", is_flag=True,
              help="Add the sales reported back (POST /v1/sales) to the "
                   "training rows; the holdout stays the same.")
@click.option("--compile/--no-compile", "compile_trees", default=True,
              show_default=True,
              help="Compile a boosted version's trees for this CPU before it "
                   "is activated (a few minutes; served faster, the same "
                   "prices).")
@click.option("--job", "job_id", hidden=True)
def train_command(algorithm, activate, promote_if_better, with_sales,
                  compile_trees, job_id):
    """Train models from the data folder and store each as a new version."""
    from ..ops import progress

    settings = config()
    reported = _reported_sales(settings) if with_sales else None
    # Each stage's progress on stderr; a job's in its status too.
    listener = None if not job_id else (lambda state: _job_progress(
        settings["MODEL_DIR"], job_id, state))
    with progress.shown(interval=5.0 if job_id else 10.0, listener=listener):
        for name in DEFAULT_TRAINING if algorithm == "all" else (algorithm,):
            _train_one(settings, name, activate, promote_if_better, job_id,
                       reported, compile_trees)


def _job_progress(model_dir, job_id, state) -> None:
    from ..training import jobs

    jobs.update(model_dir, job_id, progress=state)


def _compile(store, version, data_dir) -> None:
    """Compile the new version's trees; without them it is served anyway."""
    from ..inference.lean.compiled import CompilationUnavailable
    from ..training.compiling import compile_version

    try:
        compile_version(store, version, data_dir, echo=click.echo)
    except CompilationUnavailable as exc:
        click.echo(f"{version}: served through LightGBM, not compiled: {exc}")


def _reported_sales(settings) -> dict:
    from sqlalchemy.exc import SQLAlchemyError

    from ..db import make_engine
    from ..monitoring.sales import reported_sales

    engine = make_engine(settings["DATABASE_URL"])
    try:
        reported = reported_sales(engine)
    except SQLAlchemyError as exc:
        fail(f"cannot read the reported sales: {getattr(exc, 'orig', None) or exc}")
    finally:
        engine.dispose()
    click.echo(f"{len(reported['price'])} reported sales of fully described homes")
    return reported


def _train_one(settings, algorithm, activate, promote_if_better, job_id,
               reported=None, compile_trees=False):
    from ..store import ModelStoreError
    from ..training import jobs
    from ..training.train import promotion_decision, train_version

    model_dir, data_dir = settings["MODEL_DIR"], settings["DATA_DIR"]
    if job_id:
        jobs.update(model_dir, job_id, state="running")
    store = model_store(settings)
    click.echo(f"training {algorithm} ...")
    try:
        version, metadata = train_version(data_dir, store, algorithm, reported)
        if compile_trees and metadata["artifact"]["format"] == "lightgbm":
            if settings["LEAN_INFERENCE"] and settings["COMPILED_TREES"]:
                _compile(store, version, data_dir)
            else:  # minutes spent on trees this configuration never serves
                click.echo(f"{version}: not compiled: this configuration serves "
                           "through LightGBM (HOUSING_COMPILED_TREES or "
                           "HOUSING_LEAN_INFERENCE is false)")
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
            fail(f"the new version was refused: {exc}")
        raise
    if job_id:
        jobs.update(model_dir, job_id, state="succeeded", version=version,
                    promoted=promoted, reason=reason,
                    finished_at=datetime.now(timezone.utc).isoformat())
    if "reported_sales" in metadata:
        counts = metadata["reported_sales"]
        click.echo(f"added {counts['added']} reported sales to the training rows "
                   f"({counts['duplicates']} already in the data left out)")
    holdout = metadata["metrics"]["holdout"]
    click.echo(f"stored {version}: holdout R2 {holdout['r2']:.4f}, "
               f"MAE ${holdout['mae']:,.0f}, MAPE {holdout['mape']:.1%}")
    click.echo(f"{'active' if promoted else 'not active'}: {reason}")
