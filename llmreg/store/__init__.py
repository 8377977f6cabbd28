"""Blob stores: content-addressed, immutable bytes under ``blobs/sha256/<hex>``.

One small interface (:class:`BlobStore`) and one module per backend: ``local`` (a
folder), ``s3`` (a bucket, through boto3; imported only when ``LLMREG_STORE`` names
one) and ``memory`` (tests). Every read verifies the digest. Only the service layer
(:mod:`llmreg.service.blobs`) calls a store; backend facts such as a blob's age or the
leftovers of killed uploads are answered by the store itself.

``LLMREG_STORE`` is read by :func:`llmreg.settings.parse_store_url`; :data:`OPENERS`
maps each of its schemes to the store that opens it.
"""

from collections.abc import Callable
from pathlib import Path

from llmreg.settings import StoreScheme, StoreURL, parse_store_url
from llmreg.store.base import BlobStore as BlobStore
from llmreg.store.base import Descriptor as Descriptor
from llmreg.store.local import LocalStore as LocalStore
from llmreg.store.memory import MemoryStore as MemoryStore

__all__ = ["OPENERS", "BlobStore", "Descriptor", "LocalStore", "MemoryStore", "open_store"]


def _open_s3(url: StoreURL) -> BlobStore:
    from llmreg.store.s3 import S3Store  # boto3 is imported only for an s3:// store

    return S3Store(url.bucket, url.prefix)


# One opener per scheme of llmreg.settings.StoreScheme (tests/store/test_urls.py).
OPENERS: dict[StoreScheme, Callable[[StoreURL], BlobStore]] = {
    "file": lambda url: LocalStore(Path(url.path)),
    "s3": _open_s3,
}


def open_store(spec: str | None, home: Path) -> BlobStore:
    """The store ``LLMREG_STORE`` names: ``s3://bucket/prefix``, a folder, or ``home``.

    Example:
        >>> open_store(None, Path("reg/.llmreg")).dir
        PosixPath('reg/.llmreg/blobs/sha256')
        >>> open_store("/srv/blobs", Path("reg/.llmreg")).dir
        PosixPath('/srv/blobs/blobs/sha256')
        >>> open_store("gs://bucket", Path("reg/.llmreg"))
        Traceback (most recent call last):
        ...
        llmreg.errors.ConfigError: LLMREG_STORE='gs://bucket' is not a folder, file://PATH or ...
    """
    if not spec:
        return LocalStore(home)
    url = parse_store_url(spec, "LLMREG_STORE", OPENERS)
    return OPENERS[url.scheme](url)
