"""The object store: versions in an S3-compatible bucket, cached on each machine.

Layout under ``s3://<bucket>/<prefix>/``::

    versions/<version>/manifest.json        every file's sha256 and size; last
    versions/<version>/<upload>/<file>      the files, under their publish's id
    pointer.json                            active version, history, rollout,
                                            the last rollout ended, deletions

A publish uploads every file, then creates the manifest with
``If-None-Match: *``: a version without its manifest does not exist, and of
two publishes of one name exactly one wins (the other's files sit under
their own upload id, never mixed with the winner's). ``pointer.json`` is
created the same way and replaced only with ``If-Match: <etag>`` of the
copy a change was decided on: a change that lost a race is decided again
on the winner's pointer, or refused, never written over it. Deleted
versions stay named in the pointer, so a name never comes back with other
files (which a machine's cache would not notice).

Each machine keeps the versions it has loaded under ``cache_root``: every
file downloaded, checked against the manifest's sha256 and size, then the
folder renamed into place, as the folder store does. Compiled trees are
made on the machine that serves them (``compiled/`` beside the cache) and
never uploaded. Credentials, region and endpoint (``AWS_ENDPOINT_URL`` for
MinIO and other S3-compatible stores) come from the usual AWS settings.
"""
import hashlib
import json
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

from ..ops.buckets import TIMEOUT_SECONDS, Bucket, NotModified, PreconditionFailed
from . import files as folder_files
from .base import CHANGE_ATTEMPTS, VersionStore
from .pointer import HISTORY_LIMIT, Pointer
from .errors import (
    InvalidModelError, ModelStoreError, StoreConflictError, StoreUnavailableError,
    VersionNotFoundError,
)
from .files import FILE_NAME_RE, METADATA, VERSION_RE
from .rollouts import EndedRollout, Rollout

POINTER = "pointer.json"
MANIFEST = "manifest.json"
#: Files of a publish with no manifest after this long were left by a crash.
STALE_UPLOAD_SECONDS = 3600


class ObjectModelStore(VersionStore):
    """Versions in ``s3://bucket/prefix``; see the module docstring."""

    def __init__(self, url: str, cache_root: Path, lean: bool = True,
                 compiled: bool = True, timeout: float = TIMEOUT_SECONDS):
        super().__init__(lean=lean, compiled=compiled)
        self.bucket = Bucket(url, StoreUnavailableError, timeout)
        self.location = self.bucket.url
        cache_root = Path(cache_root)
        #: Downloaded versions, each checked before it was moved in.
        self.cache_dir = cache_root / "cache" / self.bucket.name / self.bucket.prefix
        self.versions_dir = self.staging_dir = self.cache_dir / "versions"
        self.compiled_dir = cache_root / "compiled"
        #: The pointer as last read, and its ETag (for conditional reads).
        self._last_pointer: tuple[Pointer, str] | None = None

    # The pointer.

    def _pointer(self) -> Pointer:
        return self._read_pointer()[0]

    def _read_pointer(self) -> tuple[Pointer, str | None]:
        # A conditional read: while the pointer has not changed, the bucket
        # answers 304 without a body and this process's last parse stands.
        last = self._last_pointer
        try:
            found = self.bucket.get(self.bucket.key(POINTER),
                                    unless=last[1] if last else None)
        except NotModified:
            return last
        if found is None:
            self._last_pointer = None
            return Pointer(), None
        data, etag = found
        try:
            fields = json.loads(data)
            pointer = Pointer(
                current=fields["current"], history=tuple(fields["history"]),
                ended=fields["ended"] and EndedRollout.from_json(
                    json.dumps(fields["ended"]).encode()),
                deleted=tuple(fields["deleted"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelStoreError(
                f"{self.location}/{POINTER} is unreadable: {exc!r}") from exc
        try:
            rollout = fields["rollout"] and Rollout.from_json(
                json.dumps(fields["rollout"]).encode())
            pointer = replace(pointer, rollout=rollout or None)
        except (ValueError, KeyError, TypeError) as exc:
            pointer = replace(pointer, damage=(
                f"the rollout in {self.location}/{POINTER} is unreadable: {exc!r}"))
        self._last_pointer = pointer, etag
        return pointer, etag

    def _change(self, change: Callable[[Pointer], Pointer]) -> Pointer:
        for attempt in range(CHANGE_ATTEMPTS * 2):
            old, etag = self._read_pointer()
            new = change(old)
            if new == old:
                return old
            document = {
                "current": new.current,
                "history": list(new.history),
                "rollout": new.rollout and asdict(new.rollout),
                "ended": new.ended and asdict(new.ended),
                "deleted": list(new.deleted[-HISTORY_LIMIT * 10:]),
            }
            try:
                self.bucket.put(self.bucket.key(POINTER),
                                json.dumps(document).encode(),
                                create=etag is None, etag=etag)
                return new
            except PreconditionFailed:
                # Another change won: decide again on what it wrote.
                pause = random.uniform(0, 0.05 * (attempt + 1))  # nosec B311 - jitter
                time.sleep(pause)
        raise StoreConflictError(
            f"{self.location}/{POINTER} kept changing; nothing changed")

    # Versions.

    def _manifest(self, version: str) -> dict:
        """The version's manifest, checked for shape; VersionNotFoundError."""
        if not VERSION_RE.match(version):
            raise VersionNotFoundError(f"no model version {version!r}")
        found = self.bucket.get(self.bucket.key("versions", version, MANIFEST))
        if found is None:
            raise VersionNotFoundError(f"no model version {version!r}")
        try:
            manifest = json.loads(found[0])
            if manifest["version"] != version or not FILE_NAME_RE.match(
                    manifest["upload"]) or METADATA not in manifest["files"]:
                raise ValueError("it names another version, upload or no metadata")
            for name, entry in manifest["files"].items():
                if not FILE_NAME_RE.match(name) or len(entry["sha256"]) != 64 \
                        or int(entry["size"]) < 0:
                    raise ValueError(f"bad entry for {name!r}")
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidModelError(
                f"the manifest of {version} is unreadable: {exc}") from exc
        return manifest

    def list_versions(self) -> list[str]:
        """Return the stored versions (those with a manifest), oldest first."""
        deleted = set(self._pointer().deleted)
        suffix = f"/{MANIFEST}"
        names = (obj["Key"][len(self.bucket.key("versions")) + 1:-len(suffix)]
                 for obj in self.bucket.objects(self.bucket.key("versions") + "/")
                 if obj["Key"].endswith(suffix))
        return sorted(v for v in names
                      if "/" not in v and VERSION_RE.match(v) and v not in deleted)

    def exists(self, version: str) -> bool:
        """Return whether ``version`` is stored (its manifest is, and it was
        not deleted)."""
        return self._stored(version, self._pointer())

    def _stored(self, version: str, pointer: Pointer) -> bool:
        # The active version and a rollout's, once this process has
        # downloaded and checked them, without asking the bucket: a version
        # never changes, and the pointer naming it keeps it from deletion.
        if not VERSION_RE.match(version) or version in pointer.deleted:
            return False
        rollout = pointer.rollout
        named = version == pointer.current or rollout is not None and version in (
            rollout.champion, rollout.challenger)
        if named and (self.versions_dir / version / METADATA).is_file():
            return True
        return self.bucket.head(self.bucket.key("versions", version, MANIFEST))

    def path(self, version: str) -> Path:
        """The local folder of ``version``, downloaded and checked if need be."""
        if not VERSION_RE.match(version):
            raise VersionNotFoundError(f"no model version {version!r}")
        folder = self.versions_dir / version
        if (folder / METADATA).is_file():
            return folder
        return self._download(version)

    def metadata(self, version: str) -> dict:
        """Return the metadata of ``version`` (checked against its manifest)."""
        folder = self.versions_dir / version
        if VERSION_RE.match(version) and (folder / METADATA).is_file():
            return json.loads((folder / METADATA).read_text())
        manifest = self._manifest(version)
        return json.loads(self._file(manifest, METADATA))

    def _file(self, manifest: dict, name: str) -> bytes:
        """One file of a version, checked against the manifest."""
        entry = manifest["files"][name]
        found = self.bucket.get(self.bucket.key(
            "versions", manifest["version"], manifest["upload"], name))
        if found is None:
            raise InvalidModelError(
                f"{manifest['version']}: {name} is missing from {self.location}")
        data = found[0]
        if len(data) != int(entry["size"]) \
                or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise InvalidModelError(f"{manifest['version']}: {name} does not "
                                    "match its sha256 in the manifest")
        return data

    def _download(self, version: str) -> Path:
        manifest = self._manifest(version)
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=self.versions_dir))
        try:
            for name in sorted(manifest["files"]):
                folder_files.write_durably(staging / name,
                                           self._file(manifest, name))
            folder_files.fsync_dir(staging)
            target = self.versions_dir / version
            try:
                os.replace(staging, target)
            except OSError:
                if not (target / METADATA).is_file():  # not another download's
                    raise
            folder_files.fsync_dir(self.versions_dir)
            return target
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _commit(self, staging: Path, version: str) -> None:
        manifest_key = self.bucket.key("versions", version, MANIFEST)
        if version in self._pointer().deleted or self.bucket.head(manifest_key):
            raise InvalidModelError(f"version {version!r} already exists")
        upload = uuid.uuid4().hex
        files, keys = {}, []
        try:
            for path in sorted(staging.iterdir()):
                data = path.read_bytes()
                keys.append(self.bucket.key("versions", version, upload, path.name))
                self.bucket.put(keys[-1], data)
                files[path.name] = {"sha256": hashlib.sha256(data).hexdigest(),
                                    "size": len(data)}
            manifest = {"version": version, "upload": upload, "files": files,
                        "published_at": datetime.now(timezone.utc).isoformat(
                            timespec="seconds")}
            self.bucket.put(manifest_key,
                            json.dumps(manifest, indent=2).encode(), create=True)
        except PreconditionFailed:
            self._forget(keys)
            raise InvalidModelError(f"version {version!r} already exists") from None
        except BaseException:
            self._forget(keys)
            raise
        # This machine has it already: no download on its first load.
        target = self.versions_dir / version
        if not target.exists():
            os.replace(staging, target)

    def _forget(self, keys: list[str]) -> None:
        """Remove a failed publish's files, if the bucket lets us now."""
        try:
            self.bucket.delete(keys)
        except ModelStoreError:
            pass  # swept by a later publish (STALE_UPLOAD_SECONDS)

    def _sweep(self) -> None:
        """Remove the files of publishes that crashed before their manifest,
        and this machine's copies of versions deleted since."""
        now = datetime.now(timezone.utc)
        uploads: dict[str, list[dict]] = {}
        manifests = set()
        root = self.bucket.key("versions") + "/"
        for obj in self.bucket.objects(root):
            parts = obj["Key"][len(root):].split("/")
            if parts[-1] == MANIFEST and len(parts) == 2:
                manifests.add(parts[0])
            elif len(parts) == 3:
                uploads.setdefault(parts[0], []).append(obj)
        stale = [obj["Key"] for version, objects in uploads.items()
                 if version not in manifests and all(
                     (now - obj["LastModified"]).total_seconds()
                     > STALE_UPLOAD_SECONDS for obj in objects)
                 for obj in objects]
        if stale:
            self.bucket.delete(stale)
        kept = manifests - set(self._pointer().deleted)
        for folder in self.versions_dir.glob("*"):
            try:
                old = time.time() - folder.stat().st_mtime > STALE_UPLOAD_SECONDS
            except FileNotFoundError:
                continue
            if (folder.name.startswith(".") and old) or (
                    not folder.name.startswith(".") and folder.name not in kept):
                shutil.rmtree(folder, ignore_errors=True)

    def delete(self, version: str) -> None:
        """Remove a version that is not active, nor in a rollout."""
        if not self.exists(version):
            raise VersionNotFoundError(f"no model version {version!r}")

        def mark(pointer: Pointer) -> Pointer:
            self._check_deletable(version, pointer)
            if version in pointer.deleted:
                raise VersionNotFoundError(f"no model version {version!r}")
            return replace(pointer, deleted=(*pointer.deleted, version))

        # Named deleted first: from then on nothing activates it, whatever
        # another machine decided on an earlier read.
        self._change(mark)
        self.bucket.delete([obj["Key"] for obj in self.bucket.objects(
            self.bucket.key("versions", version) + "/")])
        shutil.rmtree(self.versions_dir / version, ignore_errors=True)
        self._prune_compiled()
