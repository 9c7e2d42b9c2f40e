"""Exact, low-overhead ``predict`` for RobustScaler+KNN pipelines.

``LeanKNN(pipeline).predict(X)`` returns bit-for-bit what ``pipeline.predict``
returns for ``make_pipeline(RobustScaler(), KNeighborsRegressor(...))``.

Brute-force fits (what ``algorithm='auto'`` picks for > 15 features), small
batches: re-implemented on the very BLAS calls scikit-learn makes
(``scipy.linalg.blas.dgemm`` with sklearn's operand layout, its X and Y
chunks and one BLAS thread, plus sklearn's own ``ddot`` row norms), so every
surrogate distance is bit-identical.  The chunks matter: OpenBLAS picks its
kernel by the matrix shape (AVX-512 builds take a "small matrix" kernel for
some shapes), and two kernels round differently.  The k nearest are selected
with numpy; rows where equal distances make the choice, or an order that
matters, depend on sklearn's heap mechanics are replayed exactly (max-heap
push, the per-thread split of ``parallel_on_Y`` and the final insertion/intro
sort).  Batches of 64 rows and more call sklearn's ``ArgKmin`` directly (the
same call ``kneighbors`` makes, minus the validation): its C heap loop is as
fast there, and faster beyond.

KD-tree / ball-tree fits call the fitted tree's ``query`` directly, which is
what sklearn does after its input validation.
"""
import numpy as np
from scipy.linalg import blas as _blas
from sklearn import get_config
from sklearn.metrics._pairwise_distances_reduction import ArgKmin
from sklearn.metrics._pairwise_distances_reduction._base import (
    _sqeuclidean_row_norms64,
)
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neighbors._base import _get_weights
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import RobustScaler

from .blas import OneBlasThread
from .heap import replay_selection
from .knn_groups import TailGroups

_GROUP = 64  # columns per group for the block-min prefilter
_AR = np.arange(_GROUP)
_TILE = 16  # rows: a multiple of every x86-64 and ARM DGEMM kernel's tile


class UnsupportedModel(TypeError):
    """The model is outside what the lean path reproduces exactly."""


class LeanKNN:
    """Exact fast ``predict`` for ``make_pipeline(RobustScaler(), KNNRegressor)``.

    X must be a float array with columns in ``feature_names_in_`` order; a
    1-D array is one row.  Batches of ``argkmin_from`` rows or more go to
    sklearn's ``ArgKmin``; smaller ones to the numpy path, which holds two
    ``rows x n_train`` float64 buffers (grown on demand: 2 x 130 kB for a
    single row here, 2 x 8 MB for 63 rows).
    Not thread-safe: use one instance per thread.
    """

    def __init__(self, pipeline, *, argkmin_from=64):
        scaler, knn = self._check_pipeline(pipeline)
        self.feature_names_in_ = getattr(pipeline, "feature_names_in_", None)
        self.n_features_in_ = int(knn.n_features_in_)
        self._center = scaler.center_ if scaler.with_centering else None
        self._scale = scaler.scale_ if scaler.with_scaling else None
        self._k = int(knn.n_neighbors)
        self._weights = knn.weights
        self._y = knn._y
        self._method = knn._fit_method
        self.n_replayed = 0  # rows that needed the exact heap replay
        if self._method == "brute":
            self._init_brute(knn, argkmin_from)
        else:
            self._tree = knn._tree

    @staticmethod
    def _check_pipeline(pipeline):
        if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
            raise UnsupportedModel("expected a 2-step Pipeline")
        scaler, knn = pipeline.steps[0][1], pipeline.steps[1][1]
        if type(scaler) is not RobustScaler or type(knn) is not KNeighborsRegressor:
            raise UnsupportedModel("expected RobustScaler -> KNeighborsRegressor")
        if not hasattr(knn, "_fit_X") or not hasattr(scaler, "scale_"):
            raise UnsupportedModel("pipeline is not fitted")
        if knn.weights not in ("uniform", "distance", None):
            raise UnsupportedModel(f"weights={knn.weights!r} is not supported")
        if knn.metric == "precomputed":
            raise UnsupportedModel("metric='precomputed' is not supported")
        if knn._fit_method not in ("brute", "kd_tree", "ball_tree"):
            raise UnsupportedModel(f"unknown _fit_method {knn._fit_method!r}")
        if knn.n_neighbors > knn.n_samples_fit_:
            raise UnsupportedModel("n_neighbors > n_samples_fit")
        return scaler, knn

    def _init_brute(self, knn, argkmin_from):
        Y = knn._fit_X
        if not (isinstance(Y, np.ndarray) and Y.dtype == np.float64
                and Y.flags.c_contiguous):
            raise UnsupportedModel("brute path needs a C-ordered float64 _fit_X")
        self._metric = knn.effective_metric_
        if self._metric not in ("euclidean", "sqeuclidean"):
            raise UnsupportedModel(f"brute metric {self._metric!r} is not supported")
        if knn.effective_metric_params_:
            raise UnsupportedModel("metric_params are not supported")
        if not ArgKmin.is_usable_for(Y[:1], Y, self._metric):
            # sklearn would take its joblib/argpartition fallback instead.
            raise UnsupportedModel("sklearn would not use ArgKmin here")
        cfg = get_config()
        if cfg.get("pairwise_dist_parallel_strategy", "auto") != "auto":
            raise UnsupportedModel("only pairwise_dist_parallel_strategy='auto'")
        # sklearn's chunk size, at least 20 rows (BaseDistancesReductionDispatcher).
        self._cs = max(int(cfg.get("pairwise_dist_chunk_size", 256)), 20)
        self._argkmin_from = argkmin_from
        self._Y = Y
        n = self._n = Y.shape[0]
        self._Yn = np.asarray(_sqeuclidean_row_norms64(Y, 1))
        self._yn_max = float(self._Yn.max())
        # Prefilter groups: column j + q*t for t < 64 (vector-min friendly),
        # plus one contiguous tail group.
        q, tail = divmod(n, _GROUP)
        self._q, self._tail = q, tail
        first = np.arange(q + (tail > 0), dtype=np.intp)
        stride = np.full(first.size, q, dtype=np.intp)
        length = np.full(first.size, _GROUP, dtype=np.intp)
        if tail:
            first[-1], stride[-1], length[-1] = q * _GROUP, 1, tail
        self._g_first, self._g_stride, self._g_len = first, stride, length
        self._buf = np.empty(0)
        self._scratch = np.empty(0)
        self._y2 = self._y.reshape(len(self._y), -1)
        # A uniform mean of integer targets is exact in any summation order.
        self._sum_exact = bool(
            self._weights in ("uniform", None)
            and np.issubdtype(self._y.dtype, np.number)
            and np.all(np.mod(self._y2, 1) == 0)
            and self._k * float(np.abs(self._y2).max()) < 2.0 ** 53
        )
        self._blas1 = OneBlasThread()
        # sklearn's last Y chunk may end in a partial register tile, whose
        # rows the padded candidate block would round differently.
        last = n % self._cs or self._cs
        self._ragged_from = n - last % _TILE
        self._groups = TailGroups.find(Y)
        if self._groups is not None and not self._groups_agree():
            self._groups = None

    def _groups_agree(self, rows=32):
        """Check the grouped single-row path against the full one here."""
        step = max(1, self._n // rows)
        queries = self._Y[::step][:rows] + 0.01
        k = self._k
        for x in queries:
            Xc = x[None]
            got, ref = np.empty((1, k)), np.empty((1, k))
            got_i, ref_i = np.empty((1, k), np.intp), np.empty((1, k), np.intp)
            with self._blas1:
                if not self._one_grouped(Xc, True, got, got_i):
                    continue
                self._chunk(Xc, 1, True, ref, ref_i)
            if not (np.array_equal(got, ref) and np.array_equal(got_i, ref_i)):
                return False
        return True

    # -- public -----------------------------------------------------------

    @property
    def n_neighbors(self) -> int:
        return self._k

    @property
    def weights(self):
        return self._weights

    @property
    def targets(self) -> np.ndarray:
        """The training targets, by training row."""
        return self._y

    def predict(self, X):
        """Predict like ``pipeline.predict`` for rows of X (2-D, or 1-D = 1 row)."""
        Xs = self._scale_rows(X)
        if self._method == "brute":
            dist, ind = self._kneighbors_brute(Xs, self._weights == "distance")
        else:
            res = self._tree.query(Xs, self._k, self._weights == "distance")
            dist, ind = res if isinstance(res, tuple) else (None, res)
        return self._aggregate(dist, ind)

    def kneighbors(self, X, k=None):
        """(distances, indices) exactly as ``KNeighborsRegressor.kneighbors``
        with ``n_neighbors=k`` (the fitted number by default)."""
        k = self._k if k is None else int(k)
        if not 0 < k <= len(self._y):
            raise ValueError(f"k must be in [1, {len(self._y)}], got {k}")
        Xs = self._scale_rows(X)
        if self._method != "brute":
            return self._tree.query(Xs, k, True)
        if k == self._k:
            return self._kneighbors_brute(Xs, True, exact_order=True)
        return ArgKmin.compute(X=Xs, Y=self._Y, k=k, metric=self._metric,
                               metric_kwargs={}, strategy="auto",
                               return_distance=True)

    # -- internals --------------------------------------------------------

    def _scale_rows(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected (n, {self.n_features_in_}), got {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("Input X contains NaN or infinity.")
        # RobustScaler.transform: X -= center_; X /= scale_ on a C-ordered copy.
        if self._center is not None:
            Xs = np.subtract(X, self._center, order="C")
        else:
            Xs = np.array(X, order="C", copy=True)
        if self._scale is not None:
            Xs /= self._scale
        return Xs

    def _aggregate(self, dist, ind):
        # Mirrors KNeighborsRegressor.predict operation for operation.
        weights = _get_weights(dist, self._weights)
        _y = self._y
        if _y.ndim == 1:
            _y = _y.reshape((-1, 1))
        if weights is None:
            y_pred = np.mean(_y[ind], axis=1)
        else:
            y_pred = np.empty((dist.shape[0], _y.shape[1]), dtype=np.float64)
            denom = np.sum(weights, axis=1)
            for j in range(_y.shape[1]):
                num = np.sum(_y[ind, j] * weights, axis=1)
                y_pred[:, j] = num / denom
        if self._y.ndim == 1:
            y_pred = y_pred.ravel()
        return y_pred

    def _kneighbors_brute(self, Xs, need_dist, exact_order=False):
        n_x, k, cs = Xs.shape[0], self._k, self._cs
        if n_x >= self._argkmin_from:
            # The exact call KNeighborsMixin.kneighbors makes.
            res = ArgKmin.compute(X=Xs, Y=self._Y, k=k, metric=self._metric,
                                  metric_kwargs={}, strategy="auto",
                                  return_distance=need_dist)
            return res if need_dist else (None, res)
        ind = np.empty((n_x, k), dtype=np.intp)
        dist = np.empty((n_x, k), dtype=np.float64)
        if n_x == 1 and self._groups is not None:
            with self._blas1:
                if not self._one_grouped(Xs, exact_order, dist, ind):
                    self._chunk(Xs, n_x, exact_order, dist, ind)
            if need_dist and self._metric == "euclidean":
                np.sqrt(dist, out=dist)
            return (dist if need_dist else None), ind
        x_chunk = min(n_x, cs)
        with self._blas1:
            # sklearn's X chunks, whole: a GEMM with fewer columns may take
            # another kernel.
            for xs in range(0, n_x, x_chunk):
                xe = min(xs + x_chunk, n_x)
                self._chunk(Xs[xs:xe], n_x, exact_order, dist[xs:xe], ind[xs:xe])
        if need_dist and self._metric == "euclidean":
            np.sqrt(dist, out=dist)
        return (dist if need_dist else None), ind

    def _chunk(self, Xc, n_x, exact_order, dist_out, ind_out):
        m, n, k = Xc.shape[0], self._n, self._k
        if self._buf.size < m * n + _GROUP:
            self._buf = np.empty(m * n + _GROUP)
            self._scratch = np.empty(m * n)
        mid = self._buf[:m * n].reshape(m, n)
        self._middle(Xc, mid)
        if m == 1:
            # Same ddot sklearn's _sqeuclidean_row_norms64 runs, less overhead.
            qn = np.array([_blas.ddot(Xc[0], Xc[0])])
        else:
            qn = np.asarray(_sqeuclidean_row_norms64(Xc, 1))
        # Prefilter on e = mid + yn; the exact (qn + mid) + yn comes later.
        e = np.add(mid, self._Yn, out=self._scratch[:m * n].reshape(m, n))
        q = self._q
        bm = np.empty((m, self._g_first.size))
        np.minimum.reduce(e[:, :q * _GROUP].reshape(m, _GROUP, q), axis=1,
                          out=bm[:, :q])
        if self._tail:
            np.min(e[:, q * _GROUP:], axis=1, out=bm[:, q])
        if bm.shape[1] > k:
            thr = np.partition(bm, k - 1, axis=1)[:, k - 1]
        else:
            thr = np.full(m, np.inf)
        # d and qn + e differ by a few ulps of 2 * (qn + max yn); the margin
        # keeps every j with d_j <= max(kth d, 0) (sklearn clamps at 0).
        thr = np.maximum(thr, -qn) + (2.0 ** -49) * (qn + self._yn_max)
        if m == 1:
            self._finish_one(mid[0], e[0], qn[0], thr[0], n_x, exact_order,
                             dist_out, ind_out)
            return
        r, g = np.nonzero(bm <= thr[:, None])
        step = self._g_stride[g][:, None] * _AR
        cols = (self._g_first[g][:, None] + step).clip(max=n - 1)
        midc = mid[r[:, None], cols]
        ok = (midc + self._Yn[cols] <= thr[r][:, None]) & (
            _AR < self._g_len[g][:, None])
        pi, pj = np.nonzero(ok)
        rows, cols, midc = r[pi], cols[pi, pj], midc[pi, pj]
        # Exactly sklearn's arithmetic: max(0, (qn + mid) + yn).
        v = np.maximum((qn[rows] + midc) + self._Yn[cols], 0.0)
        order = np.lexsort((cols, v, rows))
        rows, cols, v = rows[order], cols[order], v[order]
        counts = np.bincount(rows, minlength=m)
        starts = np.cumsum(counts) - counts
        pos = starts[:, None] + np.arange(k)
        top_v, top_i = v[pos], cols[pos]
        # Which tied neighbours win, and their order, follow sklearn's heap.
        nxt = v[np.minimum(starts + k, v.size - 1)]
        special = (counts > k) & (nxt == top_v[:, -1])
        if k > 1:
            tie = top_v[:, 1:] == top_v[:, :-1]
            if not exact_order:
                tie &= ~self._order_free(top_i)
            special |= tie.any(axis=1)
        special = np.flatnonzero(special).tolist()
        self.n_replayed += len(special)
        for i in special:
            d = (qn[i] + mid[i]) + self._Yn
            np.maximum(d, 0.0, out=d)
            top_v[i], top_i[i] = self._replay(d, n_x)
        dist_out[:] = top_v
        ind_out[:] = top_i

    def _middle(self, Xc, mid):
        """``mid = -2 Xc Y^T``, one GEMM per Y chunk as sklearn calls it."""
        # Same BLAS call as sklearn's _gemm(RowMajor, NoTrans, Trans, ...) on
        # each (X chunk, Y chunk) pair: same shapes, hence the same kernel.
        cs, Y = self._cs, self._Y
        if Xc.shape[0] == 1:
            for s in range(0, self._n, cs):  # a 1-row C is contiguous
                _blas.dgemm(-2.0, Y[s:s + cs].T, Xc.T, beta=0.0,
                            c=mid[:, s:s + cs].T, trans_a=1, overwrite_c=1)
            return
        for s in range(0, self._n, cs):
            mid[:, s:s + cs] = _blas.dgemm(-2.0, Y[s:s + cs].T, Xc.T,
                                           trans_a=1).T

    def _one_grouped(self, Xc, exact_order, dist_out, ind_out):
        """One row through the tail groups; False when sklearn's heap decides.

        The candidates are every training row whose distance can be within
        rounding of the k-th smallest; their exact distances come from the
        same BLAS call as the full path, on those rows only.
        """
        k = self._k
        x = Xc[0]
        qn = _blas.ddot(x, x)
        cand = self._groups.candidates(x, k, 2.0 ** -40 * (qn + self._yn_max))
        if cand.max() >= self._ragged_from:
            return False
        # BLAS kernels round the rows of a block that does not fill a whole
        # register tile differently: pad to whole tiles, as in sklearn's call.
        c = cand.size
        rows = np.empty(-(-c // _TILE) * _TILE, dtype=np.intp)
        rows[:c], rows[c:] = cand, cand[0]
        Yc = self._Y[rows]
        mid = np.empty((1, rows.size))
        _blas.dgemm(-2.0, Yc.T, Xc.T, beta=0.0, c=mid.T, trans_a=1, overwrite_c=1)
        # Exactly sklearn's arithmetic: max(0, (qn + mid) + yn).
        v = np.maximum((qn + mid[0, :c]) + self._Yn[cand], 0.0)
        order = np.lexsort((cand, v))
        vs, cs = v[order].tolist(), cand[order].tolist()
        if len(vs) > k and vs[k] == vs[k - 1]:
            return False
        ties = [a == b for a, b in zip(vs[:k - 1], vs[1:k])]
        if any(ties) and (exact_order or not self._order_free(
                np.array([cs[:k]]))[0][np.array(ties)].all()):
            return False
        dist_out[0] = vs[:k]
        ind_out[0] = cs[:k]
        return True

    def _finish_one(self, mid, e, qn, thr, n_x, exact_order, dist_out, ind_out):
        """Single-row selection with Python scalars (fewer numpy calls)."""
        k = self._k
        cols = np.flatnonzero(e <= thr)
        v = np.maximum((qn + mid[cols]) + self._Yn[cols], 0.0)
        order = np.lexsort((cols, v))
        vs, cs = v[order].tolist(), cols[order].tolist()
        special = len(vs) > k and vs[k] == vs[k - 1]
        if not special and any(a == b for a, b in zip(vs[:k - 1], vs[1:k])):
            top = np.array([cs[:k]])
            tie = np.array([[a == b for a, b in zip(vs[:k - 1], vs[1:k])]])
            special = exact_order or bool((tie & ~self._order_free(top)).any())
        if special:
            self.n_replayed += 1
            d = np.maximum((qn + mid) + self._Yn, 0.0)
            dist_out[0], ind_out[0] = self._replay(d, n_x)
        else:
            dist_out[0] = vs[:k]
            ind_out[0] = cs[:k]

    def _order_free(self, top_i):
        """Per adjacent pair: does swapping them leave predict unchanged?"""
        if self._sum_exact:
            return np.ones((top_i.shape[0], top_i.shape[1] - 1), dtype=bool)
        yv = self._y2[top_i]
        # Equal distances give equal weights, so equal targets commute.
        return (yv[:, 1:] == yv[:, :-1]).all(axis=2)

    def _replay(self, d, n_x):
        return replay_selection(d, self._k, self._cs, n_x)
