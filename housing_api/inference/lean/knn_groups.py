"""Training rows grouped by their trailing columns, for the one-home k-NN search."""
import numpy as np


class TailGroups:
    """Training rows grouped by their trailing columns, when those repeat.

    The reference features end with the zipcode's demographics: about 70
    distinct tails over 16,000 rows. The squared distance splits into a head
    part (a few columns, per row) and a tail part (one value per group), so
    a query only needs the rows of the groups whose tail alone is not
    already farther than its k-th nearest.
    """

    MIN_ROWS_PER_GROUP = 8
    #: Up to this many groups, the tail distances between groups are kept.
    MAX_TABLE = 256

    def __init__(self, Y, split, inverse, tails):
        order = np.argsort(inverse, kind="stable")
        self.rows = order.astype(np.intp)  # training row of each position
        self.head = np.ascontiguousarray(Y[order, :split])
        self.tails = np.ascontiguousarray(tails)
        self.split = split
        counts = np.bincount(inverse, minlength=len(tails))
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts
        # A query's tail is usually one of the groups' own (its zipcode's
        # demographics): then its tail distances are known in advance.
        self._group_of = {}
        if len(tails) <= self.MAX_TABLE:
            self._group_of = {t.tobytes(): g for g, t in enumerate(self.tails)}
            self._table = np.array([np.einsum("hj,hj->h", t, t) for t in (
                self.tails - tail for tail in self.tails)])
            self._nearest = np.argsort(self._table, axis=1, kind="stable")
            self._sorted = np.take_along_axis(self._table, self._nearest, axis=1)
            sizes = counts[self._nearest]
            self._cumsizes = np.cumsum(sizes, axis=1)

    @classmethod
    def find(cls, Y):
        """Group by the longest trailing block with few distinct rows, or None.

        Refined one column at a time from the right, so that no temporary is
        larger than a column: big short-lived arrays would leave the master's
        heap fragmented across model reloads.
        """
        n, d = Y.shape
        limit = n // cls.MIN_ROWS_PER_GROUP
        inverse, first, split = np.zeros(n, dtype=np.intp), None, d
        for p in range(d - 1, 0, -1):
            _, column = np.unique(Y[:, p], return_inverse=True)
            keys = inverse * (int(column.max()) + 1) + column.reshape(-1)
            _, refined_first, refined = np.unique(
                keys, return_index=True, return_inverse=True)
            if len(refined_first) > limit:
                break
            inverse, first, split = refined.reshape(-1), refined_first, p
        if split == d:
            return None
        return cls(Y, split, inverse, Y[first, split:])

    def candidates(self, x, k, margin):
        """Training rows whose distance to x may be among the k smallest.

        ``margin`` bounds how far the distances computed here and sklearn's
        can be from the true ones.
        """
        g = self._group_of.get(x[self.split:].tobytes())
        if g is not None:
            tail_d, groups = self._table[g], self._nearest[g]
            sorted_d, cumsizes = self._sorted[g], self._cumsizes[g]
        else:
            tail = self.tails - x[self.split:]
            tail_d = np.einsum("ij,ij->i", tail, tail)
            groups = np.argsort(tail_d, kind="stable")
            sorted_d = tail_d[groups]
            cumsizes = np.cumsum(self.ends[groups] - self.starts[groups])
        # Nearest groups (by their tails alone) until they hold k rows.
        first = int(np.searchsorted(cumsizes, k)) + 1
        pos, dist = self._distances(x, groups[:first], tail_d)
        bound = np.partition(dist, k - 1)[k - 1] + 2 * margin
        # Every group whose tail alone is within the bound.
        more = int(np.searchsorted(sorted_d, bound + margin, side="right"))
        if more > first:
            pos2, dist2 = self._distances(x, groups[first:more], tail_d)
            pos, dist = np.concatenate([pos, pos2]), np.concatenate([dist, dist2])
        return self.rows[pos[dist <= bound]]

    def _distances(self, x, groups, tail_d):
        if len(groups) == 1:  # the usual case: the query's own zipcode
            a, b = int(self.starts[groups[0]]), int(self.ends[groups[0]])
            head = self.head[a:b] - x[:self.split]
            return (np.arange(a, b),
                    np.einsum("ij,ij->i", head, head) + tail_d[groups[0]])
        starts, ends = self.starts[groups], self.ends[groups]
        pos = np.concatenate([np.arange(a, b) for a, b in
                              zip(starts.tolist(), ends.tolist())])
        head = self.head[pos] - x[:self.split]
        dist = np.einsum("ij,ij->i", head, head) + np.repeat(
            tail_d[groups], ends - starts)
        return pos, dist
