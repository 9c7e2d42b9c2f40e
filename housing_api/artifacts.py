"""Model artifacts in formats that run no code when loaded.

skops files are loaded with a fixed allowlist of types, never with whatever
the file itself asks to trust. Pickle is not a format here.
"""
import zipfile
from pathlib import Path

import skops.io as sio

#: Types beyond skops' built-in trusted set that our estimators contain.
#: Fixed here on purpose: a file asking for anything else is refused.
SKOPS_ALLOWED_TYPES = (
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
)
#: Largest uncompressed size and compression ratio accepted in a skops zip.
MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200


class ArtifactError(ValueError):
    """The artifact cannot be loaded safely or does not fit its metadata."""


def dump_skops(estimator) -> bytes:
    """Serialize a scikit-learn estimator to skops bytes."""
    return sio.dumps(estimator)


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise ArtifactError(f"not a skops file: {exc}") from None
    size = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos) or 1
    if size > MAX_UNCOMPRESSED_BYTES or size / packed > MAX_COMPRESSION_RATIO:
        raise ArtifactError("skops file expands too much (zip bomb?)")


def load_skops(path: Path, n_features: int):
    """Load a scikit-learn regressor, refusing types outside the allowlist."""
    _check_zip(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
        refused = sorted(set(untrusted) - set(SKOPS_ALLOWED_TYPES))
        if refused:
            raise ArtifactError(f"skops file contains disallowed types: {refused}")
        estimator = sio.load(path, trusted=list(SKOPS_ALLOWED_TYPES))
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"cannot load skops file: {exc}") from exc
    if not callable(getattr(estimator, "predict", None)):
        raise ArtifactError("skops artifact has no predict method")
    if getattr(estimator, "n_features_in_", n_features) != n_features:
        raise ArtifactError(
            f"artifact expects {estimator.n_features_in_} features, "
            f"metadata lists {n_features}"
        )
    return estimator


LOADERS = {"skops": load_skops}


def load(fmt: str, path: Path, n_features: int):
    """Load an artifact of format ``fmt`` whose model reads ``n_features``."""
    try:
        loader = LOADERS[fmt]
    except KeyError:
        raise ArtifactError(f"unknown artifact format {fmt!r}") from None
    return loader(path, n_features)
