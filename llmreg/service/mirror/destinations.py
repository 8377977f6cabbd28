"""Where a mirror is published: a folder (served by any web server) or an S3 bucket.

A destination reads and writes whole files by their path in the mirror
(``metadata/timestamp.json``, ``targets/pointers/chat/<hash>.production.json``). Every
write replaces the file whole: a folder writes a temporary file, fsyncs it and renames
it; an S3 ``PUT`` is atomic by itself. Files never change once written except
``metadata/timestamp.json`` and ``metadata/root.json``, so they are sent with a long,
immutable ``Cache-Control`` and those two with ``no-cache`` (a CDN in front then never
serves a stale timestamp for long).

Example:
    >>> import tempfile
    >>> d = open_destination(tempfile.mkdtemp())
    >>> d.write("metadata/x.json", b"{}"); d.read("metadata/x.json"), d.exists("nope")
    (b'{}', False)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from llmreg.settings import StoreScheme, StoreURL, parse_store_url, s3_client

MUTABLE = ("metadata/timestamp.json", "metadata/root.json")


def cache_control(path: str) -> str:
    """The ``Cache-Control`` a file of the mirror should be served with.

    Example:
        >>> cache_control("metadata/timestamp.json"), cache_control("metadata/3.snapshot.json")
        ('no-cache', 'public, max-age=31536000, immutable')
    """
    return "no-cache" if path in MUTABLE else "public, max-age=31536000, immutable"


class Destination(Protocol):
    """A mirror's storage: whole files by path."""

    url: str

    def read(self, path: str) -> bytes | None: ...
    def exists(self, path: str) -> bool: ...
    def write(self, path: str, data: bytes) -> None: ...


class FolderDestination:
    """A mirror in a local folder (``DEST`` or ``file://DEST``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root.resolve()}"

    def _path(self, path: str) -> Path:
        return self.root.joinpath(*path.split("/"))

    def read(self, path: str) -> bytes | None:
        try:
            return self._path(path).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, path: str) -> bool:
        return self._path(path).is_file()

    def write(self, path: str, data: bytes) -> None:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # a web server running as another user must read it
        os.replace(tmp, target)


class S3Destination:
    """A mirror under ``s3://bucket/prefix`` (boto3, through
    :func:`llmreg.settings.s3_client`: endpoint and credentials from the standard AWS
    configuration, ``AWS_ENDPOINT_URL_S3`` included)."""

    def __init__(self, bucket: str, prefix: str, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.client = s3_client("an s3:// mirror") if client is None else client

    def _key(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def read(self, path: str) -> bytes | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(path))
        except self.client.exceptions.NoSuchKey:
            return None
        data: bytes = answer["Body"].read()
        return data

    def exists(self, path: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def write(self, path: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(path), Body=data,
                               ContentType="application/json" if path.endswith(".json")
                               else "application/octet-stream",
                               CacheControl=cache_control(path))


# One opener per scheme of llmreg.settings.StoreScheme (tests/store/test_urls.py).
OPENERS: dict[StoreScheme, Callable[[StoreURL], Destination]] = {
    "file": lambda url: FolderDestination(Path(url.path)),
    "s3": lambda url: S3Destination(url.bucket, url.prefix),
}


def open_destination(dest: str | Path, field: str = "DEST") -> Destination:
    """A destination from ``DEST``: a folder path, ``file://PATH`` or ``s3://BUCKET/PREFIX``
    (read by :func:`llmreg.settings.parse_store_url`; ``field`` names it in errors).

    Example:
        >>> open_destination("ftp://x")
        Traceback (most recent call last):
        ...
        llmreg.errors.ConfigError: DEST='ftp://x' is not a folder, file://PATH or ...
    """
    url = parse_store_url(str(dest), field, OPENERS)
    return OPENERS[url.scheme](url)
