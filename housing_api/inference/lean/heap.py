"""scikit-learn's fixed-size max-heap of nearest neighbours, ported to Python."""
import numpy as np
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
from sklearn.utils._sorting import _py_simultaneous_sort

_DBL_MAX = float(np.finfo(np.float64).max)


def heap_push(vals, idxs, size, val, val_idx):
    """Port of sklearn.utils._heap.heap_push (fixed-size max-heap)."""
    if val >= vals[0]:
        return
    cur = 0
    while True:
        left = 2 * cur + 1
        right = left + 1
        if left >= size:
            break
        elif right >= size:
            if vals[left] > val:
                swap = left
            else:
                break
        elif vals[left] >= vals[right]:
            if val < vals[left]:
                swap = left
            else:
                break
        else:
            if val < vals[right]:
                swap = right
            else:
                break
        vals[cur] = vals[swap]
        idxs[cur] = idxs[swap]
        cur = swap
    vals[cur] = val
    idxs[cur] = val_idx


def scan_heap(d, lo, hi, vals, idxs, k):
    """Push d[lo:hi] in index order; only values below the root can enter."""
    j, step = lo, 32
    while j < hi:
        e = min(j + step, hi)
        seg = d[j:e]
        # The root only decreases, so this filter is a superset of the pushes.
        for h in np.flatnonzero(seg < vals[0]).tolist():
            v = float(seg[h])
            if v < vals[0]:
                heap_push(vals, idxs, k, v, j + h)
        j = e
        step = min(step * 2, 8192)


def replay_selection(d, k, chunk_size, n_x):
    """Reproduce sklearn's heap-based selection and ordering for one row.

    ``d``: the row's exact distances to all training rows; ``chunk_size``:
    sklearn's Y chunk; ``n_x``: rows in the whole query (it picks the
    parallel strategy, hence the heaps' split).
    """
    n, cs = d.size, chunk_size
    n_threads = _openmp_effective_n_threads()
    y_chunk = min(n, cs)
    y_n_chunks = -(-n // y_chunk)
    on_y = not (n < n_x or 4 * cs * n_threads < n_x)
    t = min(y_n_chunks, n_threads) if on_y else 1
    if not on_y:
        # parallel_on_X: each row's heap scans all of Y in order.
        vals, idxs = [_DBL_MAX] * k, [0] * k
        scan_heap(d, 0, n, vals, idxs, k)
    else:
        # Thread heaps over OpenMP schedule(static) blocks of Y chunks,
        # then pushed in thread order into the main heap.
        q, rem = divmod(y_n_chunks, t)
        vals, idxs = [_DBL_MAX] * k, [0] * k
        for tid in range(t):
            c0 = q * tid + min(tid, rem)
            c1 = c0 + q + (tid < rem)
            hv, hi = [_DBL_MAX] * k, [-1] * k
            scan_heap(d, c0 * y_chunk, min(c1 * y_chunk, n), hv, hi, k)
            for v, i in zip(hv, hi):
                heap_push(vals, idxs, k, v, i)
    va = np.array(vals, dtype=np.float64)
    ia = np.array(idxs, dtype=np.intp)
    _py_simultaneous_sort(va, ia, k, use_three_way_partition=False)
    return va, ia
