"""scikit-learn models as skops files, loaded against a fixed allowlist of types.

Never with whatever the file itself asks to trust.
"""
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import ArtifactError
from .zips import check_expansion

#: Every type a skops artifact may contain, fixed here on purpose: a file
#: naming anything else (another estimator, a function, a custom class) is
#: refused before skops builds a single object. skops' own default trust
#: (every scikit-learn estimator, every ufunc) is wider than we need.
SKOPS_ESTIMATOR_TYPES = (
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.RobustScaler",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.neighbors._regression.KNeighborsRegressor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
)
#: Plain data: JSON values, containers, numpy arrays and scalar types.
SKOPS_DATA_TYPES = (
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.str",
    "builtins.int", "builtins.float", "builtins.bool", "builtins.NoneType",
    "numpy.ndarray", "numpy.dtype",
) + tuple(sorted({
    f"numpy.{t.__name__}" for t in np.sctypeDict.values()
    if issubclass(t, (np.number, np.bool_))
}))
SKOPS_ALLOWED_TYPES = SKOPS_ESTIMATOR_TYPES + SKOPS_DATA_TYPES


def dump_skops(estimator) -> bytes:
    """Serialize a scikit-learn estimator to skops bytes."""
    import skops.io as sio  # a second or so: only where a skops file is used

    return sio.dumps(estimator)


def _read_schema(path) -> dict:
    try:
        with zipfile.ZipFile(path) as zf:
            check_expansion(zf, "skops file")
            return json.loads(zf.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"not a skops file: {exc}") from None


def _schema_types(node, found: set) -> set:
    """Collect the ``module.Class`` of every object the schema would build."""
    if isinstance(node, dict):
        if "__module__" in node or "__class__" in node:
            found.add(f"{node.get('__module__')}.{node.get('__class__')}")
        for value in node.values():
            _schema_types(value, found)
    elif isinstance(node, list):
        for value in node:
            _schema_types(value, found)
    return found


def _refuse_types(schema: dict) -> None:
    refused = sorted(_schema_types(schema, set()) - set(SKOPS_ALLOWED_TYPES))
    if refused:
        raise ArtifactError(f"skops file contains disallowed types: {refused}")


def load_skops(path: Path, n_features: int):
    """Load a scikit-learn regressor, refusing types outside the allowlist."""
    _refuse_types(_read_schema(path))
    import skops.io as sio

    try:
        # skops audits the tree again, against its defaults plus ours.
        estimator = sio.load(path, trusted=list(SKOPS_ESTIMATOR_TYPES))
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


def screen_skops(data: bytes) -> None:
    """Refuse skops bytes that are no zip, expand too much or name a refused type."""
    _refuse_types(_read_schema(io.BytesIO(data)))
