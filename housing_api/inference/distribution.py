"""Distributions of inputs and prices, and how far apart two of them are.

A numeric distribution is its decile edges and the share of rows in each
bin (``(-inf, e1], (e1, e2], ..., (ek, inf)``); a categorical one (the
zipcode) the share of each value. The population stability index compares
a recent one with the training one: below 0.1 no drift, 0.1 to 0.25
moderate, above 0.25 major, once there are ten rows per bin to judge by.
"""
import math
from collections.abc import Mapping, Sequence

import numpy as np

#: Deciles: the usual resolution for a population stability index.
QUANTILES = tuple(i / 10 for i in range(1, 10))
#: Shares of empty bins count as this much, so that the index stays finite.
FLOOR = 1e-4
MODERATE, MAJOR = 0.1, 0.25


def numeric_distribution(values) -> dict:
    """Decile edges of ``values`` (repeated edges merged) and bin shares."""
    values = np.asarray(values, dtype=np.float64)
    edges = np.unique(np.quantile(values, QUANTILES))
    counts = np.bincount(np.searchsorted(edges, values, side="left"),
                         minlength=len(edges) + 1)
    return {"edges": edges.tolist(), "shares": (counts / len(values)).tolist()}


def categorical_distribution(values: Sequence[str]) -> dict:
    """The share of each value."""
    unique, counts = np.unique(np.asarray(values, dtype=str), return_counts=True)
    return {"shares": dict(zip(unique.tolist(), (counts / len(values)).tolist()))}


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of shares ``actual`` against ``expected``."""
    total = 0.0
    for e, a in zip(expected, actual):
        e, a = max(e, FLOOR), max(a, FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def categorical_psi(expected: Mapping[str, float], counts: Mapping[str, int]) -> float:
    """The index over every value seen in training or now."""
    n = sum(counts.values())
    keys = sorted(set(expected) | set(counts))
    return psi([expected.get(k, 0.0) for k in keys],
               [counts.get(k, 0) / n for k in keys])


#: Rows per bin an index needs before it means anything: with fewer, empty
#: bins alone make it large.
ROWS_PER_BIN = 10


def verdict(index: float | None, rows: int = 0, bins: int = 1) -> str:
    """none, moderate or major; "no data", or "too few rows" to judge."""
    if index is None:
        return "no data"
    if rows < ROWS_PER_BIN * bins:
        return "too few rows"
    return "none" if index < MODERATE else "moderate" if index <= MAJOR else "major"
