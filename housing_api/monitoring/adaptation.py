"""Each serving process's intervals, adapted to the sales reported since.

For every model a process serves (the active version's, its minimal
companion's, a rollout's challenger's), a thread counts in the database,
per band of its interval, the reported sales of its estimates "now" and
how many fell below or above the bounds they were given; the interval
then answers with those bounds moved (``inference.adaptive``). One query
per model every ``interval`` seconds per process, never on a request.
Estimates asked ``as_of`` a past month keep the interval as trained: the
market of a month the training sales cover has not moved since.

While the database is away, a process keeps the state it last read (or
the interval as trained, if it never read one). A scoring job and the
``score`` command read the counts once, when they start (``adapted``).
Processes refresh on
their own, so for up to one interval two workers may answer with bounds
a few reported sales apart. Fork safety as in ``monitoring.log``: the
thread belongs to the process that starts it (Gunicorn's ``post_fork``).
"""
import logging
import os
import threading
import time

from sqlalchemy import and_, case, func, literal, select

from ..db import predictions, sales
from ..inference.adaptive import Adaptation, BandCounts

log = logging.getLogger(__name__)


def band_counts(engine, version: str, variant: str | None, edges) -> BandCounts:
    """Reported sales of ``version``'s (``variant``'s) estimates "now", by
    band of the interval with ``edges`` (the price each band starts at)."""
    p = predictions.c
    band = sum((case((p.price >= float(edge), 1), else_=0) for edge in edges),
               literal(0)).label("band")
    y = sales.c.sale_price
    query = (select(band, func.count().label("n"),
                    func.sum(case((y < p.lower, 1), else_=0)).label("below"),
                    func.sum(case((y > p.upper, 1), else_=0)).label("above"))
             .select_from(sales.join(predictions, p.id == sales.c.prediction_id))
             .where(and_(p.model_version == version, p.as_of.is_(None),
                         p.variant.is_(None) if variant is None
                         else p.variant == variant))
             .group_by("band"))
    counts = [[0] * (len(edges) + 1) for _ in range(3)]
    with engine.connect() as connection:
        for row in connection.execute(query):
            for i, value in enumerate((row.n, row.below, row.above)):
                counts[i][int(row.band)] = int(value)
    return BandCounts(*counts)


def adapt(engine, predictor, step: float) -> None:
    """Set ``predictor``'s adaptation (and its minimal companion's) from the
    sales reported so far; raises if the database cannot be read."""
    for model in [predictor] + ([predictor.minimal] if predictor.minimal else []):
        counts = band_counts(engine, model.version, model.variant,
                             model.interval.edges)
        adaptation = Adaptation.tracked(counts, model.interval.level, step)
        model.adaptation = adaptation if adaptation.sales else None


def adapted(engine, predictor, step: float) -> bool:
    """``adapt``; False, and ``predictor`` keeps what it had (the interval
    as trained, in a job or the score command), if the database (or its
    prediction log) cannot be read."""
    if step <= 0:
        return False
    try:
        adapt(engine, predictor, step)
    except Exception as exc:
        log.warning("intervals not adapted to the reported sales: %s",
                    type(exc).__name__)
        return False
    return True


def served(state) -> list:
    """The versions ``state`` answers with (each with its companion)."""
    return [p for p in (state.predictor, state.challenger) if p is not None]


class IntervalAdaptation:
    """Keeps the intervals of what ``state`` serves adapted (``step``: log
    units per reported sale; see ``inference.adaptive``)."""

    def __init__(self, state, engine, step: float, interval: float = 60.0):
        self.state, self.engine = state, engine  # a db.ProcessEngine
        self.step, self.interval = float(step), float(interval)
        self._pid = None

    def start(self) -> None:
        """Start this process's refresher thread (once per process)."""
        if self._pid == os.getpid() or self.interval <= 0 or self.step <= 0:
            return
        self._pid = os.getpid()
        threading.Thread(target=self._run, name="interval-adaptation",
                         daemon=True).start()

    def _run(self) -> None:
        while True:
            self.run_once()
            time.sleep(self.interval)

    def run_once(self) -> bool:
        """Read the counts of every served model; False (and each keeps
        what it had) if the database could not be read."""
        return all([adapted(self.engine.get(), predictor, self.step)
                    for predictor in served(self.state)])
