"""The model store: versions, the active pointer, the lock; loads a version.

Layout under the store's root::

    versions/<version>/   artifact, demographics.csv, metadata.json
    CURRENT               name of the active version
    history.json          activations, newest last (exact rollback)
    ROLLOUT               the rollout in progress, if any (see ``rollouts``)
    ROLLOUT.ended         the last rollout that ended, how and why
    .lock                 file lock around publish/activate/rollback/delete

Every write goes to a temporary name, is fsynced, then renamed into place,
so a crash leaves either the old state or the new one. Unfinished work
lives under dot-names in ``versions/`` (never listed as a version) and is
swept up by the next publish.

It builds predictors from version folders, so it sits above ``inference``
and ``formats`` and below everything that serves or trains. No Flask.
"""
from .errors import (
    ActiveVersionError, InvalidModelError, ModelStoreError, NothingToRollbackError,
    VersionNotFoundError,
)
from .files import DEMOGRAPHICS, METADATA, new_version_name, sha256_file
from .loading import check_predictions, load_version
from .rollouts import EndedRollout, Rollout, RolloutError
from .versions import ModelStore

__all__ = [
    "ActiveVersionError", "DEMOGRAPHICS", "EndedRollout", "InvalidModelError",
    "METADATA", "ModelStore", "ModelStoreError", "NothingToRollbackError",
    "Rollout", "RolloutError", "VersionNotFoundError", "check_predictions",
    "load_version", "new_version_name", "sha256_file",
]
