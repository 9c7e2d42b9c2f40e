"""``housing-api evaluate`` and ``search``: the evaluation report, the CV search."""
from pathlib import Path

import click

from .context import config, fail, model_store


@click.command("evaluate")
@click.option("--version", "versions", multiple=True,
              help="Stored version to evaluate (repeatable) [default: the "
                   "active one and the newest of each other algorithm].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True)
@click.option("--quick", is_flag=True,
              help="Fewer folds and learning-curve points (for tests).")
def evaluate_command(versions, out, quick):
    """Write reports/evaluation.md: every protocol, side by side."""
    from ..ops import progress
    from ..store import ModelStoreError
    from ..training.evaluation import evaluate_version
    from ..training.report import write_report

    settings = config()
    store = model_store(settings)
    if not versions:
        versions = default_versions(store)
    if not versions:
        fail("no stored model version to evaluate; run 'housing-api train'")
    evaluations = []
    with progress.shown():  # per protocol and fold, on stderr
        for version in versions:
            click.echo(f"evaluating {version} ...")
            try:
                evaluations.append(evaluate_version(
                    store, version, settings["DATA_DIR"], quick=quick))
            except ModelStoreError as exc:
                fail(str(exc))
    command = "housing-api evaluate" + (" --quick" if quick else "")
    click.echo(f"wrote {write_report(evaluations, out, command)}")


@click.command("search")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("reports/search_results.json"), show_default=True)
def search_command(out):
    """Search the boosted model's hyperparameters by CV (about 45 min).

    Reads only the training split. Prints the winner; copy it into
    training.boosting.DEFAULT_PARAMS to make it the default.
    """
    from ..ops import progress
    from ..training.search import search

    out.parent.mkdir(parents=True, exist_ok=True)
    with progress.shown():  # each trial's line, and the best so far
        chosen = search(config()["DATA_DIR"], out)
    click.echo(f"DEFAULT_PARAMS = {chosen}")


def default_versions(store) -> list[str]:
    """The active version, then the newest version of each other trainer."""
    active = store.current()
    chosen = {store.metadata(active).get("trainer"): active} if active else {}
    for version in reversed(store.list_versions()):
        chosen.setdefault(store.metadata(version).get("trainer"), version)
    return list(chosen.values())
