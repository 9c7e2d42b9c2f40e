"""scikit-learn's fixed-size max-heap of nearest neighbours, ported to Python."""
import numpy as np


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
