"""The remote client's disk cache: manifests by digest, and the last answer per slot.

Manifests are blobs in a :class:`~llmreg.store.local.LocalStore` under the cache
folder (``LLMREG_CACHE``), verified on every read like any blob. The last answer for
each (server, name, environment) is a small JSON record that says which digest and
version the slot held and when it was resolved. A record is bound to its server, name,
environment, digest, version and time by an HMAC whose key is kept *outside* the cache
folder (``LLMREG_CACHE_KEY``, default the user state folder; created once, mode 0600 in
a 0700 folder), so a record edited by hand — pointed at another name's manifest, or
moved into the future to pass ``max_stale`` — is detected and ignored, never served,
even by someone who can write the whole cache folder (a shared or mounted cache). A key
file inside the cache folder is refused with :class:`~llmreg.errors.ConfigError`.

Example:
    >>> import tempfile
    >>> tmp = Path(tempfile.mkdtemp())
    >>> cache = ClientCache(tmp / "cache", "http://registry.test", key=tmp / "cache.key")
    >>> digest = cache.keep(b'{"kind":"llm"}')
    >>> cache.remember("chat", "production", digest, 3)
    >>> cache.last("chat", "production").version
    3
    >>> cache.read(digest)
    b'{"kind":"llm"}'
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from llmreg.bundle.digest import short
from llmreg.bundle.resolved import ResolvedBundle
from llmreg.client.transport import default_key
from llmreg.errors import BlobNotFoundError, ConfigError, IntegrityError, LLMRegError
from llmreg.store.local import LocalStore

log = logging.getLogger("llmreg")
CLOCK_SKEW = 300.0  # a record stamped further in the future than this was edited


@dataclass(frozen=True)
class SlotRecord:
    """The last answer for one slot: what it held, and when that was learnt."""

    name: str
    env: str  # as the caller asked for it
    canonical_env: str  # as the server named it
    digest: str
    version: int
    resolved_at: float


class ClientCache:
    """Verified manifests and authenticated slot records, under one folder."""

    def __init__(self, root: Path, server: str, key: Path | None = None) -> None:
        self.root = root
        self.server = server
        self.key_file = key or default_key()
        if self.key_file.absolute().is_relative_to(root.absolute()):
            raise ConfigError(f"LLMREG_CACHE_KEY={str(self.key_file)!r} is inside the cache "
                              f"folder {str(root)!r} it protects; keep the key elsewhere "
                              "(docs/security.md)")
        self._blobs = LocalStore(root)
        self._slots = root / "slots" / hashlib.sha256(server.encode()).hexdigest()[:16]
        self._key: bytes | None = None

    # -- manifests -------------------------------------------------------------------

    def has(self, digest: str) -> bool:
        """Whether a manifest is cached (not yet verified)."""
        return self._blobs.exists(digest)

    def read(self, digest: str) -> bytes:
        """A cached manifest, verified: ``IntegrityError`` if its bytes were damaged,
        ``BlobNotFoundError`` if it is not there."""
        return self._blobs.get_bytes(digest)

    def keep(self, body: bytes) -> str:
        """Cache a manifest the caller has verified; its digest."""
        return self._blobs.put_bytes(body).digest

    def drop(self, digest: str) -> None:
        """Forget a damaged manifest."""
        self._blobs.discard(digest)

    # -- slot records ----------------------------------------------------------------

    def last(self, name: str, env: str) -> SlotRecord | None:
        """The last answer for (name, env), or None when there is none or it was edited."""
        path = self._slot_file(name, env)
        try:
            data = json.loads(path.read_text())
            record = SlotRecord(name=data["name"], env=data["env"],
                                canonical_env=data["canonical_env"], digest=data["digest"],
                                version=int(data["version"]),
                                resolved_at=float(data["resolved_at"]))
            mac = str(data["mac"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if (record.name, record.env) != (name, env) \
                or not hmac.compare_digest(mac, self._mac(record)) \
                or record.resolved_at > time.time() + CLOCK_SKEW:
            log.warning("the cached answer for %s@%s at %s was edited; ignoring it",
                        name, env, path)
            return None
        return record

    def remember(self, name: str, env: str, digest: str, version: int,
                 canonical_env: str | None = None) -> None:
        """Record the answer for (name, env). A cache that cannot be written is skipped:
        it must never break resolving."""
        record = SlotRecord(name=name, env=env, canonical_env=canonical_env or env,
                            digest=digest, version=version, resolved_at=time.time())
        path = self._slot_file(name, env)
        try:
            body = {**record.__dict__, "mac": self._mac(record)}
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(body))
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("llmreg: cannot write the slot cache %s: %s", path, exc)

    def _slot_file(self, name: str, env: str) -> Path:
        # The environment is the caller's string: hashed, it can never name a path.
        return self._slots / name / f"{hashlib.sha256(env.encode()).hexdigest()[:24]}.json"

    def _mac(self, record: SlotRecord) -> str:
        message = json.dumps([self.server, record.name, record.env, record.canonical_env,
                              record.digest, record.version, record.resolved_at])
        return hmac.new(self._secret(), message.encode(), hashlib.sha256).hexdigest()

    def _secret(self) -> bytes:
        if self._key is None:
            path = self.key_file
            try:
                self._key = path.read_bytes()
            except FileNotFoundError:
                self._key = _create_key(path)
            except OSError:
                self._key = b""  # unreadable: every record fails to verify, none is served
        return self._key


def _create_key(path: Path) -> bytes:
    """Create the key file once (0600), whole or not at all; if another process won
    the race, read theirs."""
    key = os.urandom(32)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        os.link(tmp, path)  # atomic, and fails if the key exists already
    except FileExistsError:
        return path.read_bytes()
    except OSError:
        return key  # a read-only cache: records are not written either
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return key


def serve_cached(cache: ClientCache, name: str, env: str, record: SlotRecord | None,
                 error: LLMRegError, *, strict: bool, max_stale: float | None
                 ) -> ResolvedBundle:
    """The offline rule, once for every backend that resolves over a network (a server,
    a signed mirror): when the fresh answer failed with ``error``, serve the last answer
    this machine resolved for ``name``@``env`` from the cache, verified against its
    digest, with a warning saying how stale it is — or raise ``error``'s own class,
    saying why not, when ``strict``, when there is no cached answer, when it is older than
    ``max_stale`` seconds, or when the cached manifest cannot be read intact.

    Example:
        >>> import tempfile
        >>> from llmreg.errors import RegistryUnavailableError
        >>> tmp = Path(tempfile.mkdtemp())
        >>> cache = ClientCache(tmp / "cache", "http://registry", key=tmp / "cache.key")
        >>> try:
        ...     serve_cached(cache, "chat", "production", None,
        ...                  RegistryUnavailableError("cannot reach http://registry"),
        ...                  strict=False, max_stale=None)
        ... except RegistryUnavailableError as exc:
        ...     print(str(exc).split(", and ")[1])
        there is no cached answer for chat@production on this machine
    """
    kind = type(error)
    if strict:
        raise kind(f"{error}; strict=True, so the cached answer for {name}@{env} is not used")
    if record is None:
        raise kind(f"{error}, and there is no cached answer for {name}@{env} on this machine")
    age = max(0.0, time.time() - record.resolved_at)
    if max_stale is not None and age > max_stale:
        raise kind(f"{error}; the cached answer for {name}@{env} is {age:.0f}s old, over "
                   f"max_stale={max_stale:g}s")
    try:
        body = cache.read(record.digest)  # verified against the digest
    except (IntegrityError, BlobNotFoundError) as exc:
        raise kind(f"{error}, and the cached manifest for {name}@{env} cannot be used: "
                   f"{exc}") from None
    log.warning("%s; serving the cached %s@%s (version %s, %s) resolved %.0fs ago",
                error, name, env, record.version, short(record.digest), age)
    return ResolvedBundle(body, name=name, version=record.version, env=record.canonical_env,
                          digest=record.digest, cache_age=age)
