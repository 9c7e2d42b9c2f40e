"""The engineered features of one home: the batch code's row, bit for bit, faster.

For one home, the batch code spends most of its time in per-call overhead:
np.median's generic machinery, column_stack, one ufunc call per column, and
the KD-tree's input checks. ``_engineer_one`` computes the same row:
+ - * / and comparisons on Python floats (IEEE float64, as numpy does);
numpy ufuncs for every transcendental function (the implementation the
batch code runs); numpy reductions over the same values in the same order
for every sum (numpy sums 8 or more values pairwise, unlike a Python
loop); medians from sorted values. The neighbours still come from
``tree.query``: homes at equal distances are common (repeat sales, condos)
and only the tree knows the order it returns them in, which the sums see.
tests/inference/test_engineered.py checks that both paths agree bit for bit.
"""
import math
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn import config_context

from ..columns import CLIENT_COLUMNS, NUMERIC_COLUMNS
from .engineered_spec import (
    DEMOGRAPHIC_NAMES, KERNEL_BANDWIDTHS_KM, KM_PER_DEG_LAT, KM_PER_DEG_LON,
    LANDMARKS_KM, LAT0, LON0, NEIGHBOUR_KS, REFERENCE_YEAR, ROTATION_DEGREES,
)
from .neighbours import NeighbourContext

_ZIP_POSITION = CLIENT_COLUMNS.index("zipcode")
_ROTATIONS = tuple(
    (math.cos(math.radians(d)), math.sin(math.radians(d)))
    for d in ROTATION_DEGREES
)
_LANDMARK_XY = tuple(tuple(float(v) for v in xy) for xy in LANDMARKS_KM.values())
_SEATTLE_XY = tuple(float(v) for v in LANDMARKS_KM["seattle"])
_BANDWIDTH_COLUMN = np.array(KERNEL_BANDWIDTHS_KM, dtype=np.float64)[:, None]
_K_MAX = max(NEIGHBOUR_KS)
_DEMOGRAPHIC_POSITIONS: dict[tuple, np.ndarray | None] = {}


def _demographic_positions(names: Sequence[str]) -> np.ndarray | None:
    """Where each of DEMOGRAPHIC_NAMES sits in ``names`` (None if missing)."""
    key = tuple(names)
    if key not in _DEMOGRAPHIC_POSITIONS:
        position = {name: i for i, name in enumerate(key)}
        _DEMOGRAPHIC_POSITIONS[key] = (
            np.array([position[n] for n in DEMOGRAPHIC_NAMES], dtype=np.intp)
            if all(n in position for n in DEMOGRAPHIC_NAMES) else None
        )
    return _DEMOGRAPHIC_POSITIONS[key]


def _sorted_median(values: list[float]) -> float:
    """``np.median`` of sorted values: the middle one or the mean of two."""
    half = len(values) // 2
    if len(values) % 2:
        return values[half]
    return (values[half - 1] + values[half]) / 2


def _maximum(a: float, b: float) -> float:
    """``np.maximum`` of two floats, NaN included: ``a >= b or isnan(a)``."""
    return a if (a >= b or a != a) else b


def engineer_one(
    columns: Mapping[str, np.ndarray],
    demographics: np.ndarray,
    demographic_names: Sequence[str],
    context: NeighbourContext,
) -> np.ndarray | None:
    """The (1, n_features) matrix of one home; equal to ``engineer``'s.

    Returns None unless the input is plainly one home (one-element numeric
    columns, a digit-string zipcode, finite coordinates, non-zero
    divisors, ...): ``engineer`` then runs the batch code, which also
    reports bad input.
    """
    try:
        zipcode = columns["zipcode"]
        numeric = [columns[n] for n in NUMERIC_COLUMNS]
        if len(zipcode) != 1 or set(map(len, numeric)) != {1}:
            return None
        z = zipcode[0]
    except (KeyError, TypeError, IndexError):
        return None
    # An ASCII digit string converts to the same float as numpy's str cast.
    if not (isinstance(z, str) and z.isascii() and z.isdigit() and len(z) < 16):
        return None
    try:
        flat = np.concatenate(numeric)
    except (ValueError, TypeError):
        return None
    if flat.shape != (len(NUMERIC_COLUMNS),) or flat.dtype.kind not in "biuf":
        return None
    if flat.dtype != np.float64:
        flat = flat.astype(np.float64)
    v = dict(zip(NUMERIC_COLUMNS, flat.tolist()))

    demographics = np.asarray(demographics, dtype=np.float64)
    positions = _demographic_positions(demographic_names)
    if positions is None or demographics.shape != (1, len(demographic_names)):
        return None
    one = context.one_home()
    living, lot = v["sqft_living"], v["sqft_lot"]
    living15, lot15 = v["sqft_living15"], v["sqft_lot15"]
    x = (v["long"] - LON0) * KM_PER_DEG_LON
    y = (v["lat"] - LAT0) * KM_PER_DEG_LAT
    if not (one.finite and living and lot and living15 and lot15
            and math.isfinite(x) and math.isfinite(y)):
        return None

    # x and y are finite, so the tree's own finiteness check can be skipped.
    with config_context(assume_finite=True):
        dist, idx = one.tree.query(
            np.array([[x, y]]), k=_K_MAX, sort_results=True)
    dist, idx = dist[0], idx[0]
    d = dist.tolist()
    logs = np.log([
        living, lot, v["sqft_above"], living15, lot15,
        *(d[k - 1] + 0.01 for k in NEIGHBOUR_KS),
    ]).tolist()

    built = _maximum(v["yr_built"], v["yr_renovated"])
    bedrooms = _maximum(v["bedrooms"], 1.0)
    base = [v[n] for n in NUMERIC_COLUMNS]
    base.insert(_ZIP_POSITION, float(z))
    base += [
        REFERENCE_YEAR - v["yr_built"],
        1.0 if v["yr_renovated"] > 0 else 0.0,
        REFERENCE_YEAR - built,
        *logs[:5],
        living / living15,
        lot / lot15,
        living / lot,
        v["sqft_basement"] / living,
        living / bedrooms,
        v["bathrooms"] / bedrooms,
        x,
        y,
    ]
    base += [x * cos + y * sin for cos, sin in _ROTATIONS]
    base += [float(np.hypot(x - lx, y - ly)) for lx, ly in _LANDMARK_XY]
    base.append(float(np.arctan2(y - _SEATTLE_XY[1], x - _SEATTLE_XY[0])))

    near = one.values.take(idx, axis=1)  # log ppsf, log price, log sqft
    ppsf = near[0]
    lists = near.tolist()
    weights = np.exp(-0.5 * (dist / _BANDWIDTH_COLUMN) ** 2) + 1e-12
    # Sums of the ppsf of the first k neighbours (k_max and 15 come along
    # with the other sums of those lengths).
    sums = np.add.reduce(  # ppsf, weights * ppsf, weights
        np.concatenate([near[:1], weights * ppsf, weights]), axis=1).tolist()
    sums15 = np.add.reduce(near[::2, :15], axis=1).tolist()  # ppsf, log sqft
    ppsf_sums = {_K_MAX: sums[0], 15: sums15[0]}
    nb = []
    for i, k in enumerate(NEIGHBOUR_KS):
        total = ppsf_sums[k] if k in ppsf_sums else float(np.add.reduce(ppsf[:k]))
        nb += [_sorted_median(sorted(lists[0][:k])), total / k, logs[5 + i]]
    n_bandwidths = len(KERNEL_BANDWIDTHS_KM)
    nb += [sums[1 + b] / sums[1 + n_bandwidths + b] for b in range(n_bandwidths)]
    deviation = ppsf[:15] - sums15[0] / 15
    np.square(deviation, out=deviation)
    nb += [
        math.sqrt(float(np.add.reduce(deviation)) / 15),
        _sorted_median(sorted(lists[1][:15])),
        sums15[1] / 15,
    ]

    return np.array([base + demographics[0, positions].tolist() + nb])
