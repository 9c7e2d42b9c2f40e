"""The files of a version folder, and how the store writes them.

Every write goes to a temporary name, is fsynced, then renamed into place,
so a crash leaves either the old state or the new one.
"""
import contextlib
import hashlib
import os
import re
from datetime import datetime, timezone
from pathlib import Path

#: Version names: safe as a path segment and in a URL, sortable by time.
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,79}$")
#: Names of the files inside a version folder.
FILE_NAME_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,99}$")
METADATA = "metadata.json"
DEMOGRAPHICS = "demographics.csv"


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


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def replace_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write_durably(tmp, data)
        os.replace(tmp, path)
    except OSError:
        # A full disk: leave the old file and no half-written one.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
