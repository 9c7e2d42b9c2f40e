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
    """
    if context is None:
        raise ValueError("a NeighbourContext is required for neighbour features")
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
        return NeighbourContext.from_npz(path)
