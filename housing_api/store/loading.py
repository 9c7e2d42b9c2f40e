"""A stored version loaded into a ready predictor; the checks a new one must pass."""
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from .. import formats
from ..inference.comparables import SALES_FILE, TrainingSales
from ..inference.demographics import Demographics
from ..inference.features import UnknownFeatureSetError, get_feature_set
from ..inference.predictor import Predictor
from .errors import InvalidModelError
from .files import DEMOGRAPHICS, FILE_NAME_RE, METADATA, sha256_file

log = logging.getLogger(__name__)


def load_version(folder: Path, version: str, lean: bool = True,
                 compiled_dir: Path | None = None) -> Predictor:
    """Load the version stored in ``folder``; raise InvalidModelError.

    Every file is checked against its sha256 in the metadata first; with
    ``lean``, the estimator is served through its lean twin where one exists,
    and a LightGBM model through its compiled trees where ``compiled_dir``
    holds them for this CPU (see ``inference.lean.compiled``). A version's
    minimal companion (``metadata["companions"]["minimal"]``) is loaded the
    same way, as the predictor's ``minimal``.
    """
    try:
        metadata = json.loads((folder / METADATA).read_text())
        artifact = metadata["artifact"]
        checksums = {**metadata.get("files", {}),
                     artifact["file"]: artifact["sha256"],
                     DEMOGRAPHICS: metadata["demographics_sha256"]}
        for name, expected in checksums.items():
            if not FILE_NAME_RE.match(name) or name == METADATA:
                raise InvalidModelError(f"invalid file name {name!r}")
            if sha256_file(folder / name) != expected:
                raise InvalidModelError(
                    f"{name} does not match its sha256 in the metadata"
                )
        demographics = Demographics.from_csv(folder / DEMOGRAPHICS)
        predictor = _predictor(folder, version, metadata, checksums, demographics,
                               lean, compiled_dir)
        minimal = metadata.get("companions", {}).get("minimal")
        if minimal is not None:
            if minimal["artifact"]["file"] not in checksums:
                raise InvalidModelError("the minimal companion's artifact has "
                                        "no sha256 in the metadata")
            predictor.minimal = _predictor(folder, version, minimal, checksums,
                                           demographics, lean, None)
        return predictor
    except InvalidModelError:
        raise
    except (UnknownFeatureSetError, formats.ArtifactError) as exc:
        raise InvalidModelError(str(exc)) from exc
    except FileNotFoundError as exc:
        raise InvalidModelError(f"missing file: {exc.filename}") from exc
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InvalidModelError(f"incomplete metadata: {exc!r}") from exc


def _predictor(folder: Path, version: str, metadata: Mapping, checksums: Mapping,
               demographics: Demographics, lean: bool,
               compiled_dir: Path | None) -> Predictor:
    """The predictor ``metadata`` describes, from files already checked."""
    artifact = metadata["artifact"]
    feature_set = get_feature_set(metadata["feature_set"])
    context_file = getattr(feature_set, "context_file", None)
    if context_file and context_file not in checksums:
        raise InvalidModelError(
            f"feature set {feature_set.name!r} needs {context_file}")
    expected = feature_set.names(demographics)
    if list(metadata["features"]) != expected:
        raise InvalidModelError(
            f"metadata features do not match feature set "
            f"{feature_set.name!r}: expected {expected}"
        )
    estimator = formats.load(
        artifact["format"], folder / artifact["file"], len(expected)
    )
    if lean:
        estimator = _lean(estimator, version)
        if compiled_dir is not None and artifact["format"] == "lightgbm":
            estimator = _compiled(estimator, folder / artifact["file"],
                                  checksums[artifact["file"]], compiled_dir,
                                  version)
    extra = {}
    if context_file:
        extra["context"] = _load_context(feature_set, folder / context_file)
    if SALES_FILE in checksums:  # versions stored before it have none
        extra["sales"] = _load_sales(folder / SALES_FILE)
    return Predictor(
        version=version,
        metadata=metadata,
        estimator=estimator,
        feature_set=feature_set,
        demographics=demographics,
        **extra,
    )


def _load_context(feature_set, path: Path):
    try:
        return feature_set.load_context(path)
    except Exception as exc:
        raise InvalidModelError(f"cannot load {path.name}: {exc}") from exc


def _load_sales(path: Path) -> TrainingSales:
    try:
        return TrainingSales.from_npz(path)
    except Exception as exc:
        raise InvalidModelError(f"cannot load {path.name}: {exc}") from exc


def _lean(estimator, version: str):
    """The lean equivalent of ``estimator``, or ``estimator`` if it has none."""
    try:
        from ..inference.lean import UnsupportedModel, make_lean
    except ImportError as exc:  # private library internals moved
        log.warning("lean inference unavailable (%s); serving %s through the "
                    "library", exc, version)
        return estimator
    try:
        return make_lean(estimator)
    except UnsupportedModel as exc:
        log.info("serving %s through the library: %s", version, exc)
        return estimator


def _compiled(estimator, model_file: Path, sha256: str, compiled_dir: Path,
              version: str):
    """``estimator`` through its compiled trees, if ``compiled_dir`` has them."""
    from ..inference.lean import LeanBooster
    from ..inference.lean import compiled

    if not isinstance(estimator, LeanBooster):
        return estimator
    try:
        name = compiled.object_name(sha256)
    except compiled.CompilationUnavailable as exc:
        log.info("serving %s through LightGBM: %s", version, exc)
        return estimator
    object_file = Path(compiled_dir) / name
    if not object_file.is_file():
        log.info("serving %s through LightGBM: no compiled trees for this "
                 "CPU (housing-api models compile %s makes them)", version,
                 version)
        return estimator
    try:
        trees = compiled.load_compiled(model_file, object_file,
                                       estimator.booster, estimator)
    except Exception as exc:  # a damaged object must not make the version unloadable
        log.warning("serving %s through LightGBM: cannot load %s (%s)", version,
                    object_file.name, exc)
        return estimator
    if trees is None:
        return estimator
    log.info("serving %s through its compiled trees", version)
    return trees


def check_predictions(columns: Mapping[str, np.ndarray]) -> Callable:
    """Return a publish check: prices for ``columns`` are finite and positive."""

    def check(predictor: Predictor) -> None:
        for model in filter(None, (predictor, predictor.minimal)):
            which = " from the minimal companion" if model.variant else ""
            inputs = {name: columns[name] for name in model.inputs}
            price = model.predict(inputs).price
            if price.shape != (len(columns["zipcode"]),):
                raise InvalidModelError(f"predictions have shape {price.shape}")
            bad = np.flatnonzero(~np.isfinite(price) | (price <= 0))
            if bad.size:
                raise InvalidModelError(
                    f"non-finite or non-positive prices{which} for "
                    f"example rows {bad[:10].tolist()}"
                )

    return check
