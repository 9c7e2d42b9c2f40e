"""The run's model stores (one copy per server) and its request bodies."""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import BOOSTED, DATA, MODELS, ROOT, say


def newest_versions(model_dir: Path) -> dict:
    """{model name: newest version} of the versions stored in ``model_dir``."""
    found = {}
    for folder in sorted((model_dir / "versions").glob("*")):
        try:
            meta = json.loads((folder / "metadata.json").read_text())
        except (OSError, ValueError):
            continue
        if meta.get("name") in MODELS:
            found[meta["name"]] = folder.name  # names sort by creation time
    return found


def prepare_models(args, work: Path) -> tuple[Path, dict, str]:
    """A private store with both models: copied from ``--model-dir`` when it
    holds both, else trained with ``housing-api train``."""
    source = work / "source"
    found = {} if args.train else newest_versions(args.model_dir)
    if all(name in found for name in MODELS):
        for version in found.values():
            shutil.copytree(args.model_dir / "versions" / version,
                            source / "versions" / version)
        how = f"copied from {args.model_dir}"
        copy_compiled(args.model_dir, source, found.values())
    else:
        say(f"training both models into {source} (a few minutes)")
        env = {k: v for k, v in os.environ.items()
               if k != "PROMETHEUS_MULTIPROC_DIR"}
        env.update(HOUSING_MODEL_DIR=str(source), HOUSING_DATA_DIR=str(DATA))
        subprocess.run([str(Path(sys.executable).parent / "housing-api"),
                        "train"], cwd=ROOT, env=env, check=True)
        found = newest_versions(source)
        how = "trained by `housing-api train` for this run"
    from housing_api.store import ModelStore

    store = ModelStore(source)
    if hasattr(store, "compiled_object"):
        # As `housing-api train` leaves a boosted version: its trees compiled.
        version = found[BOOSTED]
        if not store.compiled_object(version).is_file():
            say(f"compiling the trees of {version} (a few minutes)")
            env = {k: v for k, v in os.environ.items()
                   if k != "PROMETHEUS_MULTIPROC_DIR"}
            env.update(HOUSING_MODEL_DIR=str(source), HOUSING_DATA_DIR=str(DATA))
            subprocess.run([str(Path(sys.executable).parent / "housing-api"),
                            "models", "compile", version], cwd=ROOT, env=env,
                           check=True)
            how += "; the boosted trees compiled for this run"
    for name in MODELS:
        store.load(found[name])  # checksums and features, before any server
    store.activate(found[BOOSTED])
    return source, {name: found[name] for name in MODELS}, how


def copy_compiled(source: Path, dest: Path, versions) -> None:
    """The compiled trees ``source`` holds for ``versions``' models."""
    models = set()
    for version in versions:
        meta = json.loads((source / "versions" / version / "metadata.json")
                          .read_text())
        models.add(meta["artifact"]["sha256"])
    for path in sorted((source / "compiled").glob("[!.]*.o")):
        if path.name.split("-", 1)[0] in models:
            (dest / "compiled").mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / "compiled" / path.name)


def store_copy(source: Path, versions: dict, active: str, work: Path) -> Path:
    """A store of its own for one server, with ``active`` as CURRENT."""
    from housing_api.store import ModelStore

    dest = Path(tempfile.mkdtemp(prefix="store-", dir=work))
    for version in versions.values():
        shutil.copytree(source / "versions" / version,
                        dest / "versions" / version)
    copy_compiled(source, dest, versions.values())
    ModelStore(dest).activate(versions[active])
    return dest


def _number(text: str):
    return float(text) if any(c in text for c in ".eE") else int(text)


def write_bodies(work: Path, batch_rows: int) -> tuple[Path, Path, list]:
    """One JSON body per line for each row of future_unseen_examples.csv
    (zipcode as a string, as the API documents it), and one batch body of
    ``batch_rows`` homes (those rows, repeated)."""
    with open(DATA / "future_unseen_examples.csv", newline="") as f:
        rows = [{k: (v if k == "zipcode" else _number(v)) for k, v in r.items()}
                for r in csv.DictReader(f)]
    single = work / "rows.jsonl"
    single.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n"
                              for r in rows))
    homes = [rows[i % len(rows)] for i in range(batch_rows)]
    batch = work / "batch.jsonl"
    batch.write_text(json.dumps({"instances": homes},
                                separators=(",", ":")) + "\n")
    return single, batch, rows


def start_shadow(store_dir: Path, version: str) -> str:
    """Copy ``version`` under a new name and start a shadow of the copy:
    the same model estimating twice, in two objects loaded by the master."""
    from housing_api.store import ModelStore, new_version_name

    store = ModelStore(store_dir)
    meta = json.loads((store.path(version) / "metadata.json").read_text())
    copy = new_version_name(meta["name"])
    shutil.copytree(store.path(version), store.versions_dir / copy)
    meta["version"] = copy
    (store.versions_dir / copy / "metadata.json").write_text(json.dumps(meta))
    store.start_rollout(copy, "shadow")
    return copy
