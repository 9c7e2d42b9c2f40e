"""Scoring a CSV of any size: each home's estimate, chunk by chunk.

``score_csv`` reads homes with the future examples' header a chunk at a
time (memory stays flat whatever the file's size), estimates the valid
ones with one predict call per chunk, and writes each estimate, interval
and version in input order. A row that fails validation goes to the
errors file with the reason, and the rest carry on. Both files are
written under temporary names and renamed at the end: an interrupted run
leaves no half-written result.

Validation is the API's: ``RowChecks`` comes from the layer that owns the
schema. Its column-wise check (``fast_mask``) clears the common rows at
numpy speed; a row it does not clear is checked alone (``load``), which
has the final word and the messages the API would give.
"""
import csv
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path

import numpy as np
import pandas as pd

from ..inference.columns import CLIENT_COLUMNS, NUMERIC_COLUMNS

#: Homes read, checked and estimated at a time.
CHUNK_ROWS = 10_000
#: The result's columns; ``row`` is the home's row in the input (1: the
#: first after the header), as in the errors file.
RESULT_COLUMNS = ("row", "prediction", "lower", "upper", "level",
                  "model_version", "as_of", "warnings")
EXPLAIN_COLUMNS = ("explanation", "comparables")
ERROR_COLUMNS = ("row", "reason", *CLIENT_COLUMNS)


class ScoringError(ValueError):
    """The file cannot be scored at all (no header, the wrong columns);
    nothing was written."""


@dataclass(frozen=True)
class RowChecks:
    """How homes are validated, by the layer that owns the schema.

    ``fast_mask(columns)``: True for each home that is valid as it stands
    (numbers as float64 with NaN for cells that are not numbers, zipcodes as
    strings). ``load(cells)``: a home's typed cells checked alone, returning
    ``(home, None)`` or ``(None, errors)``; it has the final word, and
    refuses a zipcode the version has no demographics for.
    """

    fast_mask: Callable[[Mapping[str, np.ndarray]], np.ndarray]
    load: Callable[[dict], tuple[dict | None, dict | None]]


@dataclass(frozen=True)
class Summary:
    rows: int
    scored: int
    failed: int
    seconds: float
    result: Path
    #: The errors file, or None when no row was refused.
    errors: Path | None


def errors_path(out: Path) -> Path:
    """``OUT.errors.csv`` beside ``OUT.csv``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.errors{out.suffix or '.csv'}")


def count_rows(path: Path) -> int:
    """Data rows of a CSV by its line breaks (a quoted one counts too)."""
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(0, lines + (last != b"\n") - 1)


def _header(reader) -> list[str]:
    return check_header(next(reader, None))


def check_header(header: list[str] | None) -> list[str]:
    """The header's column names; ``ScoringError`` unless they are the 18
    columns of the future examples, in any order."""
    if not header:
        raise ScoringError("the file is empty: it needs the header of "
                           "future_unseen_examples.csv and one row per home")
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in CLIENT_COLUMNS]
    missing = [c for c in CLIENT_COLUMNS if c not in header]
    if unknown or missing or len(header) != len(CLIENT_COLUMNS):
        raise ScoringError(
            "the header must have the 18 columns of future_unseen_examples.csv"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + ("; a column appears twice" if not unknown and not missing else ""))
    return header


def _chunks(f, size: int) -> Iterator[tuple[str, list]]:
    """``("lines", lines)`` while the file has no quotes (pandas' C parser
    reads them), then ``("rows", rows)`` from the csv module: a quoted cell
    may hold a comma or a line break."""
    while lines := list(islice(f, size)):
        if any('"' in line for line in lines):
            reader = csv.reader(chain(lines, f))
            while rows := list(islice(reader, size)):
                yield "rows", rows
            return
        yield "lines", lines


def csv_cell(name: str, text: str):
    """A CSV cell typed as a JSON client would send it (the API's rule)."""
    if name == "zipcode":
        return text
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _numbers(column) -> np.ndarray:
    """A column as float64, NaN where a cell is not a number."""
    if column.dtype.kind in "iuf":
        return column.to_numpy(np.float64)
    return pd.to_numeric(column, errors="coerce").to_numpy(np.float64)


class _Chunk:
    """One chunk's rows: the valid homes as columns, and the refused rows.

    ``rows`` from the csv module, or ``lines`` (no quotes) that pandas' C
    parser reads when each has one cell per column; either way a home the
    column-wise check does not clear is checked alone, from its own cells.
    """

    def __init__(self, kind: str, data: list, first: int, header: list[str],
                 checks: RowChecks, known):
        width = len(header)
        if kind == "lines" and all(line.count(",") == width - 1 for line in data):
            frame = pd.read_csv(io.StringIO("".join(data)), header=None,
                                names=header, dtype={"zipcode": str},
                                na_filter=False)
            numbers = np.arange(first, first + len(data), dtype=np.int64)
            self.errors = []

            def cells(i):
                return data[i].rstrip("\r\n").split(",")
            by_name = {name: frame[name] for name in header}
        else:
            rows = data if kind == "rows" else list(csv.reader(data))
            shaped = [r for r in rows if len(r) == width]
            self.errors = [(first + i, {"_row": [
                f"{len(r)} cells, expected {width}."]}, r)
                for i, r in enumerate(rows) if len(r) != width]
            numbers = np.asarray([first + i for i, r in enumerate(rows)
                                  if len(r) == width], dtype=np.int64)

            def cells(i):
                return shaped[i]
            by_name = {name: pd.Series(values, dtype=object) for name, values in
                       zip(header, zip(*shaped))} if shaped else {
                name: pd.Series([], dtype=object) for name in header}
        columns = {name: _numbers(by_name[name]) for name in NUMERIC_COLUMNS}
        columns["zipcode"] = by_name["zipcode"].to_numpy(dtype=object)
        ok = checks.fast_mask(columns) if len(numbers) else np.zeros(0, bool)
        ok &= np.fromiter((z in known for z in columns["zipcode"]), bool, len(ok))
        for i in np.flatnonzero(~ok):
            raw = cells(i)
            typed = {name: csv_cell(name, raw[j].strip())
                     for j, name in enumerate(header)}
            home, errors = checks.load(typed)
            if home is None:
                self.errors.append((int(numbers[i]), errors, raw))
                continue
            for name in NUMERIC_COLUMNS:
                columns[name][i] = home[name]
            columns["zipcode"][i] = home["zipcode"]
            ok[i] = True
        #: Rows of the file this chunk read, refused ones included.
        self.read = len(data)
        self.rows = numbers[ok]
        self.columns = {name: values[ok] for name, values in columns.items()}
        self.columns["zipcode"] = list(self.columns["zipcode"])
        self.errors.sort(key=lambda e: e[0])


def _read_ahead(chunks, header, checks, known) -> Iterator[_Chunk]:
    """The chunks, each read and checked in a thread of its own while the
    one before is estimated and written (the predict releases the GIL in
    its native code, as does pandas' parser): one chunk ahead, in order."""
    first = [1]

    def prepare():
        item = next(chunks, None)
        if item is None:
            return None
        kind, data = item
        chunk = _Chunk(kind, data, first[0], header, checks, known)
        first[0] += len(data)
        return chunk

    with ThreadPoolExecutor(1, thread_name_prefix="scoring-reader") as reader:
        ahead = reader.submit(prepare)
        while (chunk := ahead.result()) is not None:
            ahead = reader.submit(prepare)
            yield chunk


def _money(values: np.ndarray) -> list[str]:
    """To the cent, rounded as the API rounds (half to even, exactly)."""
    return [f"{v:.2f}" for v in values.tolist()]


#: Cells that make the csv module quote: a row holding none is joined as is.
_NEEDS_QUOTES = re.compile(r'[",\r\n]')


def _result_lines(rows: np.ndarray, result, version: str,
                  details: Sequence[dict] | None,
                  ids: Sequence[str] | None) -> str:
    """One chunk's result rows, as CSV text (see RESULT_COLUMNS)."""
    n = len(rows)
    level = f"{result.level:g}"
    columns = [list(map(str, rows.tolist())), _money(result.price),
               _money(result.lower), _money(result.upper), [level] * n,
               [version] * n, result.as_of or [""] * n,
               ["; ".join(w) for w in result.warnings]]
    if details is not None:
        columns += [[json.dumps(d["explanation"], default=float) for d in details],
                    [json.dumps(d["comparables"], default=float) for d in details]]
    if ids is not None:
        columns.append(list(ids))
    quoted = [i for i in (5, 6, 7) if any(map(_NEEDS_QUOTES.search, columns[i]))]
    if details is None and not quoted:  # numbers, a version, a month: as they are
        return "".join(",".join(row) + "\n" for row in zip(*columns))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(zip(*columns))
    return out.getvalue()


def _score(f, header, predictor, checks, chunk_rows, explain, out, errors,
           progress, record, counted, ids) -> tuple[int, int, int]:
    """Estimate ``f``'s chunks into ``out`` and the refused rows into
    ``errors``; return the rows read, estimated and refused."""
    rows = scored = failed = 0
    errors.writerow(ERROR_COLUMNS)
    order = [header.index(c) for c in CLIENT_COLUMNS]
    for chunk in _read_ahead(_chunks(f, chunk_rows), header, checks,
                             predictor.demographics):
        rows += chunk.read
        if len(chunk.rows):
            result = predictor.predict(chunk.columns)
            details = (predictor.explain(chunk.columns, result.price)
                       if explain else None)
            out.write(_result_lines(chunk.rows, result, predictor.version,
                                    details, ids(chunk.rows) if ids else None))
            if record is not None:
                record(predictor, chunk, result)
            scored += len(chunk.rows)
        for number, reason, cells in chunk.errors:
            cells = [cells[j] if j < len(cells) else "" for j in order] \
                if len(cells) == len(header) else cells
            errors.writerow([number, json.dumps(reason), *cells])
        failed += len(chunk.errors)
        if counted is not None:
            counted(rows, failed)
        if progress is not None:
            progress.update(chunk.read, postfix=f"{failed:,} refused"
                            if failed else None)
    return rows, scored, failed


def score_csv(predictor, source: Path, out: Path, checks: RowChecks,
              chunk_rows: int = CHUNK_ROWS, explain: bool = False,
              progress=None,
              record: Callable[[object, "_Chunk", object], None] | None = None,
              counted: Callable[[int, int], None] | None = None,
              ids: Callable[[np.ndarray], Sequence[str]] | None = None,
              ) -> Summary:
    """Estimate every home of ``source`` with ``predictor`` into ``out``
    (and the refused rows into ``errors_path(out)``); see the module doc.

    ``progress`` (an ``ops.progress.Progress``) counts the rows read;
    ``record(predictor, chunk, result)`` is called for every chunk
    estimated (the prediction log: ``chunk.rows`` are the homes' rows in
    the file, ``chunk.columns`` their inputs); ``counted(rows, refused)``
    after every chunk, with the totals so far (a job's status); with
    ``ids(rows)``, each estimate's prediction id in a last column,
    ``prediction_id`` (a job's, as its estimates are logged).
    """
    started = time.monotonic()
    out, errors_out = Path(out), errors_path(out)
    if explain and predictor.explainer is None:
        raise ScoringError(f"{predictor.name} has no explanation method; "
                           "score without --explain")
    partial = [out.with_name(f".{out.name}.partial"),
               errors_out.with_name(f".{errors_out.name}.partial")]
    try:
        with open(source, newline="", encoding="utf-8-sig") as f, \
                open(partial[0], "w", newline="") as result_file, \
                open(partial[1], "w", newline="") as errors_file:
            header = _header(csv.reader([f.readline()]))
            result_file.write(",".join(
                (*RESULT_COLUMNS, *(EXPLAIN_COLUMNS if explain else ()),
                 *(("prediction_id",) if ids else ()))) + "\n")
            rows, scored, failed = _score(
                f, header, predictor, checks, chunk_rows, explain, result_file,
                csv.writer(errors_file, lineterminator="\n"), progress, record,
                counted, ids)
        if rows == 0:
            raise ScoringError("the file has a header but no homes")
        os.replace(partial[0], out)
        if failed:
            os.replace(partial[1], errors_out)
        else:  # none refused: no errors file, not even an old one
            errors_out.unlink(missing_ok=True)
    finally:
        for temporary in partial:
            temporary.unlink(missing_ok=True)
    return Summary(rows, scored, failed, time.monotonic() - started, out,
                   errors_out if failed else None)
