"""Compile a stored LightGBM version's trees for this CPU (``housing-api
models compile``; ``housing-api train`` does it for each boosted version).

The compiled trees must predict what LightGBM predicts, within 1e-9
relative, on every home of the data folder: each King County sale (the
training rows and the holdout) and each future example, as the served
version builds their features. Otherwise nothing is written.
"""
import time
from pathlib import Path

import numpy as np

from ..inference.lean.compiled import compile_trees
from ..store import VersionStore, load_version
from .data import Sales, read_examples


def check_rows(store: VersionStore, version: str, data_dir: Path) -> np.ndarray:
    """The feature rows of every sale and future example in ``data_dir``."""
    predictor = load_version(store.path(version), version, lean=False)
    sales = Sales.read(data_dir).columns
    examples = read_examples(data_dir)
    return np.vstack([predictor.features(sales), predictor.features(examples)])


def compile_version(store: VersionStore, version: str, data_dir: Path,
                    echo=print) -> Path:
    """Compile ``version``'s trees into the store, unless they are there."""
    out = store.compiled_object(version)
    if out.is_file():
        echo(f"{version}: compiled trees for this CPU already in {out.parent}")
        return out
    rows = check_rows(store, version, Path(data_dir))
    artifact = store.metadata(version)["artifact"]["file"]
    echo(f"{version}: compiling its trees for this CPU (a few minutes) ...")
    start = time.monotonic()
    compile_trees(store.path(version) / artifact, out, rows)
    echo(f"{version}: compiled in {time.monotonic() - start:.0f} s; equal to "
         f"LightGBM on {len(rows):,} homes")
    return out
