"""Judging a rollout: the challenger against the champion, home by home.

During a rollout every answered estimate has a counterpart in the
prediction log, made by the other version for the same home and linked by
``answered_id`` (the answered one's id): the challenger's in a shadow, and
in a canary the champion's for the challenger's clients and the
challenger's for everyone else. So both versions are judged on the same
homes: on those with a reported sale, the paired difference in absolute
error and absolute percentage error (challenger minus champion, so below
zero the challenger is better) with a bootstrap 95% interval; on all of
them, how the two prices compare; and the challenger's drift against its
own training data.

A canary can end by itself (``AbortRule``, off by default): the process
that refreshes the live gauges judges it at each refresh (``RolloutGuard``).
"""
import logging
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import and_, func, select

from ..db import predictions, sales
from ..store import RolloutError
from .drift import NoTrainingDistributionError, drift

log = logging.getLogger(__name__)

#: Resamples of the paired differences, and their seed (reproducible).
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0
#: The price ratio's quantiles come from at most this many recent pairs.
RATIO_SAMPLE = 100_000
RATIO_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class Pairs:
    """Each home's two estimates (champion's, challenger's), and its sale."""

    champion: np.ndarray
    challenger: np.ndarray
    sale: np.ndarray


def _pairs_query(rollout, since: datetime | None):
    answered, other = predictions.alias("answered"), predictions.alias("other")
    versions = (rollout.champion, rollout.challenger)
    conditions = [answered.c.model_version.in_(versions),
                  other.c.model_version.in_(versions),
                  answered.c.model_version != other.c.model_version]
    if since is not None:
        conditions.append(answered.c.created_at >= since)
    query = (select(answered.c.model_version, answered.c.price,
                    other.c.model_version, other.c.price)
             .select_from(answered.join(other,
                                        other.c.answered_id == answered.c.id))
             .where(and_(*conditions)))
    return answered, query


def _split(rows, rollout) -> tuple[np.ndarray, np.ndarray]:
    champion, challenger = [], []
    for version, price, _, other_price in rows:
        first, second = (price, other_price) if version == rollout.champion \
            else (other_price, price)
        champion.append(first)
        challenger.append(second)
    return np.asarray(champion, dtype=float), np.asarray(challenger, dtype=float)


def paired_sales(engine, rollout, since: datetime | None = None) -> Pairs:
    """The homes of ``rollout`` with a reported sale, each with both prices."""
    answered, query = _pairs_query(rollout, since)
    query = (query.add_columns(sales.c.sale_price)
             .join(sales, sales.c.prediction_id == answered.c.id))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    champion, challenger = _split([r[:4] for r in rows], rollout)
    return Pairs(champion, challenger,
                 np.asarray([r[4] for r in rows], dtype=float))


def price_ratios(engine, rollout, since: datetime | None = None
                 ) -> tuple[int, np.ndarray]:
    """How many homes both versions priced, and the challenger's price over
    the champion's for the latest ``RATIO_SAMPLE`` of them."""
    answered, query = _pairs_query(rollout, since)
    with engine.connect() as connection:
        n = connection.scalar(select(func.count()).select_from(query.subquery()))
        rows = connection.execute(query.order_by(answered.c.created_at.desc())
                                  .limit(RATIO_SAMPLE)).all()
    champion, challenger = _split(rows, rollout)
    return int(n), challenger / champion


def _interval(differences: np.ndarray) -> dict:
    """Mean of ``differences`` and its percentile bootstrap 95% interval."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    n = len(differences)
    means = differences[rng.integers(0, n, size=(BOOTSTRAP_SAMPLES, n))].mean(1)
    low, high = np.quantile(means, [0.025, 0.975])
    return {"difference": float(differences.mean()), "low": float(low),
            "high": float(high)}


def compare(pairs: Pairs) -> dict:
    """Both versions' MAE and MAPE on the paired homes, and the paired
    differences (challenger minus champion) with their 95% intervals."""
    n = len(pairs.sale)
    out = {"n": n}
    if n == 0:
        return {**out, "champion": None, "challenger": None, "mae": None,
                "mape": None}
    error = {name: np.abs(getattr(pairs, name) - pairs.sale)
             for name in ("champion", "challenger")}
    for name, e in error.items():
        out[name] = {"mae": float(e.mean()), "mape": float(np.mean(e / pairs.sale))}
    out["mae"] = _interval(error["challenger"] - error["champion"])
    out["mape"] = _interval((error["challenger"] - error["champion"]) / pairs.sale)
    return out


@dataclass(frozen=True)
class AbortRule:
    """A canary ends by itself when, on at least ``min_sales`` reported
    sales, its MAPE is worse than the champion's by more than ``margin`` (a
    fraction: 0.01 is one point) and the 95% interval of the difference
    lies wholly above zero."""

    margin: float
    min_sales: int

    @classmethod
    def from_config(cls, config) -> "AbortRule | None":
        """The configured rule, or None while ``ROLLOUT_AUTO_ABORT`` is off."""
        if not config["ROLLOUT_AUTO_ABORT"]:
            return None
        return cls(float(config["ROLLOUT_ABORT_MARGIN"]),
                   int(config["ROLLOUT_ABORT_MIN_SALES"]))

    def reason(self, rollout, paired: dict) -> str | None:
        """Why ``rollout`` must end, judged on ``compare``'s ``paired``; or None."""
        if rollout.mode != "canary" or paired["n"] < self.min_sales:
            return None
        mape = paired["mape"]
        if mape["difference"] <= self.margin or mape["low"] <= 0:
            return None
        return (f"on {paired['n']:,} reported sales the canary's MAPE is "
                f"{mape['difference']:+.2%} against the champion's (95% interval "
                f"{mape['low']:+.2%} to {mape['high']:+.2%}), worse than the "
                f"margin of {self.margin:.2%}")

    def describe(self) -> dict:
        return {"enabled": True, "margin": self.margin,
                "min_sales": self.min_sales}


def _challenger_drift(engine, rollout, reference, since) -> dict | None:
    try:
        found = drift(engine, rollout.challenger, reference, since)
    except NoTrainingDistributionError:
        return None
    return {"rows": found["rows"], "verdict": found["verdict"],
            "features": [{k: v for k, v in f.items() if k != "bins"}
                         for f in found["features"]]}


def judge(engine, rollout, reference: dict | None = None,
          rule: AbortRule | None = None) -> dict:
    """Everything ``GET /admin/rollout`` and ``rollout status`` report.

    ``reference``: the challenger's training distribution (its metadata's
    ``training_distribution``), which its drift is measured against.
    """
    since = datetime.fromisoformat(rollout.started_at)
    n, ratios = price_ratios(engine, rollout, since)
    ratio = {"n": n, "sampled": len(ratios)}
    if len(ratios):
        ratio.update(mean=float(ratios.mean()), quantiles={
            f"p{round(q * 100)}": float(v)
            for q, v in zip(RATIO_QUANTILES, np.quantile(ratios, RATIO_QUANTILES))})
    paired = compare(paired_sales(engine, rollout, since))
    automatic = {"enabled": False} if rule is None else {
        **rule.describe(), "due": rule.reason(rollout, paired)}
    return {"sales": paired, "price_ratio": ratio,
            "challenger_drift": _challenger_drift(engine, rollout, reference,
                                                  since),
            "auto_abort": automatic}


class RolloutGuard:
    """Ends the store's canary once ``rule`` says so: logged, counted in
    ``metrics.rollout_auto_aborts``, and every worker reloaded."""

    def __init__(self, state, rule: AbortRule, metrics=None):
        self.state, self.rule, self.metrics = state, rule, metrics

    def check(self, engine):
        """Judge the canary in progress; return it if it was aborted now."""
        store = self.state.store
        rollout = store.rollout()
        if rollout is None or rollout.mode != "canary":
            return None
        paired = compare(paired_sales(engine, rollout,
                                      datetime.fromisoformat(rollout.started_at)))
        reason = self.rule.reason(rollout, paired)
        if reason is None:
            return None
        try:
            store.abort_rollout(expected=rollout, reason=reason)
        except RolloutError:
            return None  # promoted, aborted or replaced meanwhile
        log.warning("canary of %s aborted automatically: %s", rollout.challenger,
                    reason, extra={"model_version": rollout.champion,
                                   "challenger": rollout.challenger,
                                   "rollout_id": rollout.id})
        if self.metrics is not None:
            self.metrics.rollout_auto_aborts.inc()
        self.state.request_reload()
        return rollout
