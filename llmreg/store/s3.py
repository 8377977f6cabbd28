"""A blob store in an S3 bucket (boto3), laid out like the local one.

``LLMREG_STORE=s3://bucket/prefix``; endpoint, region and credentials come from the
standard AWS configuration (``AWS_ENDPOINT_URL_S3`` included). Keys are
``<prefix>/blobs/sha256/<hex>``.

- **Create-only writes**: every upload sends ``If-None-Match: *``; a blob that is
  already there answers 412 and the put is a no-op (puts are idempotent).
- **Checksums**: every upload sends its SHA-256 (``x-amz-checksum-sha256``, per part for
  multipart); the server refuses bytes that do not match, and so does llmreg.
- **Multipart** above 64 MiB, in 64 MiB parts.
- **Retries and timeouts**: the client's own (:data:`llmreg.settings.S3_CONFIG`, the one
  policy of every S3 client llmreg makes); nothing here retries on top of it.
- **Reads verify**: the bytes are hashed as they stream and a mismatch raises
  :class:`~llmreg.errors.IntegrityError` naming the digest.

The digest names the key, so a stream of unknown content is first spooled to a
temporary file while it is hashed (constant memory), then uploaded.

Example:
    >>> store = S3Store("llmreg-prod", "/registry/", client=object())  # any boto3-like client
    >>> store.key("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    'registry/blobs/sha256/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'
    >>> store = S3Store("llmreg-prod", "registry")  # doctest: +SKIP
    >>> store.put_bytes(b"hello").digest            # doctest: +SKIP
    'sha256:2cf24dba…'
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

from llmreg.bundle.digest import DIGEST_RE, format_digest, hex_of, new_hasher
from llmreg.errors import BlobNotFoundError, DigestInvalidError, IntegrityError
from llmreg.settings import s3_client
from llmreg.store.base import CHUNK, BlobStore, Descriptor, VerifyingReader

PART = 64 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class S3Store(BlobStore):
    """Blobs in ``s3://bucket/prefix/blobs/sha256/``."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None,
                 part_size: int = PART) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if part_size < 5 * 1024 * 1024:
            raise ValueError("S3 parts are at least 5 MiB")
        self.part_size = part_size
        self.client = s3_client("an S3 store") if client is None else client

    def key(self, digest: str) -> str:
        base = f"{self.prefix}/" if self.prefix else ""
        return f"{base}blobs/sha256/{hex_of(digest)}"

    # -- writes --------------------------------------------------------------------

    def put_stream(self, stream: BinaryIO, *, expected_digest: str | None = None) -> Descriptor:
        if expected_digest is not None and self.intact(expected_digest):
            return Descriptor(expected_digest, self.size(expected_digest))
        with tempfile.TemporaryFile() as spool:
            hasher = new_hasher()
            size = 0
            while chunk := stream.read(CHUNK):
                hasher.update(chunk)
                spool.write(chunk)
                size += len(chunk)
            digest = format_digest(hasher)
            if expected_digest is not None and digest != expected_digest:
                raise DigestInvalidError(
                    f"upload for {expected_digest} hashes to {digest}; nothing was stored")
            damaged = self.exists(digest)
            if damaged and self.intact(digest):
                return Descriptor(digest, size)  # already there: puts are idempotent
            spool.seek(0)
            if size <= self.part_size:  # a damaged copy is overwritten by the right bytes
                self.put_object(self.key(digest), spool.read(), _b64(hasher.digest()),
                                create_only=not damaged)
            else:
                self._multipart(self.key(digest), spool, size)
        return Descriptor(digest, size)

    def put_object(self, key: str, body: bytes, checksum_sha256: str, *,
                   create_only: bool = True) -> None:
        """One upload with its SHA-256 (a wrong checksum is refused); create-only unless
        it repairs a damaged copy."""
        from botocore.exceptions import ClientError

        condition = {"IfNoneMatch": "*"} if create_only else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                   ChecksumSHA256=checksum_sha256, **condition)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "412"):
                return  # already there: blobs never change, so this is the same content
            if code in ("BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch",
                        "InvalidRequest"):
                raise IntegrityError(f"the S3 server refused {key}: the bytes do not match "
                                     f"the SHA-256 sent ({code})") from None
            raise

    def _multipart(self, key: str, spool: BinaryIO, size: int) -> None:
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=key,
                                                     ChecksumAlgorithm="SHA256")
        upload_id = upload["UploadId"]
        parts = []
        try:
            number = 1
            while data := spool.read(self.part_size):
                checksum = _b64(hashlib.sha256(data).digest())
                parts.append(self._part(key, upload_id, number, data, checksum))
                number += 1
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": parts})
        except BaseException:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    def _part(self, key: str, upload_id: str, number: int, data: bytes,
              checksum: str) -> dict[str, Any]:
        r = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                    PartNumber=number, Body=data, ChecksumSHA256=checksum)
        return {"PartNumber": number, "ETag": r["ETag"], "ChecksumSHA256": checksum}

    # -- reads -----------------------------------------------------------------------

    def open(self, digest: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key(digest))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BlobNotFoundError(f"blob {digest} is not in s3://{self.bucket}/"
                                        f"{self.prefix}") from None
            raise
        body = obj["Body"]
        return VerifyingReader(body, digest, int(obj["ContentLength"]))  # type: ignore[return-value]

    def exists(self, digest: str) -> bool:
        return self._head(digest) is not None

    def size(self, digest: str) -> int:
        head = self._head(digest)
        if head is None:
            raise BlobNotFoundError(f"blob {digest} is not in s3://{self.bucket}/{self.prefix}")
        return int(head["ContentLength"])

    def _head(self, digest: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket,
                                                           Key=self.key(digest))
            return head
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def age(self, digest: str) -> float | None:
        head = self._head(digest)
        if head is None or "LastModified" not in head:
            return None
        written: float = head["LastModified"].timestamp()
        return time.time() - written

    def open_part(self, digest: str, start: int, stop: int | None = None
                  ) -> tuple[BinaryIO, str]:
        """A ranged GET's body (unverified) and the object's ETag as its token."""
        from botocore.exceptions import ClientError

        extra = {} if start == 0 and stop is None else {
            "Range": f"bytes={start}-{'' if stop is None else stop - 1}"}
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key(digest), **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BlobNotFoundError(f"blob {digest} is not in s3://{self.bucket}/"
                                        f"{self.prefix}") from None
            raise
        return obj["Body"], str(obj.get("ETag", ""))

    def table_key(self, digest: str) -> str:
        """The key of ``digest``'s chunk table: ``<prefix>/chunks/sha256/<hex>``."""
        base = f"{self.prefix}/" if self.prefix else ""
        return f"{base}chunks/sha256/{hex_of(digest)}"

    def load_table(self, digest: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            data: bytes = self.client.get_object(Bucket=self.bucket,
                                                 Key=self.table_key(digest))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return data

    def save_table(self, digest: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.table_key(digest), Body=data)

    def iter_digests(self) -> Iterator[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{base}blobs/sha256/"):
            for item in page.get("Contents", []):
                digest = "sha256:" + item["Key"].rsplit("/", 1)[1]
                if DIGEST_RE.fullmatch(digest):
                    yield digest

    def discard(self, digest: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))
        self.client.delete_object(Bucket=self.bucket, Key=self.table_key(digest))
