"""A scoring job's files: its upload, its result and its refused rows.

Under ``JOBS_DIR/<job id>/``, on storage every web and job process shares:
a folder (the instance folder on one host; in Kubernetes, the volume the
model store is on), or ``s3://bucket/prefix`` where replicas share no
disk. An upload is complete before its job is queued (renamed into place,
or a bucket's one upload), and a result appears whole or not at all, so a
job is never run on half a file nor fetched half-written.
"""
import contextlib
import csv
import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..ops.buckets import Bucket
from ..serving.scoring import errors_path

UPLOAD, RESULT = "upload.csv", "result.csv"
ERRORS = errors_path(Path(RESULT)).name
#: Bytes read for an upload's header.
HEADER_BYTES = 1 << 16


class UploadTooLarge(ValueError):
    """The upload is over the configured size; nothing was kept."""


def job_files(location, scratch: Path):
    """The job files at ``location``: a folder, or ``s3://bucket/prefix``
    (with ``scratch``, a local folder, for the files while a job runs)."""
    if str(location).startswith("s3://"):
        return ObjectJobFiles(str(location), scratch)
    return JobFiles(location)


def first_record(data: bytes) -> list[str] | None:
    """The first CSV record of ``data`` (UnicodeDecodeError if not UTF-8)."""
    if not data:
        return None
    line = data.split(b"\n", 1)[0]
    return next(csv.reader([line.decode("utf-8-sig")]), None)


class JobFiles:
    """The job files in a folder shared by every web and job process."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.location = str(self.root)

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def upload(self, job_id: str) -> Path:
        return self.folder(job_id) / UPLOAD

    def result(self, job_id: str) -> Path:
        return self.folder(job_id) / RESULT

    def errors(self, job_id: str) -> Path:
        return errors_path(self.result(job_id))

    def save_upload(self, job_id: str, blocks: Iterable[bytes],
                    limit: int) -> int:
        """Write the upload from ``blocks``; return its size in bytes."""
        folder = self.folder(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{UPLOAD}.{uuid.uuid4().hex}"
        size = 0
        try:
            with open(partial, "wb") as f:
                for block in blocks:
                    size += len(block)
                    if size > limit:
                        raise UploadTooLarge(f"larger than {limit:,} bytes")
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, self.upload(job_id))
        except BaseException:
            partial.unlink(missing_ok=True)
            if not any(folder.iterdir()):
                folder.rmdir()
            raise
        return size

    def header(self, job_id: str) -> list[str] | None:
        """The upload's first CSV record (its header)."""
        with open(self.upload(job_id), "rb") as f:
            return first_record(f.read(HEADER_BYTES))

    @contextlib.contextmanager
    def local_upload(self, job_id: str) -> Iterator[Path]:
        """The upload as a local file, while the block runs."""
        yield self.upload(job_id)

    @contextlib.contextmanager
    def local_result(self, job_id: str) -> Iterator[Path]:
        """Where the block writes the result (and its refused rows beside
        it, ``errors_path``); kept once the block ends without an error."""
        yield self.result(job_id)

    def open(self, job_id: str, name: str) -> BinaryIO:
        """The job's ``RESULT`` or ``ERRORS`` to read; FileNotFoundError."""
        return open(self.folder(job_id) / name, "rb")

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)


class ObjectJobFiles:
    """The job files in a bucket: ``<prefix>/<job id>/<file>``; a job's
    process works on local copies under ``scratch``."""

    def __init__(self, url: str, scratch: Path):
        self.bucket = Bucket(url)
        self.location = self.bucket.url
        self.scratch = Path(scratch)

    def _key(self, job_id: str, name: str) -> str:
        return self.bucket.key(job_id, name)

    def save_upload(self, job_id: str, blocks: Iterable[bytes],
                    limit: int) -> int:
        """Upload ``blocks`` in parts; return the size in bytes. An upload
        over ``limit`` is abandoned, its parts with it (nothing is kept)."""
        from boto3.s3.transfer import TransferConfig

        source = _Blocks(blocks, limit)
        # In this thread: the blocks come from the request being served.
        self.bucket.transfer("upload_fileobj", source, self.bucket.name,
                             self._key(job_id, UPLOAD),
                             Config=TransferConfig(use_threads=False))
        return source.size

    def header(self, job_id: str) -> list[str] | None:
        body = self.bucket.call("get_object", Key=self._key(job_id, UPLOAD),
                                Range=f"bytes=0-{HEADER_BYTES - 1}")["Body"]
        return first_record(self.bucket.read(body))

    @contextlib.contextmanager
    def _scratch(self, job_id: str) -> Iterator[Path]:
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{job_id}-",
                                         dir=self.scratch) as folder:
            yield Path(folder)

    @contextlib.contextmanager
    def local_upload(self, job_id: str) -> Iterator[Path]:
        with self._scratch(job_id) as folder:
            path = folder / UPLOAD
            self.bucket.transfer("download_file", self.bucket.name,
                                 self._key(job_id, UPLOAD), str(path))
            yield path

    @contextlib.contextmanager
    def local_result(self, job_id: str) -> Iterator[Path]:
        with self._scratch(job_id) as folder:
            path = folder / RESULT
            yield path
            # Refused rows first: the result is what says the job's files
            # are all there.
            if errors_path(path).exists():
                self._put_file(errors_path(path), self._key(job_id, ERRORS))
            self._put_file(path, self._key(job_id, RESULT))

    def _put_file(self, path: Path, key: str) -> None:
        with open(path, "rb") as f:
            self.bucket.transfer("upload_fileobj", f, self.bucket.name, key)

    def open(self, job_id: str, name: str) -> BinaryIO:
        return self.bucket.call("get_object", Key=self._key(job_id, name))["Body"]

    def remove(self, job_id: str) -> None:
        self.bucket.delete([obj["Key"] for obj in self.bucket.objects(
            self.bucket.key(job_id) + "/")])


class _Blocks(io.RawIOBase):
    """``blocks`` as a file to read, refusing more than ``limit`` bytes."""

    def __init__(self, blocks: Iterable[bytes], limit: int):
        self._blocks, self._limit = iter(blocks), limit
        self._pending, self.size = b"", 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            block = next(self._blocks, None)
            if block is None:
                break
            self.size += len(block)
            if self.size > self._limit:
                raise UploadTooLarge(f"larger than {self._limit:,} bytes")
            self._pending += block
        if size < 0:
            size = len(self._pending)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data
