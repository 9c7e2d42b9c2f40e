"""A scoring job's files: its upload, its result and its refused rows.

Under ``JOBS_DIR/<job id>/``, on storage every web and job process shares
(the instance folder on one host; in Kubernetes, the volume the model
store is on). An upload is written under a temporary name and renamed
when complete, so a job is never queued on half a file.
"""
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from ..serving.scoring import errors_path

UPLOAD, RESULT = "upload.csv", "result.csv"


class UploadTooLarge(ValueError):
    """The upload is over the configured size; nothing was kept."""


class JobFiles:
    def __init__(self, root: Path):
        self.root = Path(root)

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

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
