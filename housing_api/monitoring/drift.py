"""Drift: recent traffic's inputs and prices against the version's training.

Counted in SQL, one table scan for every numeric input and the price (a
``SUM(CASE ...)`` per bin edge) and one ``GROUP BY`` for the zipcode; the
population stability index is then computed from those counts.
"""
from datetime import datetime

from sqlalchemy import and_, case, func, select

from ..db import predictions
from ..inference.distribution import categorical_psi, psi, verdict


class NoTrainingDistributionError(LookupError):
    """The version's metadata has no training distribution to compare with."""


def drift(engine, version: str, reference: dict | None,
          since: datetime | None = None, until: datetime | None = None) -> dict:
    """Each input's and the predicted price's index, rows, verdict and bins."""
    if not reference:
        raise NoTrainingDistributionError(
            f"version {version!r} was trained without a training distribution; "
            "train it again to measure drift")
    where = and_(predictions.c.model_version == version,
                 *([predictions.c.created_at >= since] if since else []),
                 *([predictions.c.created_at <= until] if until else []))
    numeric = {**{name: predictions.c[name]
                  for name in reference["inputs"]},
               "price": predictions.c.price}
    distributions = {**reference["inputs"], "price": reference["price"]}
    columns = [func.count().label("rows")]
    for name, column in numeric.items():
        columns.append(func.count(column).label(f"{name}__n"))
        for i, edge in enumerate(distributions[name]["edges"]):
            columns.append(func.sum(case((column <= edge, 1), else_=0))
                           .label(f"{name}__{i}"))
    with engine.connect() as connection:
        counts = connection.execute(select(*columns).where(where)).one()._mapping
        zipcodes = dict(connection.execute(
            select(predictions.c.zipcode, func.count())
            .where(where).group_by(predictions.c.zipcode)).all())
    features = [_numeric(name, distributions[name], counts)
                for name in numeric]
    n_zip = sum(zipcodes.values())
    shares = reference["zipcode"]["shares"]
    index = categorical_psi(shares, zipcodes) if n_zip else None
    features.insert(len(features) - 1, {
        "name": "zipcode", "rows": n_zip, "psi": index,
        "verdict": verdict(index, n_zip, len(shares)), "bins": None})
    return {"rows": int(counts["rows"]), "verdict": _worst(features),
            "features": features}


def _worst(features) -> str:
    order = ("major", "moderate", "none", "too few rows", "no data")
    return min((f["verdict"] for f in features), key=order.index)


def _numeric(name: str, distribution: dict, counts) -> dict:
    n = int(counts[f"{name}__n"] or 0)
    edges = distribution["edges"]
    if not n:
        return {"name": name, "rows": 0, "psi": None, "verdict": verdict(None),
                "bins": _bins(edges, distribution["shares"], None)}
    below = [int(counts[f"{name}__{i}"] or 0) for i in range(len(edges))]
    per_bin = [b - a for a, b in zip([0, *below], [*below, n])]
    live = [c / n for c in per_bin]
    index = psi(distribution["shares"], live)
    return {"name": name, "rows": n, "psi": index,
            "verdict": verdict(index, n, len(live)),
            "bins": _bins(edges, distribution["shares"], live)}


def _bins(edges, training, live):
    return [{"upper": upper, "training": training[i],
             "live": None if live is None else live[i]}
            for i, upper in enumerate([*edges, None])]
