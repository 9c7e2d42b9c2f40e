"""Features of the minimal companion: the 7 sales columns and the zipcode.

With no lat/long, a home's neighbourhood is its zipcode: its demographics,
and what the zipcode's *training* homes sold for (quantiles of their log
price per square foot at the latest month's level) and how big they are,
so a home's size and lot can be placed within its zipcode. At training
time those are computed out of fold (see ``training.minimal``); at serving
time from every training home, stored with the version as plain arrays
(``zipcode_prices.npz``, loaded without pickle).
"""
import io
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..columns import SALES_FEATURES
from .base import NEIGHBOURHOOD, FeatureSet
from .engineered_spec import DEMOGRAPHIC_NAMES

MINIMAL_INPUTS = SALES_FEATURES + ("zipcode",)
PRICE_QUANTILES = (0.1, 0.5, 0.9)

_HOME = (
    "log_sqft_living", "log_sqft_lot", "living_over_lot", "basement_fraction",
    "sqft_per_bedroom", "bathrooms_per_bedroom",
)
_ZIPCODE = (
    *(f"zip_ppsf_q{round(q * 100)}" for q in PRICE_QUANTILES),
    "zip_ppsf_mean", "zip_log_sqft_median", "zip_log_lot_median",
    "zip_log_sales",
)
_PLACED = ("size_rank_in_zip", "lot_rank_in_zip", "size_minus_zip_median",
           "lot_minus_zip_median")
FEATURE_NAMES = (*SALES_FEATURES, "zipcode", *_HOME, *DEMOGRAPHIC_NAMES,
                 *_ZIPCODE, *_PLACED)


@dataclass
class ZipcodePrices:
    """The training homes of each zipcode: their prices and sizes.

    Row ``i`` of ``stats`` summarises zipcode ``zipcodes[i]``, its last row
    the whole county (for a zipcode with no training sales). The homes'
    ``log_sqft`` and ``log_lot`` are grouped by zipcode, zipcode ``i``'s in
    ``starts[i]:starts[i + 1]`` (the county's: all).
    """

    zipcodes: np.ndarray
    stats: np.ndarray
    starts: np.ndarray
    log_sqft: np.ndarray
    log_lot: np.ndarray

    def __post_init__(self):
        self.index = {str(z): i for i, z in enumerate(self.zipcodes)}

    @classmethod
    def from_sales(cls, zipcode, log_ppsf, log_sqft, log_lot) -> "ZipcodePrices":
        """Summarise homes by zipcode (``log_ppsf`` at the latest level)."""
        zipcode = np.asarray(zipcode).astype(str)
        arrays = [np.asarray(a, dtype=np.float64)
                  for a in (log_ppsf, log_sqft, log_lot)]
        zipcodes, counts = np.unique(zipcode, return_counts=True)
        order = np.argsort(zipcode, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts), [len(zipcode)]])
        grouped = [a[order] for a in arrays]
        stats = []
        for lo, hi in zip(starts[:-2].tolist() + [0], starts[1:].tolist()):
            ppsf, size, area = (a[lo:hi] for a in grouped)
            stats.append([*np.quantile(ppsf, PRICE_QUANTILES), ppsf.mean(),
                          np.median(size), np.median(area), np.log(hi - lo)])
        return cls(zipcodes.astype(np.int64), np.array(stats), starts,
                   *grouped[1:])

    def _homes(self, row: int) -> slice:
        if row == len(self.zipcodes):  # the county
            return slice(0, len(self.log_sqft))
        return slice(self.starts[row], self.starts[row + 1])

    def rows(self, zipcode: np.ndarray) -> np.ndarray:
        """The stats row of each zipcode (the county's for an unknown one)."""
        county = len(self.zipcodes)
        return np.array([self.index.get(z, county) for z in zipcode],
                        dtype=np.intp)

    def placed(self, rows: np.ndarray, log_sqft, log_lot) -> np.ndarray:
        """Each home's size and lot against its zipcode's training homes."""
        out = np.empty((len(rows), len(_PLACED)))
        for row in np.unique(rows):
            homes = rows == row
            zip_homes = self._homes(row)
            sqft, lot = self.log_sqft[zip_homes], self.log_lot[zip_homes]
            size, area = log_sqft[homes, None], log_lot[homes, None]
            # Mid-rank: the share of the zipcode's homes below, ties halved.
            out[homes, 0] = ((sqft < size).mean(1) + (sqft <= size).mean(1)) / 2
            out[homes, 1] = ((lot < area).mean(1) + (lot <= area).mean(1)) / 2
        stats = self.stats[rows]
        out[:, 2] = log_sqft - stats[:, _ZIPCODE.index("zip_log_sqft_median")]
        out[:, 3] = log_lot - stats[:, _ZIPCODE.index("zip_log_lot_median")]
        return out

    def to_npz(self) -> bytes:
        """Serialize the arrays as an ``.npz`` file (plain numbers only)."""
        buffer = io.BytesIO()
        np.savez(buffer, zipcodes=self.zipcodes, stats=self.stats,
                 starts=self.starts, log_sqft=self.log_sqft, log_lot=self.log_lot)
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, path) -> "ZipcodePrices":
        """Load arrays saved by ``to_npz``; object arrays are refused."""
        with np.load(path, allow_pickle=False) as npz:
            prices = cls(**{k: npz[k] for k in (
                "zipcodes", "stats", "starts", "log_sqft", "log_lot")})
        homes = len(prices.log_sqft)
        if prices.stats.shape != (len(prices.zipcodes) + 1, len(_ZIPCODE)) \
                or len(prices.starts) != len(prices.stats) + 1 \
                or prices.starts[-1] != homes \
                or len(prices.log_lot) != homes:
            raise ValueError("zipcode prices have inconsistent shapes")
        return prices


def minimal_features(columns: Mapping[str, np.ndarray], demographics: np.ndarray,
                     demographic_names, prices: ZipcodePrices) -> np.ndarray:
    """Build the float64 feature matrix (order ``FEATURE_NAMES``)."""
    if prices is None:
        raise ValueError("ZipcodePrices are required for the minimal features")
    missing = [n for n in MINIMAL_INPUTS if n not in columns]
    if missing:
        raise KeyError(f"missing client columns {missing}")
    c = {n: np.asarray(columns[n], dtype=np.float64) for n in SALES_FEATURES}
    zipcode = np.asarray(columns["zipcode"]).astype(str)
    bedrooms = np.maximum(c["bedrooms"], 1.0)
    log_sqft, log_lot = np.log(c["sqft_living"]), np.log(c["sqft_lot"])
    position = {name: i for i, name in enumerate(demographic_names)}
    demo = np.asarray(demographics, dtype=np.float64)[
        :, [position[n] for n in DEMOGRAPHIC_NAMES]]
    rows = prices.rows(zipcode)
    return np.column_stack([
        *(c[n] for n in SALES_FEATURES), zipcode.astype(np.float64),
        log_sqft, log_lot,
        c["sqft_living"] / c["sqft_lot"],
        c["sqft_basement"] / c["sqft_living"],
        c["sqft_living"] / bedrooms,
        c["bathrooms"] / bedrooms,
        demo, prices.stats[rows], prices.placed(rows, log_sqft, log_lot),
    ])


def _sources() -> dict[str, tuple[str, ...]]:
    sources = {name: (name,) for name in MINIMAL_INPUTS}
    sources.update({
        "log_sqft_living": ("sqft_living",),
        "log_sqft_lot": ("sqft_lot",),
        "living_over_lot": ("sqft_living", "sqft_lot"),
        "basement_fraction": ("sqft_basement", "sqft_living"),
        "sqft_per_bedroom": ("sqft_living", "bedrooms"),
        "bathrooms_per_bedroom": ("bathrooms", "bedrooms"),
        "size_rank_in_zip": ("sqft_living", NEIGHBOURHOOD),
        "lot_rank_in_zip": ("sqft_lot", NEIGHBOURHOOD),
        "size_minus_zip_median": ("sqft_living", NEIGHBOURHOOD),
        "lot_minus_zip_median": ("sqft_lot", NEIGHBOURHOOD),
    })
    sources.update({name: (NEIGHBOURHOOD,) for name in (*DEMOGRAPHIC_NAMES,
                                                        *_ZIPCODE)})
    return sources


class MinimalFeatures(FeatureSet):
    """The minimal companion's features; needs the version's zipcode prices."""

    name = "minimal-v1"
    inputs = MINIMAL_INPUTS
    context_file = "zipcode_prices.npz"

    def names(self, demographics):
        return list(FEATURE_NAMES)

    def transform(self, columns, demographics, context=None):
        return minimal_features(columns, demographics.rows(columns["zipcode"]),
                                demographics.columns, context)

    def load_context(self, path):
        return ZipcodePrices.from_npz(path)

    def sources(self, demographics):
        return _sources()
