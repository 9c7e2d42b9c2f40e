"""The model store: versions, the active pointer; loads a version.

Two stores behind one interface (``base.VersionStore``): a folder
(``versions``: files renamed into place under a file lock) and an
S3-compatible bucket (``objects``: a manifest written last, the pointer
replaced by compare-and-swap, a verified local cache). ``open_store``
picks one from its location. Either keeps immutable versions, each file
checked against its sha256 on load; an activation history for exact
rollbacks; and the rollout in progress beside the pointer.

It builds predictors from version folders, so it sits above ``inference``
and ``formats`` and below everything that serves or trains. No Flask.
"""
from .errors import (
    ActiveVersionError, InvalidModelError, ModelStoreError, NothingToRollbackError,
    StoreConflictError, StoreUnavailableError, VersionNotFoundError,
)
from .files import DEMOGRAPHICS, METADATA, new_version_name, sha256_file
from .loading import check_predictions, load_version
from .rollouts import EndedRollout, Rollout, RolloutError
from .base import VersionStore
from .versions import ModelStore


def open_store(location, cache_root, **options) -> VersionStore:
    """The store at ``location``: ``s3://bucket/prefix`` for an object store
    (cached under ``cache_root``), a folder's path, or empty for the folder
    ``cache_root`` itself. ``options`` go to the store (``lean``,
    ``compiled``)."""
    location = str(location or "")
    if location.startswith("s3://"):
        from .objects import ObjectModelStore

        return ObjectModelStore(location, cache_root, **options)
    if "://" in location:
        raise ValueError(f"{location!r}: a model store is a folder or an "
                         "s3://bucket/prefix URL")
    return ModelStore(location or cache_root, **options)


__all__ = [
    "ActiveVersionError", "DEMOGRAPHICS", "EndedRollout", "InvalidModelError",
    "METADATA", "ModelStore", "ModelStoreError", "NothingToRollbackError",
    "Rollout", "RolloutError", "StoreConflictError", "StoreUnavailableError",
    "VersionNotFoundError", "VersionStore", "check_predictions",
    "load_version", "new_version_name", "open_store", "sha256_file",
]
