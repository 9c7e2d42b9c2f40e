"""A loaded model version: client columns in, prices and ranges out."""
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .adaptive import Adaptation
from .comparables import DEFAULT_K, TrainingSales, similarity
from .demographics import Demographics
from .explain import (
    ExplanationUnavailable, NeighbourExplainer, TreeExplainer, neighbour_explainer,
)
from .features import FeatureSet
from .market import MarketIndex

log = logging.getLogger(__name__)


#: How each kind of model output becomes a price in USD.
TARGETS = {
    "price": lambda raw, columns: raw,
    "log_price_per_sqft": lambda raw, columns: np.exp(
        raw + np.log(np.asarray(columns["sqft_living"], dtype=np.float64))),
}


@dataclass(frozen=True)
class Prediction:
    """Prices in USD with an interval at ``level``, one entry per home.

    ``as_of`` is the month (``YYYY-MM``) whose market level each price is
    at, or None for a version with no notion of time.
    """

    price: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float
    warnings: list[list[str]]
    as_of: list[str] | None = None


class AsOfUnavailable(ValueError):
    """An estimate as of a date from a version with no market index."""


class Interval:
    """A multiplicative interval per predicted-price band, from metadata."""

    def __init__(self, interval: Mapping):
        self.level = float(interval["level"])
        self._edges = np.asarray(interval["edges"], dtype=np.float64)
        self._lower = np.exp(np.asarray(interval["lower"], dtype=np.float64))
        self._upper = np.exp(np.asarray(interval["upper"], dtype=np.float64))
        # Checked here, at load: a malformed interval would otherwise pass
        # the publish check and fail only for homes in a band it lacks.
        bands = len(self._edges) + 1
        if not (0 < self.level < 1 and self._edges.ndim == 1
                and np.all(np.isfinite(self._edges))
                and np.all(np.diff(self._edges) >= 0)
                and self._lower.shape == self._upper.shape == (bands,)
                and np.all(np.isfinite(self._lower) & np.isfinite(self._upper))):
            raise ValueError("interval needs a level in (0, 1), sorted finite "
                             "edges, and one finite lower and upper log ratio "
                             "per price band (one more than the edges)")

    @property
    def edges(self) -> tuple[float, ...]:
        """The price each band but the first starts at."""
        return tuple(self._edges.tolist())

    def band(self, banded: np.ndarray) -> np.ndarray:
        """The band of each price of ``banded``."""
        return np.searchsorted(self._edges, banded, side="right")

    def bounds(self, banded: np.ndarray, price: np.ndarray,
               adaptation: Adaptation | None = None):
        """``(lower, upper)`` of ``price``, in the band of ``banded``;
        widened (or narrowed, never past ``price``) by ``adaptation``."""
        band = self.band(banded)
        if adaptation is None:
            return price * self._lower[band], price * self._upper[band]
        lower = np.minimum(self._lower[band] * np.exp(-adaptation.lower[band]), 1.0)
        upper = np.maximum(self._upper[band] * np.exp(adaptation.upper[band]), 1.0)
        return price * lower, price * upper


class Predictor:
    """Serve one stored model version.

    ``estimator`` is anything with ``predict(X)``; the metadata's ``target``
    says what it predicts (``price``, the default, or ``log_price_per_sqft``).
    ``context`` is fitted state the feature set needs; ``sales`` the sales
    it was trained on (comparable sales, and the k-NN's neighbours). The
    model store builds them from the version folder. Knows nothing about HTTP.
    """

    def __init__(
        self,
        *,
        version: str,
        metadata: Mapping,
        estimator,
        feature_set: FeatureSet,
        demographics: Demographics,
        context=None,
        sales: TrainingSales | None = None,
    ):
        self.version = version
        self.metadata = metadata
        self.name = metadata["name"]
        #: None for a version's own model, "minimal" for its minimal companion.
        self.variant = metadata.get("variant")
        #: The companion that estimates from the minimal inputs, if any.
        self.minimal: "Predictor | None" = None
        self.estimator = estimator
        self.feature_set = feature_set
        self.demographics = demographics
        self.context = context
        self.target = metadata.get("target", "price")
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}")
        # "Now" (the latest market level), and as of a month in training.
        self.interval = Interval(metadata["interval"])
        self.interval_as_of = Interval(metadata.get("interval_as_of",
                                                    metadata["interval"]))
        self.level = self.interval.level
        #: Set in a serving process from the sales reported for this
        #: version's estimates "now" (``monitoring.adaptation``); None: the
        #: interval as trained.
        self.adaptation: Adaptation | None = None
        market = metadata.get("market_index")
        self.market = None if market is None else MarketIndex.from_dict(market)
        self._ranges = [
            (name, float(lo), float(hi))
            for name, (lo, hi) in metadata["input_ranges"].items()
        ]
        self.explainer = self._explainer(sales)
        self.sales = sales
        if isinstance(self.explainer, NeighbourExplainer) and sales is not None \
                and not np.array_equal(sales.price, self.explainer.targets):
            log.warning("the sales stored with %s are not the k-NN's training "
                        "rows; serving it without comparable sales", version)
            self.sales = None

    def _explainer(self, sales):
        if hasattr(self.estimator, "contributions"):
            groups, fold = self.feature_set.folding(self.demographics)
            log_sqft = sales.log_sqft if sales is not None else getattr(
                self.context, "log_sqft", None)
            return TreeExplainer(
                self.estimator, fold, groups, self.target,
                None if log_sqft is None else float(np.mean(log_sqft)))
        if self.target != "price":
            return None
        try:
            return neighbour_explainer(self.estimator)
        except ExplanationUnavailable:
            return None

    @property
    def moved(self) -> Adaptation:
        """How far reported sales have moved the interval "now" (every
        bound as trained while none is reported)."""
        return self.adaptation or Adaptation.unmoved(len(self.interval.edges) + 1)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Client columns this version reads (the minimal contract)."""
        return self.feature_set.inputs

    def features(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Return the feature matrix for ``columns``."""
        return self.feature_set.transform(columns, self.demographics, self.context)

    def predict(self, columns: Mapping[str, np.ndarray],
                months: Sequence[str] | None = None) -> Prediction:
        """Predict every home in ``columns`` with one estimator call.

        Prices are at the latest market level the training data knows
        ("now"), or with ``months`` (``YYYY-MM``, one per home) at the level
        of each one's month: :class:`~.market.OutOfRangeError` outside the
        training months, :class:`AsOfUnavailable` for a version without a
        market index.
        """
        offsets = self.market_offsets(months, len(columns["zipcode"]))
        raw = np.asarray(self.estimator.predict(self.features(columns)))
        now = TARGETS[self.target](raw, columns)
        if offsets is None:
            price, interval, adaptation = now, self.interval, self.adaptation
        else:
            price, interval = now * np.exp(offsets), self.interval_as_of
            adaptation = None
        # Per-price-band multiplicative interval, calibrated out of fold when
        # the version was trained; bands are of the price at today's level.
        lower, upper = interval.bounds(now, price, adaptation)
        return Prediction(
            price=price, lower=lower, upper=upper, level=interval.level,
            warnings=self.range_warnings(columns, len(price)),
            as_of=self._as_of(months, len(price)),
        )

    def market_offsets(self, months, n: int) -> np.ndarray | None:
        """Log market level of each month relative to the latest, or None."""
        if months is None:
            return None
        if self.market is None:
            raise AsOfUnavailable(f"{self.name} does not estimate as of a date")
        if len(months) != n:
            raise ValueError("one month per home")
        return self.market.offsets(months)

    def _as_of(self, months, n: int) -> list[str] | None:
        if self.market is None:
            return None
        return list(months) if months is not None else [self.market.latest] * n

    def explain(self, columns: Mapping[str, np.ndarray], price: np.ndarray,
                k: int = DEFAULT_K, months: Sequence[str] | None = None
                ) -> list[dict]:
        """Why each price: ``{"explanation", "comparables"}`` per home.

        ``price`` is what :meth:`predict` answered for ``columns`` (and
        ``months``: the market's move to each month is one effect). The
        comparables are the ``k`` most similar training sales (a k-NN's own
        neighbours), or None for a version stored without its sales.
        """
        if self.explainer is None:
            raise ExplanationUnavailable(f"{self.name} has no explainer")
        features = self.features(columns)
        n = len(price)
        homes = [{name: values[i] for name, values in columns.items()}
                 for i in range(n)]
        if isinstance(self.explainer, NeighbourExplainer):
            own = self.explainer.kneighbors(features, self.explainer.n_neighbors)
            explanations = self.explainer.explain(features, columns, price,
                                                  self.sales, own)
            comparables = [None] * n
            if self.sales is not None:
                dist, rows = own if k == self.explainer.n_neighbors else \
                    self.explainer.kneighbors(features, k)
                comparables = [self.sales.describe(rows[i], homes[i],
                                                   similarity(dist[i]))
                               for i in range(n)]
        else:
            explanations = self.explainer.explain(
                features, columns, price,
                self.market_offsets(months, n), months)
            comparables = [None] * n
            if self.sales is not None:
                comparables = []
                for home in homes:
                    rows, dist = self.sales.nearest(home, k)
                    comparables.append(self.sales.describe(rows, home,
                                                           similarity(dist)))
        return [{"explanation": e, "comparables": c}
                for e, c in zip(explanations, comparables)]

    def range_warnings(self, columns, n: int) -> list[list[str]]:
        """Say, per home, which inputs lie outside the training data's range."""
        warnings = [[] for _ in range(n)]
        for name, lo, hi in self._ranges:
            values = columns.get(name)
            if values is None:
                continue
            if n == 1:  # one home: plain floats beat array operations
                value = float(values[0])
                if not lo <= value <= hi:
                    warnings[0].append(_range_warning(name, value, lo, hi))
                continue
            for i in np.flatnonzero((values < lo) | (values > hi)):
                warnings[i].append(_range_warning(name, values[i], lo, hi))
        return warnings


def _range_warning(name: str, value, lo: float, hi: float) -> str:
    if value < lo:
        side, bound = "below the smallest", lo
    else:
        side, bound = "above the largest", hi
    return (f"{name}={value:g} is {side} value seen in training ({bound:g}); "
            "the estimate is an extrapolation")
