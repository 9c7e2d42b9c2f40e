"""The folder store: immutable version folders, an atomic pointer, a file lock.

Layout under its root::

    versions/<version>/   artifact, demographics.csv, metadata.json
    CURRENT               name of the active version
    history.json          activations, newest last (exact rollback)
    ROLLOUT               the rollout in progress, if any (see ``rollouts``)
    ROLLOUT.ended         the last rollout that ended, how and why
    compiled/             compiled trees made on this machine
    .lock                 file lock around every change

Every write goes to a temporary name, is fsynced, then renamed into place,
so a crash leaves either the old state or the new one. Unfinished work
lives under dot-names in ``versions/`` (never listed as a version) and is
swept up by the next publish.
"""
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from . import files as folder_files
from .base import VersionStore
from .pointer import Pointer
from .errors import InvalidModelError, ModelStoreError, VersionNotFoundError
from .files import METADATA, VERSION_RE
from .rollouts import EndedRollout, Rollout

#: Staging folders older than this were left by a crashed publish.
STALE_STAGING_SECONDS = 3600


class ModelStore(VersionStore):
    """Versions on disk under ``root``; see the module docstring."""

    def __init__(self, root: Path, lock_timeout: float = 30.0, lean: bool = True,
                 compiled: bool = True):
        super().__init__(lean=lean, compiled=compiled)
        self.root = Path(root)
        self.location = str(self.root)
        #: Machine code made here from the versions' LightGBM models (by
        #: training or ``housing-api models compile``); never from an upload.
        self.compiled_dir = self.root / "compiled"
        self.versions_dir = self.staging_dir = self.root / "versions"
        self.pointer = self.root / "CURRENT"
        self.history_file = self.root / "history.json"
        self.rollout_file = self.root / "ROLLOUT"
        self.ended_rollout_file = self.root / "ROLLOUT.ended"
        self.lock_timeout = lock_timeout

    @property
    def lock(self) -> FileLock:
        """The store's file lock; hold it around file operations only."""
        self.root.mkdir(parents=True, exist_ok=True)
        # A new handle each time: the store is created in the Gunicorn
        # master, and a lock object inherited across fork is refused.
        return FileLock(self.root / ".lock", timeout=self.lock_timeout)

    def path(self, version: str) -> Path:
        """Return the folder of ``version``, which must exist."""
        if not VERSION_RE.match(version):
            raise VersionNotFoundError(f"no model version {version!r}")
        path = self.versions_dir / version
        if not (path / METADATA).is_file():
            raise VersionNotFoundError(f"no model version {version!r}")
        return path

    def list_versions(self) -> list[str]:
        """Return the stored versions, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.versions_dir.iterdir()
            if not p.name.startswith(".") and (p / METADATA).is_file()
        )

    def metadata(self, version: str) -> dict:
        """Return the metadata of ``version``."""
        return json.loads((self.path(version) / METADATA).read_text())

    def exists(self, version: str) -> bool:
        """Return whether ``version`` is stored (complete, not being deleted)."""
        return bool(VERSION_RE.match(version)) and (
            self.versions_dir / version / METADATA).is_file()

    def _commit(self, staging: Path, version: str) -> None:
        with self.lock:
            target = self.versions_dir / version
            if target.exists():
                raise InvalidModelError(f"version {version!r} already exists")
            # One rename: the version appears whole or not at all.
            os.replace(staging, target)
        folder_files.fsync_dir(self.versions_dir)

    def _sweep(self) -> None:
        """Remove what crashed publishes and deletes left behind."""
        now = time.time()
        for path in self.versions_dir.glob(".*"):
            try:
                stale = path.name.startswith(".deleting-") or (
                    path.name.startswith(".staging-")
                    and now - path.stat().st_mtime > STALE_STAGING_SECONDS)
            except FileNotFoundError:
                continue
            if stale:
                shutil.rmtree(path, ignore_errors=True)

    def current(self) -> str | None:
        """Return the active version's name, or None before the first one."""
        try:
            return self.pointer.read_text().strip() or None
        except FileNotFoundError:
            return None

    def _history(self, current: str | None) -> list[str]:
        """Return the activation history, oldest first, ending at CURRENT."""
        try:
            journal = json.loads(self.history_file.read_text())
        except (FileNotFoundError, ValueError):
            journal = {}
        if not isinstance(journal, dict):
            journal = {"history": journal if isinstance(journal, list) else []}
        # The history is written before CURRENT and keeps the one it
        # replaces: after a crash between the two writes, CURRENT still
        # names the old version and "before" is the old history, exactly.
        for key in ("history", "before"):
            history = list(journal.get(key) or [])
            if history and history[-1] == current:
                return history
        # CURRENT set by hand (or by a store without history): start there.
        history = list(journal.get("history") or [])
        return history + [current] if current else history

    def _pointer(self) -> Pointer:
        current = self.current()
        rollout = damage = None
        try:
            rollout = Rollout.from_json(self.rollout_file.read_bytes())
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError) as exc:
            damage = f"{self.rollout_file} is unreadable: {exc}"
        try:
            ended = self.ended_rollout()
        except ModelStoreError:
            ended = None  # reported by ended_rollout(); the next end replaces it
        return Pointer(current, tuple(self._history(current)), rollout, ended,
                       damage)

    def history(self) -> list[str]:
        """Return the activation history, oldest first, ending at CURRENT."""
        return self._history(self.current())

    def ended_rollout(self) -> EndedRollout | None:
        """The last rollout that ended, how and why, or None."""
        try:
            return EndedRollout.from_json(self.ended_rollout_file.read_bytes())
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelStoreError(
                f"{self.ended_rollout_file} is unreadable: {exc}") from exc

    def _change(self, change: Callable[[Pointer], Pointer]) -> Pointer:
        with self.lock:
            old = self._pointer()
            new = change(old)
            if new != old:
                self._write(old, new)
            return new

    def _write(self, old: Pointer, new: Pointer) -> None:
        """Write what changed: history, CURRENT, ROLLOUT.ended, then ROLLOUT."""
        if (new.current, new.history) != (old.current, old.history):
            # History first, CURRENT last: see _history() for the crash case.
            journal = {"history": list(new.history),
                       "before": list(old.history)}
            folder_files.replace_atomically(self.history_file,
                                            json.dumps(journal).encode())
            folder_files.replace_atomically(self.pointer,
                                            f"{new.current}\n".encode())
        if new.ended != old.ended:
            folder_files.replace_atomically(self.ended_rollout_file,
                                            new.ended.to_json())
        if new.rollout is not None and new.rollout != old.rollout:
            folder_files.replace_atomically(self.rollout_file,
                                            new.rollout.to_json())
        elif new.rollout is None and (old.rollout or old.damage):
            self.rollout_file.unlink(missing_ok=True)
            folder_files.fsync_dir(self.root)

    def delete(self, version: str) -> None:
        """Remove a version that is not active, nor in a rollout."""
        with self.lock:
            path = self.path(version)
            self._check_deletable(version, self._pointer())
            trash = self.versions_dir / f".deleting-{version}-{uuid.uuid4().hex}"
            os.replace(path, trash)
            folder_files.fsync_dir(self.versions_dir)
            self._prune_compiled()
        shutil.rmtree(trash, ignore_errors=True)
