"""Live accuracy: the logged estimates against the sale prices reported since.

Aggregated in SQL (one query per grouping), never by loading rows: n, MAE,
RMSE, MAPE, median APE, R2, bias (mean signed % error) and the share of
sales inside their 80% interval, overall or by week of sale, zipcode or
third of the estimated price.
"""
from datetime import date

from sqlalchemy import Date, and_, case, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

from ..db import predictions, sales

GROUPINGS = ("week", "zipcode", "price_third")
THIRDS = ("lower third", "middle third", "upper third")


class week_start(GenericFunction):
    """The Monday of a date's week, in the database's own date functions."""

    type = Date()
    inherit_cache = True


@compiles(week_start, "sqlite")
def _week_start_sqlite(element, compiler, **kw):
    # 'weekday 0' moves to the next Sunday (or stays): six days back is Monday.
    return (f"date({compiler.process(element.clauses, **kw)}, "
            "'weekday 0', '-6 days')")


@compiles(week_start, "postgresql")
def _week_start_postgresql(element, compiler, **kw):
    inner = compiler.process(element.clauses, **kw)
    return f"CAST(date_trunc('week', {inner}) AS DATE)"


def performance(engine, version: str, since: date | None = None,
                until: date | None = None, by: str | None = None) -> list[dict]:
    """The figures of ``version``'s reported sales, one dict per group.

    ``since`` and ``until`` bound the sale date (inclusive). Without ``by``
    there is one group (``None``), with n 0 when no sale is reported.
    """
    joined = (select(
        predictions.c.id.label("pid"), predictions.c.price.label("price"),
        predictions.c.lower.label("lower"), predictions.c.upper.label("upper"),
        predictions.c.zipcode.label("zipcode"),
        sales.c.sale_price.label("y"), sales.c.sale_date.label("sale_date"))
        .select_from(sales.join(predictions,
                                predictions.c.id == sales.c.prediction_id))
        .where(and_(predictions.c.model_version == version,
                    *([sales.c.sale_date >= since] if since else []),
                    *([sales.c.sale_date <= until] if until else []))))
    rows = joined.subquery("rows")
    group = _group_expression(by, rows)
    grouped = select(group.label("grp"), rows).subquery("grouped")
    g = grouped.c
    means = (select(g.grp, func.avg(g.y).label("mean_y"))
             .group_by(g.grp).subquery("means"))
    err = g.price - g.y
    ape = func.abs(err) / g.y
    totals = (select(
        g.grp, func.count().label("n"),
        func.avg(func.abs(err)).label("mae"),
        func.sum(err * err).label("sse"),
        func.avg(ape).label("mape"),
        func.avg(err / g.y).label("bias"),
        func.avg(case((and_(g.y >= g.lower, g.y <= g.upper), 1.0),
                      else_=0.0)).label("coverage"),
        func.sum((g.y - means.c.mean_y) * (g.y - means.c.mean_y)).label("sst"),
        func.min(g.price).label("price_min"), func.max(g.price).label("price_max"),
        func.min(g.sale_date).label("first_sale"),
        func.max(g.sale_date).label("last_sale"))
        .select_from(grouped.join(means, means.c.grp == g.grp))
        .group_by(g.grp).subquery("totals"))
    ranked = select(
        g.grp, ape.label("ape"),
        func.row_number().over(partition_by=g.grp, order_by=ape).label("rank"),
        func.count().over(partition_by=g.grp).label("n")).subquery("ranked")
    r = ranked.c
    medians = (select(r.grp, func.avg(r.ape).label("median_ape"))
               .where(r.rank.in_([(r.n + 1) // 2, (r.n + 2) // 2]))
               .group_by(r.grp).subquery("medians"))
    query = (select(totals, medians.c.median_ape)
             .select_from(totals.join(medians, medians.c.grp == totals.c.grp))
             .order_by(totals.c.grp))
    with engine.connect() as connection:
        result = [_figures(row, by) for row in connection.execute(query)]
    if not result and by is None:
        result = [{"group": None, "n": 0}]
    return result


def _group_expression(by, rows):
    if by is None:
        return literal("all")
    if by == "week":
        return week_start(rows.c.sale_date)
    if by == "zipcode":
        return rows.c.zipcode
    if by == "price_third":
        # Ties broken by id, so every evaluation puts a sale in one third.
        return func.ntile(3).over(order_by=(rows.c.price, rows.c.pid))
    raise ValueError(f"unknown grouping {by!r}")


def _figures(row, by) -> dict:
    n = int(row.n)
    group = row.grp
    if by is None:
        group = None
    elif by == "price_third":
        group = THIRDS[int(group) - 1]
    elif by == "week":
        group = group if isinstance(group, str) else group.isoformat()
    figures = {
        "group": group, "n": n, "mae": float(row.mae),
        "rmse": float(row.sse / n) ** 0.5, "mape": float(row.mape),
        "median_ape": float(row.median_ape), "bias": float(row.bias),
        "coverage": float(row.coverage),
        "r2": 1 - float(row.sse) / float(row.sst) if row.sst else None,
        "first_sale": str(row.first_sale), "last_sale": str(row.last_sale),
    }
    if by == "price_third":
        figures["price_range"] = [float(row.price_min), float(row.price_max)]
    return figures
