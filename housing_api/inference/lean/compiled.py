"""LightGBM trees compiled to machine code (lleaves): the same predictions, faster.

Compiling takes minutes (about 2.5 for 1,750 trees on one core), so it
happens once, when a version is trained here or when an operator asks
(``housing-api models compile``), never while serving. The object file is
machine code for one CPU and toolchain: its name says which
(:func:`object_name`), and a process on another CPU, or with another lleaves
or llvmlite, does not find it and serves through LightGBM's C API instead.

Machine code is trusted only when this project made it: the objects live in
the store's ``compiled/`` folder, which only :func:`compile_trees` writes
(uploads write version folders, never this one), and every object is checked
against the booster when loaded (:func:`load_compiled`).
"""
import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Largest relative difference from LightGBM's own predictions accepted.
TOLERANCE = 1e-9
#: Rows checked against the booster when an object is loaded.
PROBE_ROWS = 512


class CompilationUnavailable(RuntimeError):
    """lleaves or llvmlite is missing, or this model cannot be compiled."""


def toolchain() -> str:
    """What an object file is valid for: lleaves, llvmlite, CPU and features."""
    try:
        import lleaves  # noqa: F401  (its version below)
        import llvmlite
        import llvmlite.binding as llvm
        from importlib.metadata import version
    except ImportError as exc:
        raise CompilationUnavailable(f"lleaves is not installed ({exc})") from exc
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot read them here
        features = ""
    digest = hashlib.sha256(features.encode()).hexdigest()[:12]
    return (f"lleaves{version('lleaves')}-llvmlite{llvmlite.__version__}-"
            f"{llvm.get_host_cpu_name()}-{digest}")


def object_name(model_sha256: str) -> str:
    """The object file's name for a model text with this sha256, here."""
    return f"{model_sha256}-{toolchain()}.o"


def compile_trees(model_file: Path, out: Path, check_rows: np.ndarray) -> None:
    """Compile ``model_file`` to ``out``, if it reproduces the booster.

    The booster and the compiled trees predict every row of ``check_rows``
    (a feature matrix); unless they agree within TOLERANCE, nothing is
    written and CompilationUnavailable says by how much they differ.
    The object appears at ``out`` whole (written aside, then renamed).
    """
    import lightgbm
    try:
        import lleaves
    except ImportError as exc:
        raise CompilationUnavailable(f"lleaves is not installed ({exc})") from exc
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    booster = lightgbm.Booster(model_file=str(model_file))
    fd, tmp = tempfile.mkstemp(prefix=".compiling-", suffix=".o", dir=out.parent)
    os.close(fd)
    os.unlink(tmp)  # lleaves writes its cache only where no file is
    try:
        model = lleaves.Model(model_file=str(model_file))
        model.compile(cache=tmp)
        trees = CompiledTrees(model, booster.num_feature())
        worst = _difference(trees, booster, check_rows)
        if not worst <= TOLERANCE:
            raise CompilationUnavailable(
                f"compiled trees differ from LightGBM by {worst:.3g} (relative)")
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_compiled(model_file: Path, object_file: Path, booster, lean=None):
    """CompiledTrees from ``object_file``, or None if it is not this booster's.

    ``lean`` (a LeanBooster) serves what the compiled trees do not compute:
    the explanations' TreeSHAP contributions.

    The check predicts PROBE_ROWS rows spread over every feature's range in
    the model (its ``feature_infos``) with both; an object that disagrees
    (another model, a damaged file) is not used.
    """
    import lleaves

    model = lleaves.Model(model_file=str(model_file))
    model.compile(cache=str(object_file))
    trees = CompiledTrees(model, booster.num_feature(), lean)
    worst = _difference(trees, booster, probe_rows(model_file))
    if not worst <= TOLERANCE:
        log.warning("compiled trees %s differ from the booster by %.3g; "
                    "serving through LightGBM", object_file.name, worst)
        return None
    return trees


def probe_rows(model_file: Path, n: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Rows spread over each feature's training range, and past its ends
    (the ranges of the model text's ``feature_infos`` line)."""
    infos = next((line.partition("=")[2].split()
                  for line in Path(model_file).read_text().splitlines()
                  if line.startswith("feature_infos=")), [])
    rng = np.random.default_rng(seed)
    columns = []
    for info in infos:
        lo, hi = 0.0, 1.0
        if info.startswith("[") and ":" in info:  # "[min:max]"; "none" if constant
            lo, hi = (float(v) for v in info[1:-1].split(":"))
        span = hi - lo or 1.0
        columns.append(rng.uniform(lo - 0.1 * span, hi + 0.1 * span, n))
    return np.column_stack(columns)


def _difference(trees, booster, rows: np.ndarray) -> float:
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    expected = booster.predict(rows, num_threads=1)
    got = trees.predict(rows)
    scale = np.maximum(np.abs(expected), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(got - expected) / scale)) if len(rows) else 0.0


class CompiledTrees:
    """``predict`` through a compiled lleaves model; the same values as the
    booster's ``predict`` (checked to TOLERANCE when made and loaded).

    Calls the compiled entry point directly (it lets go of the GIL), with one
    preallocated row and result per thread for single homes.
    """

    def __init__(self, model, n_features: int, lean=None):
        self._model = model  # keeps the machine code mapped
        self._entry = model._c_entry_func
        self.n_features_in_ = n_features
        self._tls = threading.local()
        if lean is not None:
            #: TreeSHAP values, from LightGBM (the explanations need them).
            self.contributions = lean.contributions

    def predict(self, X) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected (n, {self.n_features_in_}), got {X.shape}")
        if X.shape[0] == 1:
            return self.predict_one(X[0])
        out = np.zeros(X.shape[0], dtype=np.float64)
        self._entry(_pointer(X), _pointer(out), 0, X.shape[0])
        return out

    def predict_one(self, x) -> np.ndarray:
        """One row (length n_features) -> array of shape (1,)."""
        if len(x) != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features")
        try:
            row, row_p, res, res_p = self._tls.st
        except AttributeError:
            row = np.empty(self.n_features_in_, dtype=np.float64)
            res = np.empty(1, dtype=np.float64)
            self._tls.st = row, row_p, res, res_p = (
                row, _pointer(row), res, _pointer(res))
        row[:] = x
        self._entry(row_p, res_p, 0, 1)
        return res.copy()


def _pointer(array: np.ndarray):
    import ctypes

    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
