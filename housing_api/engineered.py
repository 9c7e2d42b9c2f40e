"""Engineered features for the boosted model: one function for training and serving.

Everything a client sends (the 18 columns) plus zipcode demographics, turned
into sizes, ages, ratios, projected coordinates, and neighbourhood prices:
summaries of the log price per square foot of the nearest *training* homes.
At training time those are computed out of fold (see ``boosting``); at
serving time from every training home, stored with the version as plain
arrays (``neighbours.npz``, loaded without pickle).
"""
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn import config_context
from sklearn.neighbors import KDTree

from .features import CLIENT_COLUMNS, FeatureSet

DEMOGRAPHIC_NAMES = (
    "ppltn_qty", "urbn_ppltn_qty", "sbrbn_ppltn_qty", "farm_ppltn_qty",
    "non_farm_qty", "medn_hshld_incm_amt", "medn_incm_per_prsn_amt",
    "hous_val_amt", "edctn_less_than_9_qty", "edctn_9_12_qty",
    "edctn_high_schl_qty", "edctn_some_clg_qty", "edctn_assoc_dgre_qty",
    "edctn_bchlr_dgre_qty", "edctn_prfsnl_qty", "per_urbn", "per_sbrbn",
    "per_farm", "per_non_farm", "per_less_than_9", "per_9_to_12", "per_hsd",
    "per_some_clg", "per_assoc", "per_bchlr", "per_prfsnl",
)

# The data cover sales from May 2014 to May 2015.
REFERENCE_YEAR = 2015
# Local equirectangular projection around the county centre, in kilometres.
_LAT0, _LON0 = 47.56, -122.21
_KM_PER_DEG_LAT = 111.13
_KM_PER_DEG_LON = 111.32 * math.cos(math.radians(_LAT0))
_LANDMARKS = {
    "seattle": (47.6062, -122.3321),
    "bellevue": (47.6101, -122.2015),
}
_ROTATION_DEGREES = (15, 30, 45, 60, 75, 105, 120, 135, 150, 165)
NEIGHBOUR_KS = (5, 15, 50)
_KERNEL_BANDWIDTHS_KM = (0.5, 2.0)


def _base_feature_names() -> list[str]:
    names = list(CLIENT_COLUMNS)
    names += [
        "age", "renovated", "years_since_update", "log_sqft_living",
        "log_sqft_lot", "log_sqft_above", "log_sqft_living15", "log_sqft_lot15",
        "living_over_living15", "lot_over_lot15", "living_over_lot",
        "basement_fraction", "sqft_per_bedroom", "bathrooms_per_bedroom",
        "x_km", "y_km",
    ]
    names += [f"rot_{d}" for d in _ROTATION_DEGREES]
    names += [f"dist_{name}_km" for name in _LANDMARKS]
    names += ["bearing_seattle"]
    return names


def _neighbour_feature_names() -> list[str]:
    names = []
    for k in NEIGHBOUR_KS:
        names += [f"nb{k}_ppsf_median", f"nb{k}_ppsf_mean", f"nb{k}_log_dist"]
    names += [f"nb_kernel{b}_ppsf" for b in _KERNEL_BANDWIDTHS_KM]
    names += ["nb15_ppsf_std", "nb15_price_median", "nb15_log_sqft_mean"]
    return names


def feature_names() -> list[str]:
    """Return the fixed column order of the matrix built by ``engineer``."""
    return (
        _base_feature_names() + list(DEMOGRAPHIC_NAMES) + _neighbour_feature_names()
    )


FEATURE_NAMES = tuple(feature_names())


def _to_km(lat: np.ndarray, long: np.ndarray) -> np.ndarray:
    x = (np.asarray(long, dtype=np.float64) - _LON0) * _KM_PER_DEG_LON
    y = (np.asarray(lat, dtype=np.float64) - _LAT0) * _KM_PER_DEG_LAT
    return np.column_stack([x, y])


_LANDMARKS_KM = {
    name: _to_km(np.array([lat]), np.array([long]))[0]
    for name, (lat, long) in _LANDMARKS.items()
}


@dataclass
class NeighbourContext:
    """Reference homes (training sales) used for neighbourhood price features.

    ``xy`` holds projected coordinates in km, ``log_ppsf`` the log price per
    square foot of living area, ``log_price`` the log sale price and
    ``log_sqft`` the log living area. The KD-tree is rebuilt on construction,
    so only the four arrays need storing.
    """

    xy: np.ndarray
    log_ppsf: np.ndarray
    log_price: np.ndarray
    log_sqft: np.ndarray
    tree: KDTree = field(init=False, repr=False)
    _one: "_OneHome | None" = field(
        init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        self.xy = np.ascontiguousarray(self.xy, dtype=np.float64)
        self.log_ppsf = np.asarray(self.log_ppsf, dtype=np.float64)
        self.log_price = np.asarray(self.log_price, dtype=np.float64)
        self.log_sqft = np.asarray(self.log_sqft, dtype=np.float64)
        if len(self.xy) < max(NEIGHBOUR_KS):
            raise ValueError("need at least max(NEIGHBOUR_KS) reference homes")
        self.tree = KDTree(self.xy)

    @classmethod
    def from_sales(
        cls, lat: np.ndarray, long: np.ndarray, price: np.ndarray,
        sqft_living: np.ndarray,
    ) -> "NeighbourContext":
        """Build a context from raw sale columns."""
        log_price = np.log(np.asarray(price, dtype=np.float64))
        log_sqft = np.log(np.asarray(sqft_living, dtype=np.float64))
        return cls(_to_km(lat, long), log_price - log_sqft, log_price, log_sqft)

    def subset(self, mask: np.ndarray) -> "NeighbourContext":
        """Return a context restricted to the reference homes in ``mask``."""
        return NeighbourContext(
            self.xy[mask], self.log_ppsf[mask], self.log_price[mask],
            self.log_sqft[mask],
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """Return the arrays needed to rebuild this context (npz-friendly)."""
        return {
            "xy": self.xy, "log_ppsf": self.log_ppsf,
            "log_price": self.log_price, "log_sqft": self.log_sqft,
        }

    def to_npz(self) -> bytes:
        """Serialize the arrays as an ``.npz`` file (plain numbers only)."""
        buffer = io.BytesIO()
        np.savez(buffer, **self.arrays())
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, path) -> "NeighbourContext":
        """Load arrays saved by ``to_npz``; object arrays are refused."""
        with np.load(path, allow_pickle=False) as npz:
            names = ("xy", "log_ppsf", "log_price", "log_sqft")
            return cls(**{k: npz[k] for k in names})

    def one_home(self) -> "_OneHome":
        """State for describing one home at a time, built on first use."""
        if self._one is None:
            self._one = _OneHome(self)
        return self._one


def _neighbour_features(xy: np.ndarray, context: NeighbourContext) -> np.ndarray:
    k_max = max(NEIGHBOUR_KS)
    dist, idx = context.tree.query(xy, k=k_max, sort_results=True)
    ppsf = context.log_ppsf[idx]
    cols = []
    for k in NEIGHBOUR_KS:
        cols += [
            np.median(ppsf[:, :k], axis=1),
            ppsf[:, :k].mean(axis=1),
            np.log(dist[:, k - 1] + 0.01),
        ]
    for bandwidth in _KERNEL_BANDWIDTHS_KM:
        weights = np.exp(-0.5 * (dist / bandwidth) ** 2) + 1e-12
        cols.append((weights * ppsf).sum(axis=1) / weights.sum(axis=1))
    cols += [
        ppsf[:, :15].std(axis=1),
        np.median(context.log_price[idx[:, :15]], axis=1),
        context.log_sqft[idx[:, :15]].mean(axis=1),
    ]
    return np.column_stack(cols)


# One home at a time ---------------------------------------------------------
#
# For one home, the batch code spends most of its time in per-call overhead:
# np.median's generic machinery, column_stack, one ufunc call per column, and
# the KD-tree's input checks. ``_engineer_one`` computes the same row:
# + - * / and comparisons on Python floats (IEEE float64, as numpy does);
# numpy ufuncs for every transcendental function (the implementation the
# batch code runs); numpy reductions over the same values in the same order
# for every sum (numpy sums 8 or more values pairwise, unlike a Python
# loop); medians from sorted values. The neighbours still come from
# ``tree.query``: homes at equal distances are common (repeat sales, condos)
# and only the tree knows the order it returns them in, which the sums see.
# tests/test_engineered.py checks that both paths agree bit for bit.

_NUMERIC_COLUMNS = tuple(n for n in CLIENT_COLUMNS if n != "zipcode")
_ZIP_POSITION = CLIENT_COLUMNS.index("zipcode")
_ROTATIONS = tuple(
    (math.cos(math.radians(d)), math.sin(math.radians(d)))
    for d in _ROTATION_DEGREES
)
_LANDMARK_XY = tuple(tuple(float(v) for v in xy) for xy in _LANDMARKS_KM.values())
_SEATTLE_XY = tuple(float(v) for v in _LANDMARKS_KM["seattle"])
_BANDWIDTH_COLUMN = np.array(_KERNEL_BANDWIDTHS_KM, dtype=np.float64)[:, None]
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


class _OneHome:
    """A context's arrays laid out for describing one home at a time."""

    def __init__(self, context: NeighbourContext):
        self.tree = context.tree
        self.values = np.stack(
            [context.log_ppsf, context.log_price, context.log_sqft])
        # Medians below sort with Python, which orders NaN differently.
        self.finite = bool(np.isfinite(self.values).all())


def _engineer_one(
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
        numeric = [columns[n] for n in _NUMERIC_COLUMNS]
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
    if flat.shape != (len(_NUMERIC_COLUMNS),) or flat.dtype.kind not in "biuf":
        return None
    if flat.dtype != np.float64:
        flat = flat.astype(np.float64)
    v = dict(zip(_NUMERIC_COLUMNS, flat.tolist()))

    demographics = np.asarray(demographics, dtype=np.float64)
    positions = _demographic_positions(demographic_names)
    if positions is None or demographics.shape != (1, len(demographic_names)):
        return None
    one = context.one_home()
    living, lot = v["sqft_living"], v["sqft_lot"]
    living15, lot15 = v["sqft_living15"], v["sqft_lot15"]
    x = (v["long"] - _LON0) * _KM_PER_DEG_LON
    y = (v["lat"] - _LAT0) * _KM_PER_DEG_LAT
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
    base = [v[n] for n in _NUMERIC_COLUMNS]
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
    n_bandwidths = len(_KERNEL_BANDWIDTHS_KM)
    nb += [sums[1 + b] / sums[1 + n_bandwidths + b] for b in range(n_bandwidths)]
    deviation = ppsf[:15] - sums15[0] / 15
    np.square(deviation, out=deviation)
    nb += [
        math.sqrt(float(np.add.reduce(deviation)) / 15),
        _sorted_median(sorted(lists[1][:15])),
        sums15[1] / 15,
    ]

    return np.array([base + demographics[0, positions].tolist() + nb])


def _column(columns: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    if name not in columns:
        raise KeyError(f"missing client column {name!r}")
    return np.asarray(columns[name], dtype=np.float64)


def engineer(
    columns: Mapping[str, np.ndarray],
    demographics: np.ndarray,
    demographic_names: Sequence[str],
    context: NeighbourContext | None,
) -> np.ndarray:
    """Build the float64 feature matrix (order ``FEATURE_NAMES``).

    ``columns`` maps the 18 client column names to equal-length arrays
    (``zipcode`` may be str). ``demographics`` holds, row for row, the zipcode
    demographics of each home with columns named by ``demographic_names``.
    ``context`` holds the reference homes for the neighbourhood features.
    A single home takes a faster path with bit-identical output.
    """
    if context is None:
        raise ValueError("a NeighbourContext is required for neighbour features")
    one = _engineer_one(columns, demographics, demographic_names, context)
    if one is not None:
        return one
    c = {n: _column(columns, n) for n in CLIENT_COLUMNS if n != "zipcode"}
    if "zipcode" not in columns:
        raise KeyError("missing client column 'zipcode'")
    zipcode = np.asarray(columns["zipcode"]).astype(str).astype(np.float64)
    n_rows = len(zipcode)
    if any(len(v) != n_rows for v in c.values()):
        raise ValueError("client columns differ in length")

    built = np.maximum(c["yr_built"], c["yr_renovated"])
    bedrooms = np.maximum(c["bedrooms"], 1.0)
    xy = _to_km(c["lat"], c["long"])
    base = [c[n] if n != "zipcode" else zipcode for n in CLIENT_COLUMNS]
    base += [
        REFERENCE_YEAR - c["yr_built"],
        (c["yr_renovated"] > 0).astype(np.float64),
        REFERENCE_YEAR - built,
        np.log(c["sqft_living"]),
        np.log(c["sqft_lot"]),
        np.log(c["sqft_above"]),
        np.log(c["sqft_living15"]),
        np.log(c["sqft_lot15"]),
        c["sqft_living"] / c["sqft_living15"],
        c["sqft_lot"] / c["sqft_lot15"],
        c["sqft_living"] / c["sqft_lot"],
        c["sqft_basement"] / c["sqft_living"],
        c["sqft_living"] / bedrooms,
        c["bathrooms"] / bedrooms,
        xy[:, 0],
        xy[:, 1],
    ]
    for degrees in _ROTATION_DEGREES:
        theta = math.radians(degrees)
        base.append(xy[:, 0] * math.cos(theta) + xy[:, 1] * math.sin(theta))
    for landmark in _LANDMARKS_KM.values():
        offset = xy - landmark
        base.append(np.hypot(offset[:, 0], offset[:, 1]))
    offset = xy - _LANDMARKS_KM["seattle"]
    base.append(np.arctan2(offset[:, 1], offset[:, 0]))

    demographics = np.asarray(demographics, dtype=np.float64)
    if demographics.shape != (n_rows, len(demographic_names)):
        raise ValueError("demographics must have one row per home")
    position = {name: i for i, name in enumerate(demographic_names)}
    missing = [n for n in DEMOGRAPHIC_NAMES if n not in position]
    if missing:
        raise KeyError(f"missing demographic columns {missing}")
    demo = demographics[:, [position[n] for n in DEMOGRAPHIC_NAMES]]

    return np.column_stack(
        [np.column_stack(base), demo, _neighbour_features(xy, context)]
    )


class EngineeredFeatures(FeatureSet):
    """The boosted model's features; needs the version's neighbour context."""

    name = "engineered-v1"
    inputs = CLIENT_COLUMNS
    context_file = "neighbours.npz"

    def names(self, demographics):
        return list(FEATURE_NAMES)

    def transform(self, columns, demographics, context=None):
        return engineer(columns, demographics.rows(columns["zipcode"]),
                        demographics.columns, context)

    def load_context(self, path):
        context = NeighbourContext.from_npz(path)
        # Built here, where a version is loaded (Gunicorn's master, before it
        # forks), so that the workers share it instead of each building one.
        context.one_home()
        return context
