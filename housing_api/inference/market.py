"""The market's price level by month, and estimates as of a date.

Prices in King County rose through 2014-2015, so a sale's price says as
much about when it sold as about the home. A :class:`MarketIndex` is the
log price level of each month of the training sales, fitted as month
effects next to zipcode effects on the log price per square foot (a
hedonic time-dummy index, solved by alternating means). Training moves
every price to the latest month's level; serving estimates at that level
("now": the latest market the training data knows), or at the level of an
``as_of`` month inside the training range.
"""
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

#: Sweeps of the alternating means; the month effects move by less than
#: 1e-6 after about 20 on King County's sales.
_SWEEPS = 50


class OutOfRangeError(ValueError):
    """An ``as_of`` date outside the months the training sales cover."""


def sale_months(dates: Sequence) -> np.ndarray:
    """``"YYYY-MM"`` of each sale date (``20141013T000000`` or ISO)."""
    compact = (str(d).replace("-", "") for d in dates)
    return np.array([f"{s[:4]}-{s[4:6]}" for s in compact])


def month_numbers(months) -> np.ndarray:
    """Months since year 0, so that months can be interpolated."""
    return np.array([int(m[:4]) * 12 + int(m[5:7]) - 1 for m in months],
                    dtype=np.float64)


@dataclass(frozen=True)
class MarketIndex:
    """Log price level per month, relative to the latest month (0.0)."""

    months: tuple[str, ...]
    level: tuple[float, ...]

    @classmethod
    def fit(cls, log_ppsf: np.ndarray, zipcode: Sequence[str],
            months: np.ndarray) -> "MarketIndex":
        """Month effects of ``log_ppsf`` next to zipcode effects."""
        y = np.asarray(log_ppsf, dtype=np.float64)
        zone = np.unique(np.asarray(zipcode).astype(str), return_inverse=True)[1]
        names, month = np.unique(np.asarray(months), return_inverse=True)
        zone_n, month_n = np.bincount(zone), np.bincount(month)
        effect = np.zeros(len(names))
        for _ in range(_SWEEPS):
            zone_mean = np.bincount(zone, y - effect[month]) / zone_n
            effect = np.bincount(month, y - zone_mean[zone]) / month_n
        effect -= effect[-1]
        return cls(tuple(str(m) for m in names), tuple(float(e) for e in effect))

    @classmethod
    def from_dict(cls, data: dict) -> "MarketIndex":
        index = cls(tuple(data["months"]), tuple(float(v) for v in data["level"]))
        if len(index.months) != len(index.level) or not index.months \
                or list(index.months) != sorted(set(index.months)):
            raise ValueError("a market index needs one level per month, "
                             "months sorted and distinct")
        return index

    def to_dict(self) -> dict:
        return {"months": list(self.months), "level": list(self.level),
                "method": "month effects next to zipcode effects on log "
                          "price per sqft, relative to the latest month"}

    @property
    def latest(self) -> str:
        return self.months[-1]

    def offsets(self, months: Sequence[str]) -> np.ndarray:
        """Log level of each month relative to the latest.

        A month between two with sales gets the level interpolated between
        theirs; one outside the index raises :class:`OutOfRangeError`.
        """
        at, known = month_numbers(months), month_numbers(self.months)
        outside = (at < known[0]) | (at > known[-1])
        if np.any(outside):
            raise OutOfRangeError(
                f"{np.asarray(months)[outside][0]} is outside the training "
                f"sales' months ({self.months[0]} to {self.months[-1]})")
        return np.interp(at, known, self.level)

    def offset_on(self, day: date) -> float:
        """Log level on ``day`` relative to the latest month (its month's)."""
        try:
            return float(self.offsets([f"{day.year:04d}-{day.month:02d}"])[0])
        except OutOfRangeError:
            raise OutOfRangeError(
                f"as_of {day.isoformat()} is outside the training sales' months "
                f"({self.months[0]} to {self.months[-1]})") from None
