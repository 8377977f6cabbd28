"""Blob stores: content-addressed, immutable bytes under ``blobs/sha256/<hex>``.

One small interface (:class:`BlobStore`) and one module per backend: ``local`` (a
folder), ``s3`` (a bucket, through boto3; imported only when ``LLMREG_STORE`` names
one) and ``memory`` (tests). Every read verifies the digest. Only the service layer
(:mod:`llmreg.service.blobs`) calls a store; backend facts such as a blob's age or the
leftovers of killed uploads are answered by the store itself.
"""

from pathlib import Path

from llmreg.store.base import BlobStore as BlobStore
from llmreg.store.base import Descriptor as Descriptor
from llmreg.store.local import LocalStore as LocalStore
from llmreg.store.memory import MemoryStore as MemoryStore

__all__ = ["BlobStore", "Descriptor", "LocalStore", "MemoryStore", "open_store"]


def open_store(spec: str | None, home: Path) -> BlobStore:
    """The store ``LLMREG_STORE`` names: ``s3://bucket/prefix``, a folder, or ``home``."""
    if spec is not None and spec.startswith("s3://"):
        from llmreg.store.s3 import S3Store

        return S3Store.from_url(spec)
    return LocalStore(Path(spec) if spec else home)
