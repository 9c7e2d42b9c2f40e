"""Intervals that adapt to the sales reported for a version's estimates.

A version's interval is calibrated once, when it is trained; the market
then moves on (prices rose through 2014-2015) and the later sales fall
outside it more often than promised. Each band of the interval therefore
tracks, on each side, the share of reported sales that fell outside
(online quantile tracking, as in Angelopoulos, Candes and Tibshirani,
"Conformal PID control", 2023): every reported sale above the upper bound
it was given moves that band's upper log bound up by ``step * (1 - a)``,
every other one down by ``step * a``, with ``a = (1 - level) / 2``; the
lower bound likewise. Over any sequence of sales, the share outside each
side tends to ``a``: the interval keeps its promise on the sales it meets.

Each update depends only on whether a sale fell outside the bound it was
given, so the state after ``n`` sales of which ``k`` fell above is
``step * (k - n * a)`` whatever their order: a count the database can
give (``monitoring.adaptation``).
"""
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Log units per reported sale. Chosen on cut-offs before the evaluation's
#: time split (models trained on the sales before 2014-11 and before 2014-12,
#: scored on every later sale as ``training.evaluation`` simulates): 79.4% to
#: 79.8% covered for any step from 0.002 to 0.02, so the step matters little;
#: 0.005 moves a band's bound by 0.45% per sale outside it.
DEFAULT_STEP = 0.005


@dataclass(frozen=True)
class BandCounts:
    """Reported sales per interval band, and how many fell below or above."""

    sales: Sequence[int]
    below: Sequence[int]
    above: Sequence[int]


@dataclass(frozen=True)
class Adaptation:
    """How much wider (in log ratio) each band's bounds are than trained."""

    lower: np.ndarray
    upper: np.ndarray
    #: The reported sales it rests on.
    sales: int

    @classmethod
    def tracked(cls, counts: BandCounts, level: float, step: float
                ) -> "Adaptation":
        """The tracking state after the sales of ``counts``."""
        a = (1.0 - level) / 2.0
        n = np.asarray(counts.sales, dtype=np.float64)
        return cls(step * (np.asarray(counts.below, dtype=np.float64) - n * a),
                   step * (np.asarray(counts.above, dtype=np.float64) - n * a),
                   int(n.sum()))

    @classmethod
    def unmoved(cls, bands: int) -> "Adaptation":
        """No sale reported yet: every bound as trained."""
        return cls(np.zeros(bands), np.zeros(bands), 0)

    def to_dict(self) -> dict:
        # Rounded: 0.0045, not 0.0045000000000000005 (a billionth of a
        # log ratio is a thousandth of a cent on a million dollars).
        return {"sales": self.sales,
                "lower": [round(v, 9) for v in self.lower.tolist()],
                "upper": [round(v, 9) for v in self.upper.tolist()]}


def simulate(actual: np.ndarray, estimate: np.ndarray, lower: np.ndarray,
             upper: np.ndarray, bands: np.ndarray, days: np.ndarray,
             n_bands: int, level: float, step: float = DEFAULT_STEP
             ) -> tuple[np.ndarray, np.ndarray]:
    """The bounds the service would have given each sale (prices in USD).

    ``lower`` and ``upper`` are the bounds as trained, ``bands`` each
    estimate's band. Sales are estimated in the order of ``days``, each
    day's with the state that the sales of the days before left (each sale
    reported the day it sold).
    """
    log_estimate = np.log(estimate)
    low, high = np.log(lower) - log_estimate, np.log(upper) - log_estimate
    outside = np.zeros((3, n_bands))  # sales, below, above
    days = np.asarray(days)
    order = np.argsort(days, kind="stable")
    starts = np.flatnonzero(np.r_[True, days[order][1:] != days[order][:-1]])
    for rows in np.split(order, starts[1:]):
        state = Adaptation.tracked(BandCounts(*outside), level, step)
        b = bands[rows]
        low[rows] = np.minimum(low[rows] - state.lower[b], 0.0)
        high[rows] = np.maximum(high[rows] + state.upper[b], 0.0)
        ratio = np.log(actual[rows]) - log_estimate[rows]
        np.add.at(outside[0], b, 1)
        np.add.at(outside[1], b, ratio < low[rows])
        np.add.at(outside[2], b, ratio > high[rows])
    return estimate * np.exp(low), estimate * np.exp(high)
