"""Comparable sales: the training sales most like a home, by a stated distance.

A version keeps the sales it was trained on (``sales.npz``, plain arrays,
loaded without pickle), so that an estimate can be shown beside the sales a
realtor would quote. The distance between a home and a sale adds up, in
quadrature, one unit for each of

- a kilometre between them (location, when the home has lat and long),
- a 25% difference in living area (size), and
- one King County grade (quality, when the home has a grade);

sales in the home's own zipcode come first, then the others, each group by
distance. A sale's similarity is ``1 / (1 + distance)``: 1 for a sale just
like the home, 0.5 one unit away.
"""
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np

from .features.engineered_spec import to_km

SALES_FILE = "sales.npz"
#: What each comparable sale says, in this order.
NUMBERS = ("price", "sqft_living", "bedrooms", "bathrooms", "grade", "yr_built",
           "lat", "long")
WHOLE = frozenset({"sqft_living", "bedrooms", "grade", "yr_built"})
#: One unit of distance in living area: 25% larger or smaller.
SIZE_UNIT = math.log(1.25)
DEFAULT_K, MAX_K = 5, 20


def iso_date(text: str) -> str:
    """``20141013T000000`` (King County's format) or an ISO date, as ISO."""
    text = str(text)
    if len(text) >= 8 and text[:8].isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:8]}"
    return text[:10]


class TrainingSales:
    """The sales a version was trained on, in training-row order."""

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        self.date = np.asarray(arrays["date"], dtype=str)
        self.zipcode = np.asarray(arrays["zipcode"], dtype=str)
        self.values = {name: np.asarray(arrays[name], dtype=np.float64)
                       for name in NUMBERS}
        n = len(self.date)
        if any(len(v) != n for v in (self.zipcode, *self.values.values())):
            raise ValueError("every sales column needs one value per sale")
        if n == 0 or not all(np.isfinite(v).all() for v in self.values.values()):
            raise ValueError("sales must be finite and not empty")
        self.price = self.values["price"]
        self.xy = to_km(self.values["lat"], self.values["long"])
        self.log_sqft = np.log(self.values["sqft_living"])
        order = np.argsort(self.zipcode, kind="stable")
        zipcodes, starts = np.unique(self.zipcode[order], return_index=True)
        self.by_zipcode = dict(zip(zipcodes.tolist(),
                                   np.split(order, starts[1:])))

    def __len__(self) -> int:
        return len(self.date)

    @classmethod
    def from_columns(cls, columns: Mapping, price,
                     dates: Sequence[str]) -> "TrainingSales":
        """Build from client columns (as training reads them), prices and dates."""
        arrays = {name: np.asarray(columns[name], dtype=np.float64)
                  for name in NUMBERS if name != "price"}
        arrays["price"] = np.asarray(price, dtype=np.float64)
        arrays["zipcode"] = np.asarray(columns["zipcode"], dtype=str)
        arrays["date"] = np.asarray([iso_date(d) for d in dates], dtype=str)
        return cls(arrays)

    def to_npz(self) -> bytes:
        """The arrays as an ``.npz`` file: numbers and fixed-width strings."""
        buffer = io.BytesIO()
        np.savez(buffer, date=self.date, zipcode=self.zipcode, **self.values)
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, path) -> "TrainingSales":
        """Load what ``to_npz`` wrote; object arrays are refused."""
        with np.load(path, allow_pickle=False) as npz:
            return cls({name: npz[name] for name in ("date", "zipcode", *NUMBERS)})

    # -- finding them -------------------------------------------------------

    def nearest(self, home: Mapping, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` comparable sales of ``home``: (rows, distances).

        ``home`` holds one home's client columns; its ``sqft_living`` and
        ``zipcode`` are needed, ``lat``/``long`` and ``grade`` are used when
        present. Ties go to the earlier training row.
        """
        same = self.by_zipcode.get(str(home["zipcode"]), np.empty(0, np.intp))
        rows, dist = self._closest(home, same, k)
        if len(rows) < k:
            others = np.ones(len(self), dtype=bool)
            others[same] = False
            more, more_dist = self._closest(home, np.flatnonzero(others),
                                            k - len(rows))
            rows = np.concatenate([rows, more])
            dist = np.concatenate([dist, more_dist])
        return rows, dist

    def _closest(self, home, rows, k):
        dist = self.distance(home, rows)
        if len(rows) > k:
            keep = np.argpartition(dist, k - 1)[:k]
            rows, dist = rows[keep], dist[keep]
        order = np.lexsort((rows, dist))
        return rows[order], dist[order]

    def distance(self, home: Mapping, rows: np.ndarray) -> np.ndarray:
        """The distance (see the module) from ``home`` to the sales ``rows``."""
        size = (self.log_sqft[rows] - math.log(float(home["sqft_living"]))) / SIZE_UNIT
        squared = size * size
        xy = self.home_xy(home)
        if xy is not None:
            offset = self.xy[rows] - xy
            squared += np.einsum("ij,ij->i", offset, offset)
        if home.get("grade") is not None:
            quality = self.values["grade"][rows] - float(home["grade"])
            squared += quality * quality
        return np.sqrt(squared)

    @staticmethod
    def home_xy(home: Mapping) -> np.ndarray | None:
        if home.get("lat") is None or home.get("long") is None:
            return None
        return to_km(np.array([float(home["lat"])]),
                     np.array([float(home["long"])]))[0]

    # -- saying what they are -----------------------------------------------

    def describe(self, rows: Sequence[int], home: Mapping,
                 similarity: Sequence[float]) -> list[dict]:
        """Comparable sales as an answer shows them, one dict per row."""
        xy = self.home_xy(home)
        out = []
        for row, score in zip(rows, similarity):
            row = int(row)
            sale = {"date": str(self.date[row])}
            for name in NUMBERS:
                value = float(self.values[name][row])
                sale[name] = int(value) if name in WHOLE else value
            sale["price_per_sqft"] = round(sale["price"] / sale["sqft_living"], 2)
            sale["zipcode"] = str(self.zipcode[row])
            if xy is None:
                sale["distance_km"] = None
            else:
                sale["distance_km"] = round(float(np.hypot(*(self.xy[row] - xy))), 3)
            sale["similarity"] = round(float(score), 4)
            out.append(sale)
        return out


def similarity(distance) -> np.ndarray:
    """``1 / (1 + distance)``: 1 for an identical sale, 0.5 one unit away."""
    return 1.0 / (1.0 + np.asarray(distance, dtype=np.float64))
