"""The model store: immutable version folders, an atomic pointer, a file lock.

Unfinished work lives under dot-names in ``versions/`` (never listed as a
version) and is swept up by the next publish.
"""
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from filelock import FileLock

from ..inference.predictor import Predictor
from .errors import (
    ActiveVersionError, InvalidModelError, ModelStoreError, NothingToRollbackError,
    VersionNotFoundError,
)
from . import files as folder_files
from .files import DEMOGRAPHICS, FILE_NAME_RE, METADATA, VERSION_RE, new_version_name
from .loading import load_version
from .rollouts import EndedRollout, Rollout, RolloutError

#: Staging folders older than this were left by a crashed publish.
STALE_STAGING_SECONDS = 3600
#: Activations kept in history.json: how far back rollbacks can walk.
HISTORY_LIMIT = 1000


class ModelStore:
    """Versions on disk under ``root``; see the module docstring."""

    def __init__(self, root: Path, lock_timeout: float = 30.0, lean: bool = True,
                 compiled: bool = True):
        self.root = Path(root)
        #: Serve through housing_api.lean where it reproduces the library.
        self.lean = lean
        #: With ``lean``, serve LightGBM models through their compiled trees
        #: where ``compiled_dir`` has them for this CPU.
        self.compiled = compiled
        #: Machine code made here from the versions' LightGBM models (by
        #: training or ``housing-api models compile``); never from an upload.
        self.compiled_dir = self.root / "compiled"
        self.versions_dir = self.root / "versions"
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

    def current(self) -> str | None:
        """Return the active version's name, or None before the first one."""
        try:
            return self.pointer.read_text().strip() or None
        except FileNotFoundError:
            return None

    def history(self) -> list[str]:
        """Return the activation history, oldest first, ending at CURRENT."""
        try:
            journal = json.loads(self.history_file.read_text())
        except (FileNotFoundError, ValueError):
            journal = {}
        if not isinstance(journal, dict):
            journal = {"history": journal if isinstance(journal, list) else []}
        current = self.current()
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

    def previous(self) -> str | None:
        """Return the version a rollback would activate."""
        history = self.history()
        return history[-2] if len(history) > 1 else None

    def publish(
        self,
        files: Mapping[str, bytes],
        metadata: Mapping,
        check: Callable[[Predictor], None] | None = None,
    ) -> str:
        """Validate and store a new version; return its name.

        ``files`` holds the artifact (named in ``metadata["artifact"]``) and
        ``demographics.csv``. ``check`` runs on the loaded predictor and
        raises :class:`InvalidModelError` to refuse the version. Nothing is
        left behind when any step fails.
        """
        metadata = dict(metadata)
        version = metadata.get("version") or new_version_name(
            str(metadata.get("name") or "model"))
        if not isinstance(version, str) or not VERSION_RE.match(version):
            raise InvalidModelError(f"invalid version name {version!r}")
        metadata["version"] = version
        artifact = metadata.get("artifact")
        if not isinstance(artifact, Mapping):
            raise InvalidModelError(
                "metadata needs an 'artifact' object with its file and format")
        artifact = dict(artifact)
        for name in files:
            if not FILE_NAME_RE.match(name) or name == METADATA:
                raise InvalidModelError(f"invalid file name {name!r}")
        name = artifact.get("file")
        if not isinstance(name, str) or name not in files or name == DEMOGRAPHICS \
                or DEMOGRAPHICS not in files:
            raise InvalidModelError(
                f"a version needs its artifact file and {DEMOGRAPHICS}")
        declared = artifact.get("sha256")
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        self._sweep()
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.versions_dir))
        try:
            for name, data in files.items():
                folder_files.write_durably(staging / name, data)
            artifact["sha256"] = folder_files.sha256_file(
                staging / artifact["file"])
            if declared and declared != artifact["sha256"]:
                raise InvalidModelError(
                    "the artifact does not match the sha256 given in its metadata")
            metadata["artifact"] = artifact
            metadata["demographics_sha256"] = folder_files.sha256_file(
                staging / DEMOGRAPHICS)
            # Every file, so that fitted state beside the artifact (a feature
            # set's context) is checked on load like the artifact itself.
            metadata["files"] = {name: folder_files.sha256_file(staging / name)
                                 for name in sorted(files)}
            folder_files.write_durably(
                staging / METADATA, json.dumps(metadata, indent=2).encode()
            )
            folder_files.fsync_dir(staging)
            predictor = self.load_folder(staging, version)
            if check is not None:
                check(predictor)
            with self.lock:
                target = self.versions_dir / version
                if target.exists():
                    raise InvalidModelError(f"version {version!r} already exists")
                # One rename: the version appears whole or not at all.
                os.replace(staging, target)
            folder_files.fsync_dir(self.versions_dir)
        except (ModelStoreError, OSError):
            raise
        except Exception as exc:
            raise InvalidModelError(f"the model failed validation: {exc}") from exc
        finally:
            # Gone after a successful rename; after a failure, nothing stays.
            shutil.rmtree(staging, ignore_errors=True)
        return version

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

    def activate(self, version: str) -> None:
        """Make ``version`` the active one (after checking it loads)."""
        # Loading outside the lock: it reads an immutable folder, and a
        # version deleted meanwhile is caught again under the lock.
        self.load(version)
        with self.lock:
            self.path(version)
            history = self.history()
            if history and history[-1] == version:
                return
            self._set_active(version, history + [version], history)

    def rollback(self) -> str:
        """Re-activate the version that was active before the current one.

        Walks the activation history back, skipping deleted versions; each
        rollback goes one activation further back. A version that no longer
        loads is refused, and nothing changes.
        """
        for _ in range(5):
            history = self.history()
            target, kept = self._rollback_target(history)
            self.load(target)
            with self.lock:
                # Decided without the lock: redo if someone moved meanwhile.
                if self.history() == history and self.exists(target):
                    self._set_active(target, kept, history)
                    return target
        raise ModelStoreError("the store kept changing during the rollback")

    def _rollback_target(self, history: list[str]) -> tuple[str, list[str]]:
        current, kept = (history[-1] if history else None), history[:-1]
        while kept:
            if kept[-1] != current and self.exists(kept[-1]):
                return kept[-1], kept
            kept.pop()
        raise NothingToRollbackError("no earlier activation to roll back to")

    def exists(self, version: str) -> bool:
        """Return whether ``version`` is stored (complete, not being deleted)."""
        return bool(VERSION_RE.match(version)) and (
            self.versions_dir / version / METADATA).is_file()

    def rollout(self) -> Rollout | None:
        """The rollout in progress, or None."""
        try:
            rollout = Rollout.from_json(self.rollout_file.read_bytes())
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelStoreError(f"{self.rollout_file} is unreadable: {exc}") \
                from exc
        # Started against another champion: ended by an activation since.
        return rollout if rollout.champion == self.current() else None

    def start_rollout(self, challenger: str, mode: str,
                      share: float | None = None) -> Rollout:
        """Try ``challenger`` beside the active version (see ``rollouts``)."""
        self.load(challenger)  # outside the lock, as activate does
        with self.lock:
            self.path(challenger)
            champion = self.current()
            if champion is None:
                raise RolloutError("no version is active to roll out against")
            running = self.rollout()
            if running is not None:
                raise RolloutError(
                    f"a {running.mode} of {running.challenger} is in progress; "
                    "promote or abort it first")
            rollout = Rollout.new(challenger, champion, mode, share)
            folder_files.replace_atomically(self.rollout_file, rollout.to_json())
        return rollout

    def set_rollout_share(self, share: float) -> Rollout:
        """Change the share of the canary in progress."""
        with self.lock:
            rollout = self._running().with_share(share)
            folder_files.replace_atomically(self.rollout_file, rollout.to_json())
        return rollout

    def abort_rollout(self, expected: Rollout | None = None,
                      reason: str | None = None) -> Rollout:
        """End the rollout in progress; the active version stays.

        With ``expected``, only that rollout (by id): one that replaced it
        meanwhile is left alone (``RolloutError``). ``reason`` is kept with
        the ended rollout (see ``ended_rollout``), as an automatic abort's.
        """
        with self.lock:
            rollout = self._running()
            if expected is not None and rollout.id != expected.id:
                raise RolloutError("the rollout changed meanwhile; nothing done")
            self._end_rollout("aborted automatically" if reason else "aborted",
                              reason)
        return rollout

    def ended_rollout(self) -> EndedRollout | None:
        """The last rollout that ended, how and why, or None."""
        try:
            return EndedRollout.from_json(self.ended_rollout_file.read_bytes())
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelStoreError(
                f"{self.ended_rollout_file} is unreadable: {exc}") from exc

    def promote_rollout(self) -> Rollout:
        """Make the challenger the active version, ending its rollout."""
        rollout = self._running()
        self.load(rollout.challenger)
        with self.lock:
            if self._running() != rollout:
                raise RolloutError("the rollout changed meanwhile; nothing done")
            history = self.history()
            self._set_active(rollout.challenger, history + [rollout.challenger],
                             history)
        return rollout

    def _running(self) -> Rollout:
        rollout = self.rollout()
        if rollout is None:
            raise RolloutError("no rollout is in progress")
        return rollout

    def _on_file(self) -> Rollout | None:
        """ROLLOUT as written, even if stale; None if absent or unreadable."""
        try:
            return Rollout.from_json(self.rollout_file.read_bytes())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _end_rollout(self, outcome: str, reason: str | None = None) -> None:
        """Remove ROLLOUT, first keeping it in ROLLOUT.ended with ``outcome``."""
        rollout = self._on_file()
        if rollout is not None:
            folder_files.replace_atomically(
                self.ended_rollout_file,
                EndedRollout.now(rollout, outcome, reason).to_json())
        try:
            self.rollout_file.unlink()
        except FileNotFoundError:
            return
        folder_files.fsync_dir(self.root)

    def delete(self, version: str) -> None:
        """Remove a version that is not active, nor in a rollout."""
        with self.lock:
            path = self.path(version)
            if version == self.current():
                raise ActiveVersionError(f"version {version!r} is active")
            rollout = self.rollout()
            if rollout is not None and version == rollout.challenger:
                raise ActiveVersionError(
                    f"version {version!r} is in a {rollout.mode}; abort it first")
            trash = self.versions_dir / f".deleting-{version}-{uuid.uuid4().hex}"
            os.replace(path, trash)
            folder_files.fsync_dir(self.versions_dir)
            self._prune_compiled()
        shutil.rmtree(trash, ignore_errors=True)

    def _prune_compiled(self) -> None:
        """Remove compiled trees no stored version's model has any more."""
        if not self.compiled_dir.is_dir():
            return
        kept = {self.metadata(v)["artifact"]["sha256"]
                for v in self.list_versions()}
        for path in self.compiled_dir.glob("[!.]*.o"):  # not one being made
            if path.name.split("-", 1)[0] not in kept:
                path.unlink(missing_ok=True)

    def _set_active(self, version: str, history: list[str],
                    before: list[str]) -> None:
        ending = self._on_file()
        # History first, CURRENT last: see history() for the crash case.
        journal = {"history": history[-HISTORY_LIMIT:],
                   "before": before[-HISTORY_LIMIT:]}
        folder_files.replace_atomically(self.history_file,
                                        json.dumps(journal).encode())
        folder_files.replace_atomically(self.pointer, f"{version}\n".encode())
        # Any rollout was against the old champion: it is over.
        promoted = ending is not None and ending.challenger == version
        self._end_rollout("promoted" if promoted else "superseded",
                          None if promoted else f"{version} was activated")

    def load(self, version: str) -> Predictor:
        """Load ``version`` safely and check its integrity."""
        return self.load_folder(self.path(version), version)

    def load_folder(self, folder: Path, version: str) -> Predictor:
        """Load the version stored in ``folder``; raise InvalidModelError."""
        return load_version(
            folder, version, lean=self.lean,
            compiled_dir=self.compiled_dir if self.compiled else None)

    def compiled_object(self, version: str) -> Path:
        """Where the compiled trees of ``version`` go, for this CPU.

        Raises InvalidModelError unless it is a LightGBM model, and
        CompilationUnavailable without lleaves.
        """
        from ..inference.lean.compiled import object_name

        artifact = self.metadata(version)["artifact"]
        if artifact.get("format") != "lightgbm":
            raise InvalidModelError(
                f"{version} is not a LightGBM model; only those compile")
        return self.compiled_dir / object_name(artifact["sha256"])
