"""Clients' API keys: issued, hashed, looked up, revoked, and counted.

A key is shown once, when it is made; the database keeps its SHA-256 and
its first characters (``prefix``), which name it in lists and logs.
Requests look keys up in :class:`KeyCache`, each process's copy of every
key, refreshed every few seconds in the background: no request waits for
the database, and a revocation reaches every process within one refresh.
No Flask here; ``web.keys`` turns these into HTTP.
"""
from .cache import KeyCache, KeysUnavailableError
from .records import (
    SCOPES, ApiKey, KeyNotFoundError, KeyRevokedError, create_key, digest,
    list_keys, revoke_key, rotate_key, usage,
)

__all__ = ["SCOPES", "ApiKey", "KeyCache", "KeyNotFoundError", "KeyRevokedError",
           "KeysUnavailableError",
           "create_key",
           "digest", "list_keys", "revoke_key", "rotate_key", "usage"]
