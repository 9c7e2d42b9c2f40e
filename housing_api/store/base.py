"""What every model store does, whatever holds its versions.

A store keeps immutable versions and one small changing part, its
:class:`Pointer`: the active version, the activations before it, the
rollout in progress and the last one that ended. Every change is a pure
function from one pointer to the next, applied by the store's
``_change``: under a file lock in a folder (``versions``), by
compare-and-swap on one object in a bucket (``objects``). So the rules of
activation, rollback and rollouts are written once, here, and hold in both.
"""
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from ..inference.predictor import Predictor
from . import files as folder_files
from .errors import (
    ActiveVersionError, InvalidModelError, ModelStoreError, NothingToRollbackError,
    StoreConflictError, VersionNotFoundError,
)
from .files import DEMOGRAPHICS, FILE_NAME_RE, METADATA, VERSION_RE, new_version_name
from .loading import load_version
from .pointer import Pointer
from .rollouts import EndedRollout, Rollout, RolloutError

#: Tried this many times, a change that keeps losing its race is refused.
CHANGE_ATTEMPTS = 5
#: ``activate(expected=ANY)``: whatever is active.
ANY = object()


class VersionStore:
    """The store's interface and its rules; subclasses hold the versions.

    A subclass provides ``list_versions``, ``exists``, ``path`` (a local
    folder holding the version's files, verified), ``metadata``,
    ``_pointer``, ``_change``, ``_commit`` (store a staged version, whole or
    not at all), ``delete``, ``location`` (for messages) and ``staging_dir``.
    """

    location: str
    staging_dir: Path
    compiled_dir: Path

    def __init__(self, lean: bool = True, compiled: bool = True):
        #: Serve through housing_api.lean where it reproduces the library.
        self.lean = lean
        #: With ``lean``, serve LightGBM models through their compiled trees
        #: where ``compiled_dir`` has them for this CPU.
        self.compiled = compiled

    # What a subclass provides.

    def list_versions(self) -> list[str]:
        raise NotImplementedError

    def exists(self, version: str) -> bool:
        raise NotImplementedError

    def path(self, version: str) -> Path:
        raise NotImplementedError

    def metadata(self, version: str) -> dict:
        raise NotImplementedError

    def delete(self, version: str) -> None:
        raise NotImplementedError

    def _pointer(self) -> Pointer:
        raise NotImplementedError

    def _change(self, change: Callable[[Pointer], Pointer]) -> Pointer:
        """Apply ``change`` atomically to the latest pointer; return the new one.

        ``change`` may run more than once (after a lost race, on the pointer
        that won) and raises to refuse; returning its argument writes nothing.
        """
        raise NotImplementedError

    def _commit(self, staging: Path, version: str) -> None:
        raise NotImplementedError

    # The interface, the same for every store.

    def current(self) -> str | None:
        """Return the active version's name, or None before the first one."""
        return self._pointer().current

    def served(self) -> tuple[str | None, Rollout | None, bool]:
        """What a watcher polls, from one read of the pointer: the active
        version, the rollout in progress (None if there is none, or if it is
        unreadable: ``reload`` says why), and whether every version of the
        two is stored."""
        pointer = self._pointer()
        try:
            rollout = pointer.live_rollout
        except ModelStoreError:
            rollout = None
        wanted = [v for v in (pointer.current, rollout and rollout.challenger) if v]
        complete = pointer.current is not None and all(
            self._stored(v, pointer) for v in wanted)
        return pointer.current, rollout, complete

    def _stored(self, version: str, pointer: Pointer) -> bool:
        """``exists``, for a store whose answer depends on ``pointer``."""
        return self.exists(version)

    def history(self) -> list[str]:
        """Return the activation history, oldest first, ending at the active one."""
        return list(self._pointer().history)

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
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self._sweep()
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.staging_dir))
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
            self._commit(staging, version)
        except (ModelStoreError, OSError):
            raise
        except Exception as exc:
            raise InvalidModelError(f"the model failed validation: {exc}") from exc
        finally:
            # Gone after a commit that moved it; after a failure, nothing stays.
            shutil.rmtree(staging, ignore_errors=True)
        return version

    def _sweep(self) -> None:
        """Remove what crashed publishes and deletes left behind."""

    def activate(self, version: str, expected=ANY) -> None:
        """Make ``version`` the active one (after checking it loads).

        With ``expected`` (a version name, or None for an empty store), only
        if that one is still active: otherwise :class:`StoreConflictError`
        and nothing changes (two publishers racing: exactly one wins).
        """
        # Loading first: the version is immutable, and one deleted meanwhile
        # is caught again in the change.
        self.load(version)

        def change(pointer: Pointer) -> Pointer:
            self._check_stored(version, pointer)
            if expected is not ANY and pointer.current != expected:
                raise StoreConflictError(
                    f"{pointer.current or 'no version'} is active, not "
                    f"{expected or 'no version'}; nothing changed")
            if pointer.history and pointer.history[-1] == version:
                return pointer
            return pointer.activated(version)

        self._change(change)

    def _check_stored(self, version: str, pointer: Pointer) -> None:
        """Raise ``VersionNotFoundError`` unless ``version`` is stored."""
        if version in pointer.deleted or not self.exists(version):
            raise VersionNotFoundError(f"no model version {version!r}")

    def rollback(self) -> str:
        """Re-activate the version that was active before the current one.

        Walks the activation history back, skipping deleted versions; each
        rollback goes one activation further back. A version that no longer
        loads is refused, and nothing changes.
        """
        for _ in range(CHANGE_ATTEMPTS):
            history = tuple(self.history())
            target, kept = self._rollback_target(history)
            self.load(target)

            def change(pointer: Pointer) -> Pointer:
                # Decided on an earlier read: redo if someone moved meanwhile.
                if pointer.history != history:
                    raise _Moved
                self._check_stored(target, pointer)
                return pointer.rewound(target, kept)

            try:
                self._change(change)
            except (_Moved, VersionNotFoundError):
                continue
            return target
        raise ModelStoreError("the store kept changing during the rollback")

    def _rollback_target(self, history: tuple[str, ...]) -> tuple[str, tuple]:
        current, kept = (history[-1] if history else None), list(history[:-1])
        while kept:
            if kept[-1] != current and self.exists(kept[-1]):
                return kept[-1], tuple(kept)
            kept.pop()
        raise NothingToRollbackError("no earlier activation to roll back to")

    def rollout(self) -> Rollout | None:
        """The rollout in progress, or None."""
        return self._pointer().live_rollout

    def ended_rollout(self) -> EndedRollout | None:
        """The last rollout that ended, how and why, or None."""
        return self._pointer().ended

    def start_rollout(self, challenger: str, mode: str,
                      share: float | None = None) -> Rollout:
        """Try ``challenger`` beside the active version (see ``rollouts``)."""
        self.load(challenger)  # first, as activate does
        started = []

        def change(pointer: Pointer) -> Pointer:
            self._check_stored(challenger, pointer)
            if pointer.current is None:
                raise RolloutError("no version is active to roll out against")
            running = pointer.live_rollout
            if running is not None:
                raise RolloutError(
                    f"a {running.mode} of {running.challenger} is in progress; "
                    "promote or abort it first")
            started[:] = [Rollout.new(challenger, pointer.current, mode, share)]
            return replace(pointer, rollout=started[0])

        self._change(change)
        return started[0]

    def set_rollout_share(self, share: float) -> Rollout:
        """Change the share of the canary in progress."""
        pointer = self._change(
            lambda p: replace(p, rollout=_running(p).with_share(share)))
        return pointer.rollout

    def abort_rollout(self, expected: Rollout | None = None,
                      reason: str | None = None) -> Rollout:
        """End the rollout in progress; the active version stays.

        With ``expected``, only that rollout (by id): one that replaced it
        meanwhile is left alone (``RolloutError``). ``reason`` is kept with
        the ended rollout (see ``ended_rollout``), as an automatic abort's.
        """
        def change(pointer: Pointer) -> Pointer:
            rollout = _running(pointer)
            if expected is not None and rollout.id != expected.id:
                raise RolloutError("the rollout changed meanwhile; nothing done")
            return pointer.ending(
                "aborted automatically" if reason else "aborted", reason)

        return self._change(change).ended.rollout

    def promote_rollout(self) -> Rollout:
        """Make the challenger the active version, ending its rollout."""
        rollout = _running(self._pointer())
        self.load(rollout.challenger)

        def change(pointer: Pointer) -> Pointer:
            if pointer.live_rollout != rollout:
                raise RolloutError("the rollout changed meanwhile; nothing done")
            self._check_stored(rollout.challenger, pointer)
            return pointer.activated(rollout.challenger)

        self._change(change)
        return rollout

    def _check_deletable(self, version: str, pointer: Pointer) -> None:
        """Raise unless ``version`` may go: not active, nor in a rollout."""
        if version == pointer.current:
            raise ActiveVersionError(f"version {version!r} is active")
        rollout = pointer.live_rollout
        if rollout is not None and version == rollout.challenger:
            raise ActiveVersionError(
                f"version {version!r} is in a {rollout.mode}; abort it first")

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

    def _prune_compiled(self) -> None:
        """Remove compiled trees no stored version's model has any more."""
        if not self.compiled_dir.is_dir():
            return
        kept = {self.metadata(v)["artifact"]["sha256"]
                for v in self.list_versions()}
        for path in self.compiled_dir.glob("[!.]*.o"):  # not one being made
            if path.name.split("-", 1)[0] not in kept:
                path.unlink(missing_ok=True)


class _Moved(Exception):
    """The pointer moved since a decision was made on it: decide again."""


def _running(pointer: Pointer) -> Rollout:
    rollout = pointer.live_rollout
    if rollout is None:
        raise RolloutError("no rollout is in progress")
    return rollout
