"""Judging a rollout: the challenger against the champion, home by home.

During a rollout every answered estimate has a counterpart in the
prediction log, made by the other version for the same home and linked by
``answered_id`` (the answered one's id): the challenger's in a shadow, and
in a canary the champion's for the challenger's clients and the
challenger's for everyone else. So both versions are judged on the same
homes: on those with a reported sale, the paired difference in absolute
error and absolute percentage error (challenger minus champion, so below
zero the challenger is better) with a bootstrap 95% interval; on all of
them, how the two prices compare.
"""
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import and_, func, select

from ..db import predictions, sales

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


def judge(engine, rollout) -> dict:
    """Everything ``GET /admin/rollout`` and ``rollout status`` report."""
    since = datetime.fromisoformat(rollout.started_at)
    n, ratios = price_ratios(engine, rollout, since)
    ratio = {"n": n, "sampled": len(ratios)}
    if len(ratios):
        ratio.update(mean=float(ratios.mean()), quantiles={
            f"p{round(q * 100)}": float(v)
            for q, v in zip(RATIO_QUANTILES, np.quantile(ratios, RATIO_QUANTILES))})
    return {"sales": compare(paired_sales(engine, rollout, since)),
            "price_ratio": ratio}
