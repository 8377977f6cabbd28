"""Blob stores: content-addressed, immutable bytes under ``blobs/sha256/<hex>``.

One small interface (:class:`BlobStore`) and one module per backend: ``local`` (a
folder) and ``memory`` (tests). Every read verifies the digest.
"""

from llmreg.store.base import BlobStore as BlobStore
from llmreg.store.base import Descriptor as Descriptor
from llmreg.store.local import LocalStore as LocalStore
from llmreg.store.memory import MemoryStore as MemoryStore

__all__ = ["BlobStore", "Descriptor", "LocalStore", "MemoryStore"]
