"""Homes sent as CSV, with the header of ``future_unseen_examples.csv``:
read into typed rows for the schemas to validate (the batch endpoint and
the batch page)."""
import csv
import io

from ..serving.scoring import csv_cell
from .schemas import HomeSchema

#: The 18 columns a CSV must have.
_COLUMNS = frozenset(HomeSchema().fields)


class CsvProblem(ValueError):
    """A CSV that cannot be read as homes: a message and errors by place."""

    def __init__(self, message: str, errors: dict):
        super().__init__(message)
        self.message, self.errors = message, errors


def read_csv_rows(text: str, limit: int) -> list[dict]:
    """The rows of a CSV with the future examples' header, cells typed.

    Raises :class:`CsvProblem` for a wrong header, a ragged row, no rows or
    more than ``limit``; the cells themselves are validated by the caller.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise CsvProblem("The CSV is empty; send the header of "
                         "future_unseen_examples.csv and one row per home.",
                         {"header": ["Missing data for required field."]})
    header = [h.strip() for h in header]
    known = _COLUMNS
    errors = {h: ["Unknown column."] for h in header if h not in known}
    errors.update({c: ["Missing column."] for c in known if c not in header})
    if errors:
        raise CsvProblem("The CSV header must have the 18 columns of "
                         "future_unseen_examples.csv.", errors)
    rows = []
    for i, cells in enumerate(reader):
        if len(rows) == limit:
            raise CsvProblem(f"At most {limit} homes per batch.",
                             {"rows": [f"Longer than maximum length {limit}."]})
        if len(cells) != len(header):
            raise CsvProblem("Every CSV row needs one cell per column.",
                             {i: {"_row": [f"{len(cells)} cells, expected "
                                           f"{len(header)}."]}})
        rows.append({h: csv_cell(h, c.strip()) for h, c in zip(header, cells)})
    if not rows:
        raise CsvProblem("The CSV has a header but no homes.",
                         {"rows": ["Shorter than minimum length 1."]})
    return rows
