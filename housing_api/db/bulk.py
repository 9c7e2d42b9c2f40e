"""Many rows into one table at the driver's speed: the prediction log's writes.

SQLAlchemy's executemany turns each row into a dict of bound parameters and
runs every value through its type in Python: about 37 ms for 1,000 log rows,
a third of what answering a 1,000-home batch costs. Here rows are tuples in
the table's column order and go to the driver as they are. New rows go to
PostgreSQL by binary COPY (no value is formatted as text), to SQLite as
multi-row INSERTs of up to 256 rows; rows that may be stored already (a
replayed spool) by ``INSERT ... ON CONFLICT DO NOTHING``, the same way.

Not executemany: the sqlite3 module lets go of the GIL around each row's
step, and a thread that wants it back waits for the request thread's switch
interval (5 ms): 1,000 rows took 5 s beside a busy request thread, and
interrupted it 1,000 times. One statement per 256 rows lets go once.
Statements come in powers of two (1,000 rows: 256 x 3, 128, 64, 32, 8): the
driver keeps each prepared statement it ran, and one per batch size grew a
worker by 10 MB.
The one conversion left, times as SQLite's text, is done once per distinct
value.

Errors come out as SQLAlchemy's (``OperationalError`` when the database is
away, ``IntegrityError`` when it refuses a row), as from any other statement.
"""
from collections.abc import Sequence
from itertools import chain

from sqlalchemy import Date, DateTime, Table
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

#: Most rows per INSERT statement: 256 x 29 columns stay within SQLite's
#: bound parameters (32,766 since 3.32) and PostgreSQL's (65,535).
ROWS_PER_STATEMENT = 256


class BulkInsert:
    """Insert tuples, in ``table``'s column order, into ``table`` on ``engine``."""

    def __init__(self, engine: Engine, table: Table):
        self.engine = engine
        self.table = table
        self.columns = [column.name for column in table.columns]
        dialect = engine.dialect
        # Only the table's own names, quoted by the dialect, go into the
        # SQL; every value is a bound parameter (or COPY data).
        quote = dialect.identifier_preparer
        into = (f"{quote.format_table(table)} ("
                + ", ".join(quote.quote(name) for name in self.columns) + ")")
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._into = into
        self._row_marks = "(" + ", ".join([mark] * len(self.columns)) + ")"
        self._statements = {}  # (rows, once) -> SQL, at most 2 x 9
        self._copy = f"COPY {into} FROM STDIN (FORMAT BINARY)"
        self._copy_types = None  # the columns' type oids, asked once
        # Python values the driver cannot store as they are (SQLite has no
        # date type): index -> SQLAlchemy's own conversion for the column.
        self._convert = {
            i: processor for i, column in enumerate(table.columns)
            if isinstance(column.type, (Date, DateTime))
            and (processor := column.type.dialect_impl(dialect)
                 .bind_processor(dialect)) is not None
        }

    def new(self, rows: Sequence[tuple]) -> None:
        """Store rows whose keys are new, in one transaction.

        A duplicate key fails the whole call (``IntegrityError``); use
        :meth:`once` for rows that may be stored already.
        """
        if not rows:
            return
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":
                self._copy_rows(connection, rows)
            else:
                self._insert(connection, rows, once=False)

    def once(self, rows: Sequence[tuple]) -> None:
        """Store rows, skipping any whose key is stored already."""
        if not rows:
            return
        with self.engine.begin() as connection:
            self._insert(connection, rows, once=True)

    def _insert(self, connection: Connection, rows: Sequence[tuple], *,
                once: bool) -> None:
        # All values in one flat list, as the statements bind them: each
        # chunk is then one slice of it.
        values = self._driver_values(rows)
        width, start = len(self.columns), 0
        while start < len(rows):
            size = min(ROWS_PER_STATEMENT,
                       1 << ((len(rows) - start).bit_length() - 1))
            # A tuple: a list would make it an executemany.
            connection.exec_driver_sql(
                self._statement(size, once),
                tuple(values[start * width:(start + size) * width]))
            start += size

    def _statement(self, n_rows: int, once: bool) -> str:
        """``INSERT`` of ``n_rows`` rows (a power of two), made once."""
        key = (n_rows, once)
        if key not in self._statements:
            values = ", ".join([self._row_marks] * n_rows)
            self._statements[key] = (
                f"INSERT INTO {self._into} VALUES {values}"  # nosec B608 - names
                + (" ON CONFLICT DO NOTHING" if once else ""))
        return self._statements[key]

    def _driver_values(self, rows: Sequence[tuple]) -> list:
        """The rows' values in one list, converted where the driver needs it."""
        values = list(chain.from_iterable(rows))
        width = len(self.columns)
        for i, convert in self._convert.items():
            done = {}
            # Column i is every width-th value: read and replaced as a slice.
            values[i::width] = [
                done[v] if v in done else done.setdefault(v, convert(v))
                for v in values[i::width]]
        return values

    def _copy_rows(self, connection: Connection, rows: Sequence[tuple]) -> None:
        # psycopg's COPY, under SQLAlchemy's transaction. Its errors are the
        # driver's own: wrap them as SQLAlchemy wraps a statement's.
        dbapi_connection = connection.connection.driver_connection
        cursor = dbapi_connection.cursor()
        try:
            if self._copy_types is None:
                self._copy_types = self._column_types(cursor)
            with cursor.copy(self._copy) as copy:
                copy.set_types(self._copy_types)
                for row in rows:
                    copy.write_row(row)
        except self.engine.dialect.loaded_dbapi.Error as exc:
            if self.engine.dialect.is_disconnect(exc, dbapi_connection, cursor):
                connection.invalidate(exc)
            raise DBAPIError.instance(
                self._copy, None, exc, self.engine.dialect.loaded_dbapi.Error,
                connection_invalidated=connection.invalidated) from exc
        finally:
            cursor.close()

    def _column_types(self, cursor) -> list[int]:
        """The oid of each column's type, as the server has the table."""
        cursor.execute(
            "SELECT attname, atttypid::int FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (self.table.name,))
        oids = dict(cursor.fetchall())
        return [oids[name] for name in self.columns]
