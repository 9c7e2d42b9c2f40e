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
