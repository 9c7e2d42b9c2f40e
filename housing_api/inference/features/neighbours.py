"""Neighbourhood prices: the training homes around a home, and what they sold for.

Computed out of fold at training time (see ``training.boosting``); at serving
time from every training home, stored with the version as plain arrays
(``neighbours.npz``, loaded without pickle).
"""
import io
from dataclasses import dataclass, field

import numpy as np
from sklearn.neighbors import KDTree

from .engineered_spec import KERNEL_BANDWIDTHS_KM, NEIGHBOUR_KS, to_km


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
    _one: "OneHome | None" = field(
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
        return cls(to_km(lat, long), log_price - log_sqft, log_price, log_sqft)

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

    def one_home(self) -> "OneHome":
        """State for describing one home at a time, built on first use."""
        if self._one is None:
            self._one = OneHome(self)
        return self._one


def neighbour_features(xy: np.ndarray, context: NeighbourContext) -> np.ndarray:
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
    for bandwidth in KERNEL_BANDWIDTHS_KM:
        weights = np.exp(-0.5 * (dist / bandwidth) ** 2) + 1e-12
        cols.append((weights * ppsf).sum(axis=1) / weights.sum(axis=1))
    cols += [
        ppsf[:, :15].std(axis=1),
        np.median(context.log_price[idx[:, :15]], axis=1),
        context.log_sqft[idx[:, :15]].mean(axis=1),
    ]
    return np.column_stack(cols)


class OneHome:
    """A context's arrays laid out for describing one home at a time."""

    def __init__(self, context: NeighbourContext):
        self.tree = context.tree
        self.values = np.stack(
            [context.log_ppsf, context.log_price, context.log_sqft])
        # Medians below sort with Python, which orders NaN differently.
        self.finite = bool(np.isfinite(self.values).all())
