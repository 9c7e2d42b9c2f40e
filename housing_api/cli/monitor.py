"""``housing-api monitor``: how a model version does on live traffic."""
from pathlib import Path

import click

from .context import config, fail, model_store


@click.command("monitor")
@click.option("--version", default=None,
              help="A stored version [default: the active one].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write a Markdown report with plots here.")
def monitor_command(version, out):
    """Print live accuracy by week and the drift table (from the database)."""
    from sqlalchemy.exc import SQLAlchemyError

    from ..db import make_engine
    from ..monitoring import report
    from ..monitoring.drift import NoTrainingDistributionError, drift
    from ..monitoring.performance import performance

    settings = config()
    store = model_store(settings)
    version = version or store.current()
    if not version or not store.exists(version):
        fail(f"no model version {version!r}" if version else "no active version")
    metadata = store.metadata(version)
    holdout = metadata.get("metrics", {}).get("holdout", {})
    engine = make_engine(settings["DATABASE_URL"])
    try:
        weeks = performance(engine, version, by="week")
        try:
            found = drift(engine, version, metadata.get("training_distribution"))
        except NoTrainingDistributionError:
            found = None
    except SQLAlchemyError as exc:
        fail(f"cannot read the database: {getattr(exc, 'orig', None) or exc}")
    finally:
        engine.dispose()
    click.echo(report.text(version, holdout, weeks, found), nl=False)
    if out:
        try:
            written = report.write_markdown(out, version, holdout, weeks, found,
                                            "housing-api monitor --out " + str(out))
        except ImportError:
            fail("--out draws plots with matplotlib: pip install -e '.[eval]'")
        click.echo(f"wrote {written}")
