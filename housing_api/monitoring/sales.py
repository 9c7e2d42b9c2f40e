"""Sale prices reported for logged estimates: checked, then stored once."""
from datetime import date, datetime, timezone

from sqlalchemy import and_, select
from sqlalchemy.dialects import postgresql, sqlite

from ..db import predictions, sales
from ..inference.columns import CLIENT_COLUMNS, NUMERIC_COLUMNS

#: Ids per ``IN (...)`` lookup: well under every driver's parameter limit.
LOOKUP_CHUNK = 1000


class UnknownPredictionsError(LookupError):
    """Some rows name prediction ids the log does not hold."""

    def __init__(self, rows: dict[int, str]):
        self.rows = rows  # row index -> prediction id
        super().__init__(f"{len(rows)} unknown prediction ids")


class ConflictingSalesError(ValueError):
    """Some rows report another price or date than the one already stored."""

    def __init__(self, rows: dict[int, dict]):
        self.rows = rows  # row index -> the sale already stored
        super().__init__(f"{len(rows)} sales differ from those already reported")


def report_sales(engine, rows: list[dict]) -> dict:
    """Store each ``{prediction_id, sale_price, sale_date}`` not stored yet.

    All or nothing: unknown ids raise :class:`UnknownPredictionsError`, a
    different price or date for a sale already stored (or twice in ``rows``)
    :class:`ConflictingSalesError`, and nothing is written. The same sale
    reported again is no change. Returns the counts.
    """
    first = {}
    conflicts = {}
    for i, row in enumerate(rows):
        seen = first.setdefault(row["prediction_id"], (i, row))
        if seen[0] != i and _differs(seen[1], row):
            conflicts[i] = _public(seen[1])
    if conflicts:
        raise ConflictingSalesError(conflicts)
    ids = list(first)
    insert = (postgresql.insert if engine.dialect.name == "postgresql"
              else sqlite.insert)(sales)
    with engine.begin() as connection:
        known = set()
        for chunk in _chunks(ids):
            known.update(connection.scalars(
                select(predictions.c.id).where(predictions.c.id.in_(chunk))))
        stored = _stored(connection, ids)
        unknown = {i: row["prediction_id"] for i, row in enumerate(rows)
                   if row["prediction_id"] not in known}
        if unknown:
            raise UnknownPredictionsError(unknown)
        conflicts = {i: _public(stored[row["prediction_id"]])
                     for i, row in enumerate(rows)
                     if row["prediction_id"] in stored
                     and _differs(stored[row["prediction_id"]], row)}
        if conflicts:
            raise ConflictingSalesError(conflicts)
        now = datetime.now(timezone.utc)
        new = [{"prediction_id": pid, "sale_price": float(row["sale_price"]),
                "sale_date": _as_date(row["sale_date"]), "reported_at": now}
               for pid, (_, row) in first.items() if pid not in stored]
        for i in range(0, len(new), LOOKUP_CHUNK):
            # Another request may store the same sale meanwhile: do nothing
            # then, and compare below what won.
            connection.execute(insert.values(new[i:i + LOOKUP_CHUNK])
                               .on_conflict_do_nothing())
        if new:
            stored_now = _stored(connection, [r["prediction_id"] for r in new])
            raced = {i: _public(stored_now[row["prediction_id"]])
                     for i, row in enumerate(rows)
                     if _differs(stored_now.get(row["prediction_id"], row), row)}
            if raced:
                raise ConflictingSalesError(raced)
    return {"received": len(rows), "recorded": len(new),
            "already_reported": len(ids) - len(new)}


def _stored(connection, ids: list[str]) -> dict[str, dict]:
    """The sales already stored for ``ids``, by prediction id."""
    found = {}
    for chunk in _chunks(ids):
        found.update((r.prediction_id, r._asdict()) for r in connection.execute(
            select(sales.c.prediction_id, sales.c.sale_price, sales.c.sale_date)
            .where(sales.c.prediction_id.in_(chunk))))
    return found


def _differs(stored: dict, row: dict) -> bool:
    return (float(stored["sale_price"]) != float(row["sale_price"])
            or _as_date(stored["sale_date"]) != _as_date(row["sale_date"]))


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _public(stored: dict) -> dict:
    return {"sale_price": float(stored["sale_price"]),
            "sale_date": _as_date(stored["sale_date"]).isoformat()}


def _chunks(items: list):
    for i in range(0, len(items), LOOKUP_CHUNK):
        yield items[i:i + LOOKUP_CHUNK]


def reported_sales(engine) -> dict:
    """Every reported sale of a fully described home, oldest sale first.

    Client columns (from the log), ``price`` (the reported one) and
    ``sale_date``: what ``housing-api train --with-sales`` adds to the
    training data. Estimates from the minimal endpoint lack columns and are
    left out.
    """
    query = (select(*(predictions.c[name] for name in CLIENT_COLUMNS),
                    sales.c.sale_price, sales.c.sale_date)
             .select_from(sales.join(predictions,
                                     predictions.c.id == sales.c.prediction_id))
             .where(and_(*(predictions.c[name].is_not(None)
                           for name in NUMERIC_COLUMNS)))
             .order_by(sales.c.sale_date, sales.c.prediction_id))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    columns = {name: [row._mapping[name] for row in rows] for name in CLIENT_COLUMNS}
    return {"columns": columns,
            "price": [row.sale_price for row in rows],
            "sale_date": [_as_date(row.sale_date) for row in rows]}
