"""What one server process holds: settings, the service, and two small caches.

One :class:`ServerState` lives on ``app.state.llmreg``. Both the resolve fast path and
the :func:`~llmreg.server.deps.require` dependency authenticate through
:meth:`ServerState.authenticate`, so bearer parsing, the token cache and the role check
exist once. Nothing here is authoritative (DESIGN §3): a token answer lives
``TOKEN_TTL`` seconds, a slot lookup ``LLMREG_RESOLVE_TTL`` seconds, and manifests are
cached by digest, so a cached one is never stale.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from llmreg.db.models import utcnow
from llmreg.errors import AuthError, PermissionDeniedError
from llmreg.server.metrics import ServerMetrics
from llmreg.server.oidc import OIDCVerifier, looks_like_jwt
from llmreg.service.access import refusal
from llmreg.service.mirror.publisher import AutoPublisher
from llmreg.service.registry import RegistryService
from llmreg.settings import Settings
from llmreg.types import Actor, roles_of

ANONYMOUS = Actor("anonymous", roles_of("reader"))
TOKEN_TTL = 5.0  # a revoked token stops working within this many seconds
MANIFEST_CACHE = 4096  # manifests kept by digest
REFRESH_AHEAD = 0.3  # renew an entry in the background in the last 30% of its life


@dataclass(frozen=True, slots=True)
class TokenEntry:
    expires: float  # time.monotonic()
    # The token's actor (its expiry is checked on every use), or why it is refused
    # (unknown or revoked: remembered too, so floods stay cheap).
    actor: Actor | str


@dataclass(frozen=True, slots=True)
class SlotEntry:
    expires: float  # time.monotonic()
    digest: str
    version: int
    env: str  # the canonical environment (the request may have named an alias)


class TokenCache:
    """Token -> :class:`TokenEntry`, answered by the database at most every ``ttl`` s."""

    def __init__(self, authenticate: Callable[[str], Actor | str], ttl: float = TOKEN_TTL,
                 limit: int = 10_000) -> None:
        self._authenticate = authenticate
        self.ttl = ttl
        self._limit = limit
        self._entries: dict[str, TokenEntry] = {}

    def fresh(self, token: str, now: float) -> TokenEntry | None:
        """The cached entry for ``token`` if it has not expired."""
        entry = self._entries.get(token)
        return entry if entry is not None and entry.expires > now else None

    def refresh(self, token: str) -> Actor | str:
        """Ask the database (blocking) and cache the answer."""
        actor = self._authenticate(token)
        if len(self._entries) > self._limit:
            self._entries.clear()
        self._entries[token] = TokenEntry(time.monotonic() + self.ttl, actor)
        return actor

    def invalidate(self) -> None:
        """Forget every answer (after a revocation or rotation through this replica)."""
        self._entries.clear()


class ResolveCache:
    """(name, env) -> :class:`SlotEntry` for ``ttl`` seconds; digest -> manifest bytes."""

    def __init__(self, service: RegistryService, ttl: float) -> None:
        self._service = service
        self.ttl = ttl
        self._slots: dict[tuple[str, str], SlotEntry] = {}
        self._manifests: OrderedDict[str, bytes] = OrderedDict()

    def fresh(self, name: str, env: str, now: float) -> tuple[SlotEntry, bytes] | None:
        """The cached answer if the slot entry is unexpired and its manifest is held."""
        entry = self._slots.get((name, env))
        if entry is None or entry.expires <= now:
            return None
        body = self._manifests.get(entry.digest)
        return None if body is None else (entry, body)

    def lookup(self, name: str, env: str, *, force: bool = False) -> tuple[SlotEntry, bytes]:
        """The slot and its canonical manifest bytes, from the database when not fresh.

        Raises what ``service.versions.slot`` raises (unknown name, empty slot, …).
        """
        now = time.monotonic()
        entry = self._slots.get((name, env))
        svc = self._service
        if force or entry is None or entry.expires <= now:
            canonical = svc.policy.canonical_env(env)
            info = svc.versions.slot(name, canonical)
            entry = SlotEntry(now + self.ttl, info.digest, info.version, canonical)
            if self.ttl > 0:
                self._slots[(name, env)] = entry
        body = self._manifests.get(entry.digest)
        if body is None:
            body = svc.blobs.read(entry.digest)  # verified against the digest
            self._manifests[entry.digest] = body
            if len(self._manifests) > MANIFEST_CACHE:
                self._manifests.popitem(last=False)
        return entry, body

    def invalidate(self, name: str | None = None) -> None:
        """Forget the slots of ``name`` (every name when None); manifests never change."""
        if name is None:
            self._slots.clear()
            return
        for key in list(self._slots):  # list(): other threads may add entries meanwhile
            if key[0] == name:
                self._slots.pop(key, None)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None without a header).

    Example:
        >>> bearer_token("Bearer llmreg_abc")
        'llmreg_abc'
    """
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError("the Authorization header must be 'Bearer <token>'")
    return token


@dataclass
class ChainCheck:
    """The last verification of the audit chain, as the audit page shows it."""

    head: str | None = None
    at: float = float("-inf")  # time.monotonic() of the check
    checked_at: datetime | None = None  # the same moment, for people
    count: int | None = None  # entries verified (None: not checked yet)
    problem: str | None = None  # the break found, if any
    running: bool = False  # a re-check is under way in the background
    rows: int = 0  # covered rows equal to their audited fields
    unrecorded: int = 0  # rows of an upgraded registry no entry recorded (counted only)
    anchor: str | None = None  # what the head checked against was (None: no anchor)


@dataclass
class ServerState:
    """The typed state of one server process (``app.state.llmreg``)."""

    settings: Settings
    service: RegistryService
    tokens: TokenCache
    resolve_cache: ResolveCache
    publisher: AutoPublisher | None = None  # `llmreg serve --publish DEST`
    chain: ChainCheck = field(default_factory=ChainCheck)  # for the audit page
    metrics: ServerMetrics | None = None  # None: LLMREG_METRICS=off
    _refreshing: set[object] = field(default_factory=set)

    @classmethod
    def build(cls, settings: Settings, service: RegistryService) -> ServerState:
        publisher = None
        if settings.publish:
            publisher = AutoPublisher(service, settings.publish,
                                      settings.mirror_keys or Path("mirror-keys"))
        metrics = None
        if settings.metrics != "off":
            envs = {alias: env for env, spec in service.policy.environments.items()
                    for alias in (env, *spec.aliases)}
            metrics = ServerMetrics(envs)
        identify = service.access.identify
        if settings.oidc_issuers:
            verifier = OIDCVerifier(settings.oidc_issuers, settings.oidc_audience)

            def identify(token: str) -> Actor | str:
                if token.startswith("llmreg_") or not looks_like_jwt(token):
                    return service.access.identify(token)
                return verifier.identify(token, service.policy)

        return cls(settings, service, TokenCache(identify),
                   ResolveCache(service, settings.resolve_ttl), publisher=publisher,
                   metrics=metrics)

    def moved(self, name: str) -> None:
        """After a promotion or rollback: this replica answers the new slot now, and the
        signed mirror (if the server publishes one) follows."""
        self.resolve_cache.invalidate(name)
        if self.publisher is not None:
            self.publisher.after_move()

    def authenticate(self, authorization: str | None, role: str, *, cached_only: bool = False
                     ) -> Actor | None:
        """The caller behind an ``Authorization`` header, if they may act with ``role``.

        Raises :class:`AuthError` (no usable token) or :class:`PermissionDeniedError`
        (the token lacks ``role``). Reads need no token when reads are open. With
        ``cached_only`` (the event loop's fast path) it never touches the database:
        None means "not in the cache", and a token near expiry is renewed in the
        background.
        """
        token = bearer_token(authorization)
        if token is None:
            if role == "reader" and self.settings.read_auth == "open":
                return ANONYMOUS
            raise AuthError(f"this needs a token with the {role} role; send "
                            "'Authorization: Bearer <token>'")
        now = time.monotonic()
        entry = self.tokens.fresh(token, now)
        if entry is not None:
            if cached_only and entry.expires - now < self.tokens.ttl * REFRESH_AHEAD:
                self.in_background(("token", token), self.tokens.refresh, token)
            actor = entry.actor
        elif cached_only:
            return None
        else:
            actor = self.tokens.refresh(token)
        if isinstance(actor, str):
            raise AuthError(actor)
        # Checked on every use, not cached: a token is refused the moment it expires.
        expired = refusal(actor, utcnow())
        if expired is not None:
            raise AuthError(expired)
        return self.authorize(actor, role)

    def authorize(self, actor: Actor, role: str) -> Actor:
        """``actor`` if they hold ``role``, else :class:`PermissionDeniedError` (the one
        role check, for bearer tokens and web sessions alike).

        Example:
            >>> state.authorize(Actor("ana", roles_of("reader")), "reader").name  # doctest: +SKIP
            'ana'
        """
        if actor.roles is not None and role not in actor.roles:
            raise PermissionDeniedError(
                f"{actor.name}'s token has roles {sorted(actor.roles)}; this needs {role}")
        return actor

    def in_background(self, key: object, fn: Callable[..., Any], *args: Any,
                      **kwargs: Any) -> None:
        """Run ``fn`` once per ``key`` in a worker thread (from the event loop), so no
        burst of requests ever queues behind the database to renew a cache entry."""
        if key in self._refreshing:
            return
        self._refreshing.add(key)

        def run() -> None:
            try:
                fn(*args, **kwargs)
            except Exception:  # the next request falls through and reports it properly
                pass
            finally:
                self._refreshing.discard(key)

        asyncio.get_running_loop().run_in_executor(None, run)
