"""The model store: immutable version folders and an atomic pointer.

Layout under the store's root::

    versions/<version>/   artifact, demographics.csv, metadata.json
    CURRENT               name of the active version
    history.json          activations, newest last (exact rollback)
    .lock                 file lock around publish/activate/rollback/delete

Every write goes to a temporary name, is fsynced, then renamed into place,
so a crash leaves either the old state or the new one. Unfinished work
lives under dot-names in ``versions/`` (never listed as a version) and is
swept up by the next publish. No Flask here.
"""
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from filelock import FileLock

from . import artifacts
from .features import Demographics, UnknownFeatureSetError, get_feature_set
from .predictor import Predictor

log = logging.getLogger(__name__)

#: Version names: safe as a path segment and in a URL, sortable by time.
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,79}$")
#: Names of the files inside a version folder.
FILE_NAME_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,99}$")
METADATA = "metadata.json"
DEMOGRAPHICS = "demographics.csv"
#: Staging folders older than this were left by a crashed publish.
STALE_STAGING_SECONDS = 3600
#: Activations kept in history.json: how far back rollbacks can walk.
HISTORY_LIMIT = 1000


class ModelStoreError(Exception):
    """Base class of the store's errors."""


class VersionNotFoundError(ModelStoreError, LookupError):
    """The named version is not in the store."""


class InvalidModelError(ModelStoreError, ValueError):
    """A version failed validation; nothing was written or activated."""


class ActiveVersionError(ModelStoreError):
    """The operation would remove the active version."""


class NothingToRollbackError(ModelStoreError):
    """There is no earlier activation to go back to."""


def new_version_name(slug: str, now: datetime | None = None) -> str:
    """Return a version name that sorts by creation time."""
    now = now or datetime.now(timezone.utc)
    slug = re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-")[:30] or "model"
    return f"{now:%Y%m%d-%H%M%S}-{now.microsecond:06d}-{slug}"


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _replace_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        _write_durably(tmp, data)
        os.replace(tmp, path)
    except OSError:
        # A full disk: leave the old file and no half-written one.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


class ModelStore:
    """Versions on disk under ``root``; see the module docstring."""

    def __init__(self, root: Path, lock_timeout: float = 30.0, lean: bool = True):
        self.root = Path(root)
        #: Serve through housing_api.lean where it reproduces the library.
        self.lean = lean
        self.versions_dir = self.root / "versions"
        self.pointer = self.root / "CURRENT"
        self.history_file = self.root / "history.json"
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
                _write_durably(staging / name, data)
            artifact["sha256"] = sha256_file(staging / artifact["file"])
            if declared and declared != artifact["sha256"]:
                raise InvalidModelError(
                    "the artifact does not match the sha256 given in its metadata")
            metadata["artifact"] = artifact
            metadata["demographics_sha256"] = sha256_file(staging / DEMOGRAPHICS)
            # Every file, so that fitted state beside the artifact (a feature
            # set's context) is checked on load like the artifact itself.
            metadata["files"] = {name: sha256_file(staging / name)
                                 for name in sorted(files)}
            _write_durably(
                staging / METADATA, json.dumps(metadata, indent=2).encode()
            )
            _fsync_dir(staging)
            predictor = self.load_folder(staging, version)
            if check is not None:
                check(predictor)
            with self.lock:
                target = self.versions_dir / version
                if target.exists():
                    raise InvalidModelError(f"version {version!r} already exists")
                # One rename: the version appears whole or not at all.
                os.replace(staging, target)
            _fsync_dir(self.versions_dir)
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

    def delete(self, version: str) -> None:
        """Remove a version that is not active."""
        with self.lock:
            path = self.path(version)
            if version == self.current():
                raise ActiveVersionError(f"version {version!r} is active")
            trash = self.versions_dir / f".deleting-{version}-{uuid.uuid4().hex}"
            os.replace(path, trash)
            _fsync_dir(self.versions_dir)
        shutil.rmtree(trash, ignore_errors=True)

    def _set_active(self, version: str, history: list[str],
                    before: list[str]) -> None:
        # History first, CURRENT last: see history() for the crash case.
        journal = {"history": history[-HISTORY_LIMIT:],
                   "before": before[-HISTORY_LIMIT:]}
        _replace_atomically(self.history_file, json.dumps(journal).encode())
        _replace_atomically(self.pointer, f"{version}\n".encode())

    def load(self, version: str) -> Predictor:
        """Load ``version`` safely and check its integrity."""
        return self.load_folder(self.path(version), version)

    def load_folder(self, folder: Path, version: str) -> Predictor:
        """Load the version stored in ``folder``; raise InvalidModelError."""
        try:
            metadata = json.loads((folder / METADATA).read_text())
            artifact = metadata["artifact"]
            feature_set = get_feature_set(metadata["feature_set"])
            checksums = {**metadata.get("files", {}),
                         artifact["file"]: artifact["sha256"],
                         DEMOGRAPHICS: metadata["demographics_sha256"]}
            for name, expected in checksums.items():
                if not FILE_NAME_RE.match(name) or name == METADATA:
                    raise InvalidModelError(f"invalid file name {name!r}")
                if sha256_file(folder / name) != expected:
                    raise InvalidModelError(
                        f"{name} does not match its sha256 in the metadata"
                    )
            context_file = getattr(feature_set, "context_file", None)
            if context_file and context_file not in checksums:
                raise InvalidModelError(
                    f"feature set {feature_set.name!r} needs {context_file}")
            demographics = Demographics.from_csv(folder / DEMOGRAPHICS)
            expected = feature_set.names(demographics)
            if list(metadata["features"]) != expected:
                raise InvalidModelError(
                    f"metadata features do not match feature set "
                    f"{feature_set.name!r}: expected {expected}"
                )
            estimator = artifacts.load(
                artifact["format"], folder / artifact["file"], len(expected)
            )
            if self.lean:
                estimator = _lean(estimator, version)
            extra = {}
            if context_file:
                extra["context"] = _load_context(feature_set, folder / context_file)
            return Predictor(
                version=version,
                metadata=metadata,
                estimator=estimator,
                feature_set=feature_set,
                demographics=demographics,
                **extra,
            )
        except InvalidModelError:
            raise
        except (UnknownFeatureSetError, artifacts.ArtifactError) as exc:
            raise InvalidModelError(str(exc)) from exc
        except FileNotFoundError as exc:
            raise InvalidModelError(f"missing file: {exc.filename}") from exc
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidModelError(f"incomplete metadata: {exc!r}") from exc


def _load_context(feature_set, path: Path):
    try:
        return feature_set.load_context(path)
    except Exception as exc:
        raise InvalidModelError(f"cannot load {path.name}: {exc}") from exc


def _lean(estimator, version: str):
    """The lean equivalent of ``estimator``, or ``estimator`` if it has none."""
    try:
        from .lean import UnsupportedModel, make_lean
    except ImportError as exc:  # private library internals moved
        log.warning("lean inference unavailable (%s); serving %s through the "
                    "library", exc, version)
        return estimator
    try:
        return make_lean(estimator)
    except UnsupportedModel as exc:
        log.info("serving %s through the library: %s", version, exc)
        return estimator


def _context_file(metadata: Mapping) -> str | None:
    """The file of fitted feature state the metadata's feature set needs."""
    try:
        return get_feature_set(metadata.get("feature_set", "")).context_file
    except UnknownFeatureSetError:
        return None  # refused with a clear message when the version loads


def check_predictions(columns: Mapping[str, np.ndarray]) -> Callable:
    """Return a publish check: prices for ``columns`` are finite and positive."""

    def check(predictor: Predictor) -> None:
        price = predictor.predict(columns).price
        if price.shape != (len(columns["zipcode"]),):
            raise InvalidModelError(f"predictions have shape {price.shape}")
        bad = np.flatnonzero(~np.isfinite(price) | (price <= 0))
        if bad.size:
            raise InvalidModelError(
                f"non-finite or non-positive prices for example rows "
                f"{bad[:10].tolist()}"
            )

    return check
