"""Append-only files that keep log records while the database is away.

Each writer owns one file, locked for as long as the writer lives; a file
nobody holds was left by a dead worker and any writer may replay it.
Replays insert with "on conflict do nothing", so a replay cut short by a
crash is simply done again.
"""
import fcntl
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path


class Spool:
    """This process's spool file, and the orphans of dead ones, in ``folder``."""

    SUFFIX = ".jsonl"

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = self.folder / f"{name}{self.SUFFIX}"
        self._lock = threading.Lock()
        # Locked under another name, then renamed: a writer looking for
        # orphans never sees this file unlocked (it would take it for one).
        opening = self.folder / f".{name}.opening"
        self._file = open(opening, "a+b")
        # Held until this process exits: other writers leave the file alone.
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(opening, self.path)
        self.rows = 0

    def append(self, rows: list[dict]) -> None:
        """Add ``rows`` at the end of this process's file, flushed to the OS."""
        data = b"".join(json.dumps(row, default=str).encode() + b"\n"
                        for row in rows)
        with self._lock:
            self._file.seek(0, os.SEEK_END)
            self._file.write(data)
            self._file.flush()
            self.rows += len(rows)

    def take_own(self) -> list[dict]:
        """Read back this process's rows (the caller empties the file after)."""
        with self._lock:
            self._file.flush()
            self._file.seek(0)
            return _rows(self._file.read())

    def clear_own(self, count: int) -> None:
        """Forget the first ``count`` rows, once they are in the database."""
        with self._lock:
            self._file.seek(0)
            rest = self._file.read().splitlines(keepends=True)[count:]
            self._file.seek(0)
            self._file.truncate()
            self._file.write(b"".join(rest))
            self._file.flush()
            os.fsync(self._file.fileno())
            self.rows = len(rest)

    def orphans(self) -> Iterator[tuple[Path, list[dict]]]:
        """Yield (path, rows) of each file no live writer holds, oldest first.

        The file stays locked while the caller handles it; the caller
        removes it with :meth:`remove` once its rows are stored.
        """
        paths = sorted((p for p in self.folder.glob(f"*{self.SUFFIX}")
                        if p != self.path), key=_mtime)
        for path in paths:
            try:
                f = open(path, "rb")
            except FileNotFoundError:
                continue
            with f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer's own file
                if not path.exists():
                    continue  # replayed and removed by another writer meanwhile
                yield path, _rows(f.read())

    @staticmethod
    def remove(path: Path) -> None:
        path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close this process's file; remove it if it holds nothing."""
        with self._lock:
            if self._file.closed:
                return
            self._file.seek(0, os.SEEK_END)
            empty = self._file.tell() == 0
            if empty:
                self.path.unlink(missing_ok=True)
            self._file.close()


def _rows(data: bytes) -> list[dict]:
    rows = []
    for line in data.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            break  # a line torn by a crash: everything before it is whole
    return rows


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
