"""Versions copied from one store to another (``housing-api models copy``)."""
from collections.abc import Callable, Iterable

from .base import VersionStore
from .errors import VersionNotFoundError
from .files import METADATA


def copy_versions(source: VersionStore, target: VersionStore,
                  versions: Iterable[str] | None = None,
                  echo: Callable[[str], None] = lambda line: None) -> list[str]:
    """Copy ``versions`` (default: every one) from ``source`` to ``target``;
    return those copied. One the target has already is left as it is.

    Each goes through the target's publish: every file checked against the
    source's sha256s, the model loaded, the files written before the version
    exists. Pointers are not copied: activate in the target once it is there.
    """
    stored = set(target.list_versions())
    copied = []
    for version in versions if versions is not None else source.list_versions():
        if not source.exists(version):
            raise VersionNotFoundError(
                f"no model version {version!r} in {source.location}")
        if version in stored:
            echo(f"{version}: already in {target.location}")
            continue
        folder = source.path(version)  # checked on the way, for an object store
        source.load_folder(folder, version)  # every file against its sha256
        metadata = source.metadata(version)
        files = {path.name: path.read_bytes() for path in sorted(folder.iterdir())
                 if path.name != METADATA}
        target.publish(files, metadata)
        copied.append(version)
        echo(f"{version}: copied to {target.location}")
    return copied
