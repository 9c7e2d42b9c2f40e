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
@click.option("--job", "job_id", hidden=True)
def train_command(algorithm, activate, promote_if_better, job_id):
    """Train models from the data folder and store each as a new version."""
    settings = config()
    for name in DEFAULT_TRAINING if algorithm == "all" else (algorithm,):
        _train_one(settings, name, activate, promote_if_better, job_id)


def _train_one(settings, algorithm, activate, promote_if_better, job_id):
    from ..store import ModelStoreError
    from ..training import jobs
    from ..training.train import promotion_decision, train_version

    model_dir, data_dir = settings["MODEL_DIR"], settings["DATA_DIR"]
    if job_id:
        jobs.update(model_dir, job_id, state="running")
    store = model_store(settings)
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
            fail(f"the new version was refused: {exc}")
        raise
    if job_id:
        jobs.update(model_dir, job_id, state="succeeded", version=version,
                    promoted=promoted, reason=reason,
                    finished_at=datetime.now(timezone.utc).isoformat())
    holdout = metadata["metrics"]["holdout"]
    click.echo(f"stored {version}: holdout R2 {holdout['r2']:.4f}, "
               f"MAE ${holdout['mae']:,.0f}, MAPE {holdout['mape']:.1%}")
    click.echo(f"{'active' if promoted else 'not active'}: {reason}")
