"""Model artifacts in formats that run no code when loaded.

skops files are loaded with a fixed allowlist of types, never with whatever
the file itself asks to trust. Pickle is not a format here.
"""
import io
import json
import zipfile
from pathlib import Path

import numpy as np

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
#: Largest uncompressed size and compression ratio accepted in a skops zip.
MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200


class ArtifactError(ValueError):
    """The artifact cannot be loaded safely or does not fit its metadata."""


def dump_skops(estimator) -> bytes:
    """Serialize a scikit-learn estimator to skops bytes."""
    import skops.io as sio  # a second or so: only where a skops file is used

    return sio.dumps(estimator)


def _check_expansion(zf: zipfile.ZipFile, what: str) -> None:
    infos = zf.infolist()
    size = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos) or 1
    if size > MAX_UNCOMPRESSED_BYTES or size / packed > MAX_COMPRESSION_RATIO:
        raise ArtifactError(f"{what} expands too much (zip bomb?)")


def _read_schema(path) -> dict:
    try:
        with zipfile.ZipFile(path) as zf:
            _check_expansion(zf, "skops file")
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


#: LightGBM objectives whose predictions are prices (not classes or ranks).
LIGHTGBM_OBJECTIVES = ("regression", "regression_l1", "huber", "fair", "quantile",
                       "mape", "gamma", "tweedie", "poisson")


class LightGBMRegressor:
    """A LightGBM booster behind the ``predict(X)`` the predictor calls."""

    def __init__(self, booster):
        self.booster = booster
        self.n_features_in_ = booster.num_feature()

    def predict(self, X):
        # One thread: the Gunicorn workers are the parallelism.
        return self.booster.predict(X, num_threads=1)


def dump_lightgbm(booster) -> bytes:
    """Serialize a LightGBM booster (or fitted LGBMRegressor) to its text format."""
    return getattr(booster, "booster_", booster).model_to_string().encode()


def load_lightgbm(path: Path, n_features: int):
    """Load a LightGBM text model (``model_to_string``): data, never code."""
    import lightgbm

    try:
        text = path.read_text()
        objective = next((line.split("=", 1)[1].split()[0]
                          for line in text.splitlines()
                          if line.startswith("objective=")), None)
        if objective not in LIGHTGBM_OBJECTIVES:
            raise ArtifactError(f"LightGBM objective {objective!r} does not "
                                f"predict prices")
        booster = lightgbm.Booster(model_str=text)
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"cannot load LightGBM model: {exc}") from exc
    if booster.num_feature() != n_features:
        raise ArtifactError(f"artifact expects {booster.num_feature()} features, "
                            f"metadata lists {n_features}")
    return LightGBMRegressor(booster)


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
        _refuse_types(_read_schema(io.BytesIO(data)))


def screen_zip(data: bytes, what: str) -> None:
    """Refuse a zip (an .npz context file) that would expand too much."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            _check_expansion(zf, what)
    except zipfile.BadZipFile:
        pass  # not a zip: whatever reads it refuses it when the version loads


def load(fmt: str, path: Path, n_features: int):
    """Load an artifact of format ``fmt`` whose model reads ``n_features``."""
    try:
        loader = LOADERS[fmt]
    except KeyError:
        raise ArtifactError(f"unknown artifact format {fmt!r}") from None
    return loader(path, n_features)
