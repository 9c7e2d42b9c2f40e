"""Zip archives (skops files, .npz context files) that may not expand too much."""
import io
import zipfile

from .errors import ArtifactError

#: Largest uncompressed size and compression ratio accepted in a zip.
MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200


def check_expansion(zf: zipfile.ZipFile, what: str) -> None:
    """Refuse an archive larger or more compressed than the limits above."""
    infos = zf.infolist()
    size = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos) or 1
    if size > MAX_UNCOMPRESSED_BYTES or size / packed > MAX_COMPRESSION_RATIO:
        raise ArtifactError(f"{what} expands too much (zip bomb?)")


def screen_zip(data: bytes, what: str) -> None:
    """Refuse a zip (an .npz context file) that would expand too much."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            check_expansion(zf, what)
    except zipfile.BadZipFile:
        pass  # not a zip: whatever reads it refuses it when the version loads
