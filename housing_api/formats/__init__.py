"""Model artifacts in formats that run no code when loaded: readers and writers.

The lowest layer: it imports nothing else of the package, and no Flask.
skops files are loaded with a fixed allowlist of types, LightGBM models from
their text format. Pickle is not a format here.
"""
from pathlib import Path

from .errors import ArtifactError
from .lightgbm_text import LightGBMRegressor, dump_lightgbm, load_lightgbm
from .skops_files import dump_skops, load_skops, screen_skops
from .zips import screen_zip

__all__ = ["ArtifactError", "LightGBMRegressor", "LOADERS", "dump_lightgbm",
           "dump_skops", "load", "screen", "screen_zip"]

LOADERS = {"skops": load_skops, "lightgbm": load_lightgbm}


def screen(fmt: str, data: bytes) -> None:
    """Refuse an uploaded artifact from its bytes alone, before it is written.

    What loading would refuse as unsafe, as far as it needs no file: an
    unknown format, and a skops file that is no zip, expands too much or
    names a type outside the allowlist. Loading checks everything again.
    """
    if fmt not in LOADERS:
        raise ArtifactError(f"unknown artifact format {fmt!r}")
    if fmt == "skops":
        screen_skops(data)


def load(fmt: str, path: Path, n_features: int):
    """Load an artifact of format ``fmt`` whose model reads ``n_features``."""
    try:
        loader = LOADERS[fmt]
    except KeyError:
        raise ArtifactError(f"unknown artifact format {fmt!r}") from None
    return loader(path, n_features)
