"""``housing-api models``: list, activate, roll back, delete, compile, import
and copy."""
from pathlib import Path

import click

from .context import config, fail, model_store


@click.group("models")
def models_group():
    """List, activate, roll back, delete, compile, import and copy model versions."""


@models_group.command("list")
def list_command():
    """List stored versions (* active, ^ previous)."""
    store = model_store(config())
    current, previous = store.current(), store.previous()
    if not store.list_versions():
        click.echo(f"no model versions in {store.location}")
    for version in store.list_versions():
        metrics = store.metadata(version).get("metrics", {}).get("holdout", {})
        mark = "*" if version == current else "^" if version == previous else " "
        click.echo(f"{mark} {version}  R2 {metrics.get('r2', float('nan')):.4f}  "
                   f"MAPE {metrics.get('mape', float('nan')):.1%}")


@models_group.command("activate")
@click.argument("version")
def activate_command(version):
    """Activate VERSION; running servers pick it up within seconds."""
    from ..store import ModelStoreError

    try:
        model_store(config()).activate(version)
    except (ModelStoreError, OSError) as exc:
        fail(str(exc))
    click.echo(f"active: {version}")


@models_group.command("rollback")
def rollback_command():
    """Re-activate the version active before the current one."""
    from ..store import ModelStoreError

    try:
        version = model_store(config()).rollback()
    except (ModelStoreError, OSError) as exc:
        fail(str(exc))
    click.echo(f"active: {version}")


@models_group.command("delete")
@click.argument("version")
def delete_command(version):
    """Delete VERSION (never the active one)."""
    from ..store import ModelStoreError

    try:
        model_store(config()).delete(version)
    except (ModelStoreError, OSError) as exc:
        fail(str(exc))
    click.echo(f"deleted: {version}")


@models_group.command("compile")
@click.argument("version", required=False)
def compile_command(version):
    """Compile VERSION's trees (default: the active one) for this CPU.

    LightGBM versions only; the servers on this machine use the compiled
    trees from their next reload on. Takes minutes.
    """
    from ..inference.lean.compiled import CompilationUnavailable
    from ..store import ModelStoreError
    from ..training.compiling import compile_version

    settings = config()
    store = model_store(settings)
    version = version or store.current()
    if version is None:
        fail(f"no active version in {store.location}; name one")
    try:
        compile_version(store, version, settings["DATA_DIR"], echo=click.echo)
    except (ModelStoreError, CompilationUnavailable, OSError) as exc:
        fail(str(exc))


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
    from ..store import ModelStoreError
    from ..training.importer import import_pickle

    click.echo("warning: loading a pickle executes code from it; only import "
               "files from a trusted local source.", err=True)
    settings = config()
    store = model_store(settings)
    try:
        version = import_pickle(Path(pickle_path), Path(features_path),
                                settings["DATA_DIR"], store)
        if activate:
            store.activate(version)
    except (ModelStoreError, OSError) as exc:
        fail(str(exc))
    click.echo(f"stored {version}" + (" (active)" if activate else ""))


@models_group.command("copy")
@click.option("--from", "source", required=True, metavar="STORE",
              help="A store's folder, or s3://bucket/prefix.")
@click.option("--to", "target", required=True, metavar="STORE",
              help="A store's folder, or s3://bucket/prefix.")
@click.option("--version", "versions", multiple=True,
              help="Copy this version only (repeatable; default: every one).")
@click.option("--activate", is_flag=True,
              help="Then activate, in the target, the version active in the "
                   "source.")
def copy_command(source, target, versions, activate):
    """Copy versions from one store to another, e.g. from the folder store
    into a bucket: --from model --to s3://bucket/models.

    Each file is checked against its sha256 on the way, and a version
    appears in the target whole or not at all; one already there is left
    as it is. The target's active version changes only with --activate.
    """
    from ..store import ModelStoreError, open_store
    from ..store.copying import copy_versions

    settings = config()
    try:
        # An object store's downloads are cached beside this machine's.
        source_store, target_store = (open_store(where, settings["MODEL_DIR"])
                                      for where in (source, target))
        copied = copy_versions(source_store, target_store, versions or None,
                               echo=click.echo)
        active = source_store.current()
        if activate and active is not None:
            target_store.activate(active)
    except (ModelStoreError, ValueError, OSError) as exc:
        fail(str(exc))
    click.echo(f"copied {len(copied)} version(s) to {target_store.location}"
               + (f"; active: {active}" if activate and active else ""))
