"""Exact, low-overhead ``predict`` for LightGBM boosters.

``LeanBooster(booster).predict(x)`` uses LightGBM's single-row fast C API
(``LGBM_BoosterPredictForMatSingleRowFast``) for one row and
``LGBM_BoosterPredictForMat`` for batches.
"""
import ctypes
import threading

import numpy as np

# C_API_PREDICT_NORMAL and C_API_PREDICT_CONTRIB of LightGBM's c_api.h.
_NORMAL, _CONTRIB = 0, 3


class LeanBooster:
    """Low-overhead exact ``predict`` for a LightGBM ``Booster``.

    One row (1-D array or shape (1, n)) goes through the single-row fast C
    API with a FastConfig prepared once per thread; batches call
    ``LGBM_BoosterPredictForMat`` directly.  Same parameters as
    ``Booster.predict(X)`` with defaults (``num_iteration=best_iteration``).
    """

    def __init__(self, booster, *, num_threads=0):
        from lightgbm.basic import _LIB, _safe_call

        self._lib, self._safe_call = _LIB, _safe_call
        #: The booster itself (and it keeps the handle alive).
        self.booster = booster
        self._handle = booster._handle
        self.n_features_in_ = booster.num_feature()
        # Booster.predict(num_iteration=None) passes best_iteration (0 = all).
        self._num_iter = int(booster.best_iteration)
        self._param = f"num_threads={num_threads}".encode() if num_threads else b""
        out = ctypes.c_int64(0)
        _safe_call(_LIB.LGBM_BoosterCalcNumPredict(
            self._handle, ctypes.c_int(1), ctypes.c_int(0), ctypes.c_int(0),
            ctypes.c_int(self._num_iter), ctypes.byref(out)))
        self._n_out = int(out.value)
        # Private CDLL so setting argtypes does not touch lightgbm's _LIB.
        fast = ctypes.CDLL(_LIB._name).LGBM_BoosterPredictForMatSingleRowFast
        fast.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                         ctypes.c_void_p]
        fast.restype = ctypes.c_int
        self._fast = fast
        self._tls = threading.local()
        self._configs = []

    def _thread_state(self):
        # A FastConfig has its own Predictor buffers and a mutex; one per
        # thread avoids contending on that mutex.
        fc = ctypes.c_void_p()
        self._safe_call(self._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
            self._handle, ctypes.c_int(0), ctypes.c_int(0),
            ctypes.c_int(self._num_iter), ctypes.c_int(1),
            ctypes.c_int32(self.n_features_in_), ctypes.c_char_p(self._param),
            ctypes.byref(fc)))
        self._configs.append(fc)
        row = np.empty(self.n_features_in_, dtype=np.float64)
        res = np.empty(self._n_out, dtype=np.float64)
        n_len = ctypes.c_int64(0)
        # Keep n_len referenced: C writes through its address on every call.
        self._tls.keep = n_len
        st = (fc.value, row, row.ctypes.data, res, res.ctypes.data,
              ctypes.addressof(n_len))
        self._tls.st = st
        return st

    def predict(self, X):
        """Same result as ``booster.predict(X)``; 1-D input is one row."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1 or X.shape[0] == 1:
            res = self.predict_one(X.reshape(-1))
            return res if self._n_out == 1 else res.reshape(1, -1)
        return self._predict_mat(X)

    def predict_one(self, x):
        """One row (length n_features) -> raw output array of shape (n_out,)."""
        if len(x) != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features")
        try:
            fc, row, row_p, res, res_p, len_p = self._tls.st
        except AttributeError:
            fc, row, row_p, res, res_p, len_p = self._thread_state()
        row[:] = x
        if self._fast(fc, row_p, len_p, res_p) != 0:
            raise RuntimeError(self._lib.LGBM_GetLastError().decode())
        return res.copy()

    def contributions(self, X):
        """``booster.predict(X, pred_contrib=True)``: TreeSHAP values, one
        column per feature, then the expected value."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, self.n_features_in_)
        return self._predict_mat(X, _CONTRIB, self.n_features_in_ + 1)

    def _predict_mat(self, X, predict_type=_NORMAL, n_out=None):
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected (n, {self.n_features_in_}), got {X.shape}")
        n_out = self._n_out if n_out is None else n_out
        X = np.ascontiguousarray(X)
        nrow = X.shape[0]
        preds = np.empty(nrow * n_out, dtype=np.float64)
        out_len = ctypes.c_int64(0)
        self._safe_call(self._lib.LGBM_BoosterPredictForMat(
            self._handle, ctypes.c_void_p(X.ctypes.data), ctypes.c_int(1),
            ctypes.c_int32(nrow), ctypes.c_int32(X.shape[1]), ctypes.c_int(1),
            ctypes.c_int(predict_type), ctypes.c_int(0),
            ctypes.c_int(self._num_iter), ctypes.c_char_p(self._param),
            ctypes.byref(out_len),
            preds.ctypes.data_as(ctypes.POINTER(ctypes.c_double))))
        return preds if n_out == 1 else preds.reshape(nrow, -1)

    def __del__(self):
        lib = getattr(self, "_lib", None)
        for fc in getattr(self, "_configs", ()):
            if lib is not None and fc.value:
                lib.LGBM_FastConfigFree(fc)
