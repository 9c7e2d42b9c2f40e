"""``housing-api score``: estimate every home of a CSV of any size."""
from pathlib import Path

import click

from .context import config, fail, model_store


def _checks(predictor):
    """The API's own validation of a home, for ``serving.scoring``."""
    from marshmallow import ValidationError

    from ..serving.scoring import RowChecks
    from ..web.predict import unknown_zipcode
    from ..web.schemas import HomeSchema

    schema = HomeSchema()

    def load(cells):
        try:
            home = schema.load(cells)
        except ValidationError as exc:
            return None, exc.messages
        if home["zipcode"] not in predictor.demographics:
            return None, {"zipcode": unknown_zipcode(home["zipcode"])}
        return home, None

    return RowChecks(fast_mask=schema.fast_mask, load=load)


def _adapt(settings, predictor) -> None:
    """The intervals the API gives now: adapted to the sales reported in the
    service's database, if there is one (``monitoring.adaptation``)."""
    from sqlalchemy.engine import make_url

    from ..db import make_engine
    from ..monitoring.adaptation import adapted

    url = make_url(settings["DATABASE_URL"])
    if not settings["PREDICTION_LOG"] or (
            url.get_backend_name() == "sqlite"
            and not (url.database and Path(url.database).exists())):
        return  # no service has logged here: nothing to read
    engine = make_engine(settings["DATABASE_URL"])
    try:
        adapted(engine, predictor, settings["INTERVAL_ADAPTATION_STEP"])
    finally:
        engine.dispose()


@click.command("score")
@click.argument("source", type=click.Path(exists=True, dir_okay=False,
                                          path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version", help="A stored version [default: the active one].")
@click.option("--explain", is_flag=True,
              help="Add each estimate's explanation and comparable sales "
                   "(JSON columns; milliseconds per home).")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=10_000,
              show_default=True, help="Homes read and estimated at a time.")
def score_command(source, out, version, explain, chunk_rows):
    """Estimate every home of SOURCE (a CSV with the header of
    future_unseen_examples.csv, any size) into OUT.

    OUT has one row per valid home, in input order: its row in SOURCE,
    the estimate, the interval and the version that made it. Rows that
    fail validation go to OUT.errors.csv (with the input's cells and the
    reason) instead of stopping the run.
    """
    from ..ops.progress import Progress
    from ..serving.scoring import ScoringError, count_rows, score_csv
    from ..store import ModelStoreError

    settings = config()
    store = model_store(settings)
    try:
        version = version or store.current()
        if version is None:
            fail("no model version is active; train one first (housing-api train)")
        predictor = store.load(version)
    except ModelStoreError as exc:
        fail(str(exc))
    _adapt(settings, predictor)
    total = count_rows(source)
    try:
        with Progress(f"scoring {source.name} with {version}", total=total,
                      unit="rows") as progress:
            summary = score_csv(predictor, source, out, _checks(predictor),
                                chunk_rows=chunk_rows, explain=explain,
                                progress=progress)
    except ScoringError as exc:
        fail(f"{source}: {exc}")
    click.echo(f"{summary.scored:,} estimates in {out}"
               + (f"; {summary.failed:,} rows refused, with the reason, in "
                  f"{summary.errors}" if summary.failed else "")
               + f" ({summary.rows / summary.seconds:,.0f} rows/s)")
