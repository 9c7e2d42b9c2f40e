"""The store's errors; they carry no status codes (the web layer maps them)."""


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


class StoreConflictError(ModelStoreError):
    """Another change won the race for the store's pointer; nothing changed."""


class StoreUnavailableError(ModelStoreError, OSError):
    """The store could not be reached (an object store's bucket, say); what
    is loaded keeps serving. An ``OSError`` too, as a full disk is."""
