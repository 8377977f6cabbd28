"""Canonical JSON and content digests.

A digest is written ``sha256:<64 hex>`` (OCI style). The digest of a bundle is the
SHA-256 of its canonical JSON, RFC 8785 (sorted keys, no whitespace, ES6 number
formatting, UTF-8), so the same content has the same digest on every machine.
The short form is the first 12 hex digits; any unique prefix of at least
:data:`MIN_SHORT_LEN` digits is accepted as input.

Example:
    >>> d = digest_bytes(canonical_json({"b": 1, "a": [1.0, "x"]}))
    >>> d == digest_bytes(b'{"a":[1,"x"],"b":1}')
    True
    >>> short(d)
    'a88dede55f33'
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import rfc8785

from llmreg.errors import InvalidBundleError, InvalidRefError, shown

ALGORITHM = "sha256"
SHORT_LEN = 12
MIN_SHORT_LEN = 7
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_PREFIX_RE = re.compile(rf"^(?:sha256:)?([0-9a-f]{{{MIN_SHORT_LEN},64}})$")


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 canonical JSON bytes of a JSON-compatible value.

    Example:
        >>> canonical_json({"z": 0.5, "a": "é"})
        b'{"a":"\\xc3\\xa9","z":0.5}'
    """
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidBundleError(f"content cannot be canonicalised as JSON: {exc}") from exc


def compact_json(value: Any) -> bytes:
    """Deterministic compact JSON (sorted keys, UTF-8), for derived records such as a
    stored diff: the same value always gives the same bytes, but they name nothing, so
    they need not be RFC 8785 (which costs ten times as much in pure Python).

    Example:
        >>> compact_json({"z": 0.5, "a": "é"})
        b'{"a":"\\xc3\\xa9","z":0.5}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def digest_bytes(data: bytes) -> str:
    """Return ``sha256:<hex>`` of ``data``.

    Example:
        >>> digest_bytes(b"")
        'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    return f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}"


def new_hasher() -> hashlib._Hash:
    """Return a fresh hasher for streaming; finish it with :func:`format_digest`."""
    return hashlib.sha256()


def format_digest(hasher: hashlib._Hash) -> str:
    """Format a finished hasher as ``sha256:<hex>``."""
    return f"{ALGORITHM}:{hasher.hexdigest()}"


def is_digest(value: str) -> bool:
    """Tell whether ``value`` is a full ``sha256:<64 hex>`` digest.

    Example:
        >>> is_digest("sha256:" + "0" * 64), is_digest("sha256:abc")
        (True, False)
    """
    return bool(DIGEST_RE.fullmatch(value))


def check_digest(value: str, *, field: str = "digest") -> str:
    """Return ``value`` if it is a full digest, else raise naming ``field``."""
    if not is_digest(value):
        raise InvalidRefError(
            f"{field} {shown(value)} is not a digest; expected 'sha256:' followed by 64 lowercase "
            "hex digits"
        )
    return value


def hex_of(digest: str) -> str:
    """Return the hex part of a full digest (used for blob paths)."""
    return check_digest(digest)[len(ALGORITHM) + 1 :]


def short(digest: str) -> str:
    """Return the display form of a digest: its first 12 hex digits.

    Example:
        >>> short("sha256:" + "ab" * 32)
        'abababababab'
    """
    return hex_of(digest)[:SHORT_LEN]


def parse_prefix(value: str) -> str | None:
    """Return the hex prefix if ``value`` looks like a (short) digest, else ``None``.

    Accepts ``sha256:<hex>`` and bare hex of at least 7 digits, exactly as given
    (surrounding whitespace makes it no digest).

    Example:
        >>> parse_prefix("sha256:3f2a9c1b7d4e"), parse_prefix("v2")
        ('3f2a9c1b7d4e', None)
    """
    m = _PREFIX_RE.fullmatch(value.lower())
    return m.group(1) if m else None
