"""An S3-compatible bucket under a prefix, through boto3, safe across forks.

Credentials, region and endpoint come from the usual AWS settings
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
``AWS_ENDPOINT_URL`` for MinIO and the like), or a pod's service account.
Failures surface as three kinds: ``FileNotFoundError`` (no such object),
:class:`PreconditionFailed` (a conditional write lost its race) and the
caller's ``unavailable`` error (anything else: the bucket unreachable,
refused, missing).
"""
import os
import threading
from collections.abc import Iterator
from urllib.parse import urlparse

#: Seconds to wait for the bucket before a request counts as failed.
TIMEOUT_SECONDS = 10.0


class PreconditionFailed(Exception):
    """The object changed (or exists) since it was read: a lost race."""


class NotModified(Exception):
    """The object still has the ETag the conditional read named."""


class BucketUnavailableError(OSError):
    """The bucket could not be reached, or refused the request."""


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as (bucket, prefix without slashes at its ends)."""
    parsed = urlparse(str(url))
    if parsed.scheme != "s3" or not parsed.netloc or parsed.query \
            or parsed.fragment:
        raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
    return parsed.netloc, parsed.path.strip("/")


class Bucket:
    """``s3://bucket/prefix``; keys are given relative to the prefix."""

    def __init__(self, url: str, unavailable: type[OSError] = BucketUnavailableError,
                 timeout: float = TIMEOUT_SECONDS):
        self.name, self.prefix = parse_url(url)
        self.url = f"s3://{self.name}/{self.prefix}".rstrip("/")
        self.unavailable = unavailable
        self.timeout = timeout
        self._lock, self._lock_pid = threading.Lock(), os.getpid()
        self._client, self._client_pid = None, None

    @property
    def client(self):
        """This process's S3 client: one made before a fork would share its
        connections with the parent, so a forked worker makes its own."""
        if self._client_pid == os.getpid():
            return self._client
        if self._lock_pid != os.getpid():  # one held at the fork stays held
            self._lock, self._lock_pid = threading.Lock(), os.getpid()
        with self._lock:
            if self._client_pid != os.getpid():
                import boto3
                from botocore.config import Config

                self._client = boto3.session.Session().client("s3", config=Config(
                    connect_timeout=min(3.0, self.timeout),
                    read_timeout=self.timeout,
                    retries={"mode": "standard", "max_attempts": 3}))
                self._client_pid = os.getpid()
            return self._client

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def call(self, method: str, **kwargs):
        """``client.<method>(Bucket=..., **kwargs)``, its failures sorted."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.name, **kwargs)
        except ClientError as exc:
            raise self._sorted(exc, kwargs.get("Key")) from exc
        except BotoCoreError as exc:
            raise self.unavailable(5, f"{self.url} is unreachable: {exc}") from exc

    def _sorted(self, exc, key) -> Exception:
        error = exc.response.get("Error", {})
        code = error.get("Code")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 304 or code == "304":
            return NotModified(key)
        if status in (409, 412) or code in ("PreconditionFailed",
                                            "ConditionalRequestConflict"):
            return PreconditionFailed(key)
        if code in ("NoSuchKey", "404", "NotFound") \
                or (status == 404 and code != "NoSuchBucket"):
            return FileNotFoundError(2, "no such object", key)
        return self.unavailable(5, f"{self.url}: {code}: "
                                   f"{error.get('Message') or exc}")

    def get(self, key: str, unless: str | None = None) -> tuple[bytes, str] | None:
        """The object's bytes and its ETag, or None if it does not exist;
        :class:`NotModified` (no body sent) if its ETag is still ``unless``."""
        condition = {"IfNoneMatch": unless} if unless else {}
        try:
            response = self.call("get_object", Key=key, **condition)
        except FileNotFoundError:
            return None
        return self.read(response["Body"]), response["ETag"]

    def read(self, body, size: int = -1) -> bytes:
        """Read from a response body; a broken download is ``unavailable``."""
        from botocore.exceptions import BotoCoreError

        try:
            return body.read(size) if size >= 0 else body.read()
        except (BotoCoreError, OSError) as exc:
            raise self.unavailable(
                5, f"{self.url}: a download broke off: {exc}") from exc

    def put(self, key: str, data: bytes, create: bool = False,
            etag: str | None = None) -> None:
        """Write ``data``; with ``create`` only if absent, with ``etag`` only
        over that version of it (else :class:`PreconditionFailed`)."""
        conditions = {"IfNoneMatch": "*"} if create else \
            {"IfMatch": etag} if etag else {}
        self.call("put_object", Key=key, Body=data, **conditions)

    def head(self, key: str) -> bool:
        try:
            self.call("head_object", Key=key)
        except FileNotFoundError:
            return False
        return True

    def objects(self, prefix: str) -> Iterator[dict]:
        """Every object whose key starts with ``prefix`` (listing pages)."""
        token = {}
        while True:
            page = self.call("list_objects_v2", Prefix=prefix, **token)
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            self.call("delete_objects", Delete={
                "Objects": [{"Key": k} for k in keys[start:start + 1000]],
                "Quiet": True})

    def transfer(self, method: str, *args, **kwargs):
        """boto3's managed transfers (multipart, in parts): ``upload_fileobj``,
        ``download_file``, with failures sorted like ``call``'s."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(*args, **kwargs)
        except ClientError as exc:
            raise self._sorted(exc, None) from exc
        except (BotoCoreError, S3UploadFailedError) as exc:
            raise self.unavailable(5, f"{self.url}: {exc}") from exc
