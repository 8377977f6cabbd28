"""The HTTP backend: a client's calls go to ``llmreg serve``.

``resolve(name, env=...)`` costs one request: a conditional ``GET`` of the slot with the
digest it already holds as ``If-None-Match``. Manifests are cached on disk by digest
(``LLMREG_CACHE``, default the user cache folder) and verified on every read; the last
answer for each (server, name, environment) is kept too. When the server cannot be
reached or answers 5xx, ``resolve`` serves that last answer from the cache and logs a
warning saying how stale it is — unless ``strict=True`` or it is older than
``max_stale`` seconds, when it raises :class:`~llmreg.errors.RegistryUnavailableError`.

The resolve path is an application's startup path: it must not pay for pydantic or
httpx. So this module imports them lazily, inside the methods that need them (every
method but ``resolve_slot``), and ``resolve_slot`` uses the standard library's HTTP
client unless an ``httpx.Client`` was injected. docs/benchmarks.md has the figures.

Example:
    >>> reg = llmreg.connect("http://127.0.0.1:8700", token="llmreg_…")  # doctest: +SKIP
    >>> bundle = reg.resolve("support-rag", env="production")           # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmreg import errors
from llmreg._backend import Backend, Progress
from llmreg._transport import CODES, StdlibHTTP, default_cache, quote_path
from llmreg.client import Client
from llmreg.digest import canonical_json, digest_bytes, short
from llmreg.errors import IntegrityError, LLMRegError, RegistryUnavailableError, ServerError
from llmreg.names import check_name
from llmreg.resolved import ResolvedBundle
from llmreg.settings import Settings
from llmreg.store.cache import ClientCache, SlotRecord

if TYPE_CHECKING:
    import httpx

    from llmreg.bundle import Bundle
    from llmreg.diff import BundleDiff
    from llmreg.policy import Policy
    from llmreg.types import (
        Actor,
        ApprovalInfo,
        AuditInfo,
        ChangelogEntry,
        EvidenceInfo,
        GateReport,
        NameSummary,
        Problem,
        Registration,
        SlotEventInfo,
        SlotStatus,
        TokenInfo,
        VersionInfo,
    )

log = logging.getLogger("llmreg")


class RemoteClient(Client):
    """A :class:`~llmreg.client.Client` over a registry server. :func:`llmreg.connect`
    makes one from a URL; this constructor is for tests and custom transports.

    Example:
        >>> reg = RemoteClient("http://127.0.0.1:8700", token="llmreg_…")  # doctest: +SKIP
    """

    def __init__(self, url: str, *, token: str | None = None, settings: Settings | None = None,
                 http: httpx.Client | None = None, cache: Path | None = None) -> None:
        super().__init__(HTTPBackend(url, token=token, settings=settings, http=http,
                                     cache=cache))


class HTTPBackend(Backend):
    """Each primitive is one request to the server (two for an upload of unknown digest)."""

    def __init__(self, url: str, *, token: str | None = None, settings: Settings | None = None,
                 http: httpx.Client | None = None, cache: Path | None = None) -> None:
        self.url = self._base = url.rstrip("/")
        self.settings = settings or Settings.from_env()
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._client: httpx.Client | None = http
        if http is not None and token:
            http.headers.update(self._auth)
        self._injected = http is not None
        self._stdlib = StdlibHTTP(self._base, self._auth)
        self._cache = ClientCache(cache or self.settings.cache or default_cache(), self._base)
        self._policy: Policy | None = None

    def close(self) -> None:
        self._stdlib.close()
        if self._client is not None:
            self._client.close()

    # -- transport -------------------------------------------------------------------

    @property
    def _http(self) -> httpx.Client:
        if self._client is None:
            import httpx

            self._client = httpx.Client(base_url=self._base, headers=self._auth,
                                        timeout=httpx.Timeout(10.0, connect=2.0))
        return self._client

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise RegistryUnavailableError(f"cannot reach the registry at {self.url}: {exc}"
                                           ) from None
        if response.status_code >= 400:
            raise self._error(response.status_code, response.content)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(method, path, **kwargs).json()

    def _get_raw(self, path: str, headers: dict[str, str]
                 ) -> tuple[int, dict[str, str], bytes]:
        """GET for the resolve path: an injected httpx client, else the standard library.
        Transport failures are raised as :class:`ConnectionError`."""
        if not self._injected:
            try:
                return self._stdlib.get(path, headers)
            except (OSError, http.client.HTTPException) as exc:
                raise ConnectionError(str(exc)) from None
        import httpx

        try:
            response = self._http.get(path, headers=headers)
        except httpx.TransportError as exc:
            raise ConnectionError(str(exc)) from None
        return (response.status_code, {k.lower(): v for k, v in response.headers.items()},
                response.content)

    def _error(self, status: int, content: bytes) -> LLMRegError:
        try:
            err = json.loads(content)["errors"][0]
            code, message, detail = err["code"], err["message"], err.get("detail")
        except (ValueError, KeyError, IndexError, TypeError):
            code, message, detail = "", content[:200].decode(errors="replace"), None
        cls = CODES.get(code)
        if cls is None:
            cls = ServerError if status >= 500 else LLMRegError
            message = f"HTTP {status} from {self.url}: {message}"
        if cls is errors.GateFailedError:
            from llmreg.types import GateReport

            report = GateReport.model_validate(detail) if isinstance(detail, dict) else None
            return errors.GateFailedError(message, report)
        return cls(message)

    def _pages(self, path: str) -> Iterator[Any]:
        offset: int | None = 0
        while offset is not None:
            page = self._json("GET", path, params={"offset": offset, "limit": 1000})
            yield from page["items"]
            offset = page["next"]

    # -- the hot path -------------------------------------------------------------------

    def resolve_slot(self, name: str, env: str, *, strict: bool,
                     max_stale: float | None) -> ResolvedBundle:
        check_name(name)
        record = self._cache.last(name, env)
        headers = {}
        if record is not None and self._cache.has(record.digest):
            headers["If-None-Match"] = f'"{record.digest}"'
        try:
            status, rheaders, content = self._get_raw(
                f"/v1/resolve/{quote_path(name)}/{quote_path(env)}", headers)
        except ConnectionError as exc:
            return self._fallback(name, env, record, f"cannot reach {self.url} ({exc})",
                                  strict, max_stale)
        if status >= 500:
            return self._fallback(name, env, record, f"{self.url} answered {status}",
                                  strict, max_stale)
        if status == 304 and record is not None:
            digest = record.digest
            try:
                body = self._cache.read(digest)
            except IntegrityError:
                # Our copy was damaged on disk: drop it and ask again, unconditionally.
                log.warning("llmreg: the cached manifest %s was corrupt; fetching it again",
                            short(digest))
                self._cache.drop(digest)
                return self.resolve_slot(name, env, strict=strict, max_stale=max_stale)
        elif status == 200:
            body = content
            digest = rheaders.get("etag", "").strip('"')
            if digest_bytes(body) != digest:
                raise IntegrityError(
                    f"the server's answer for {name}@{env} does not hash to its ETag "
                    f"{digest!r}; refusing it")
            self._cache.keep(body)
        else:
            raise self._error(status, content)
        version = int(rheaders.get("x-llmreg-version") or (record.version if record else 0))
        canonical_env = rheaders.get("x-llmreg-env", env)
        self._cache.remember(name, env, digest, version, canonical_env)
        return ResolvedBundle(body, name=name, version=version, env=canonical_env,
                              digest=digest)

    def _fallback(self, name: str, env: str, record: SlotRecord | None, why: str,
                  strict: bool, max_stale: float | None) -> ResolvedBundle:
        if strict:
            raise RegistryUnavailableError(f"{why}; strict=True, so the cached answer for "
                                           f"{name}@{env} is not used")
        if record is None:
            raise RegistryUnavailableError(f"{why}, and there is no cached answer for "
                                           f"{name}@{env} on this machine")
        age = max(0.0, time.time() - record.resolved_at)
        if max_stale is not None and age > max_stale:
            raise RegistryUnavailableError(
                f"{why}; the cached answer for {name}@{env} is {age:.0f}s old, over "
                f"max_stale={max_stale:g}s")
        try:
            body = self._cache.read(record.digest)  # verified against the digest
        except (IntegrityError, errors.BlobNotFoundError) as exc:
            raise RegistryUnavailableError(
                f"{why}, and the cached manifest for {name}@{env} cannot be used: {exc}"
            ) from None
        log.warning("llmreg: %s; serving the cached %s@%s (version %s, %s) resolved %.0fs ago",
                    why, name, env, record.version, short(record.digest), age)
        return ResolvedBundle(body, name=name, version=record.version,
                              env=record.canonical_env, digest=record.digest, cache_age=age)

    def blob_chunks(self, digest: str, offset: int) -> Iterator[bytes]:
        import httpx

        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with self._http.stream("GET", f"/v1/blobs/{digest}", headers=headers) as response:
                if response.status_code >= 400:
                    raise self._error(response.status_code, response.read())
                yield from response.iter_bytes(1024 * 1024)
        except httpx.TransportError as exc:
            raise RegistryUnavailableError(f"download of {digest} from {self.url} broke off "
                                           f"({exc}); run pull again to resume") from None


    # -- blobs -----------------------------------------------------------------------

    def put_file(self, path: Path, progress: Progress | None) -> tuple[str, int]:
        hasher = hashlib.sha256()  # the URL names the digest: hash first, then stream
        with path.open("rb") as fh:
            while chunk := fh.read(1024 * 1024):
                hasher.update(chunk)
        digest, total = f"sha256:{hasher.hexdigest()}", path.stat().st_size

        def body() -> Iterator[bytes]:
            done = 0
            with path.open("rb") as fh:
                while chunk := fh.read(1024 * 1024):
                    done += len(chunk)
                    if progress is not None:
                        progress(path.name, done, total)
                    yield chunk

        self._call("PUT", f"/v1/blobs/{digest}", content=body(),
                   headers={"Content-Length": str(total)})
        return digest, total

    def put_bytes(self, data: bytes) -> str:
        digest = digest_bytes(data)
        self._call("PUT", f"/v1/blobs/{digest}", content=data)
        return digest

    # -- reads -----------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        from llmreg.policy import Policy

        if self._policy is None:
            self._policy = Policy.model_validate(self._json("GET", "/v1/policy")["policy"])
        return self._policy

    def actor(self) -> Actor:
        from llmreg.types import Actor

        data = self._json("GET", "/v1/whoami")
        return Actor(data["subject"], frozenset(data["roles"]))

    def get(self, ref: str) -> Bundle:
        from llmreg.bundle import Bundle
        from llmreg.types import VersionInfo

        data = self._json("GET", f"/v1/bundles/{quote_path(ref)}")
        info = VersionInfo.model_validate(data["version"])
        if digest_bytes(canonical_json(data["manifest"])) != info.digest:
            raise IntegrityError(f"the server's manifest for {ref} does not hash to "
                                 f"{info.digest}; refusing it")
        return Bundle.from_dict(data["manifest"], allow_floating_model_ids=True).with_info(info)

    def info(self, ref: str) -> VersionInfo:
        from llmreg.types import VersionInfo

        return VersionInfo.model_validate(self._json("GET", f"/v1/refs/{quote_path(ref)}"))

    def history(self, name: str) -> list[VersionInfo]:
        from llmreg.types import VersionInfo

        return [VersionInfo.model_validate(v)
                for v in self._pages(f"/v1/names/{quote_path(name)}/versions")]

    def list_names(self) -> list[NameSummary]:
        from llmreg.types import NameSummary

        return [NameSummary.model_validate(n) for n in self._pages("/v1/names")]

    def changelog(self, name: str) -> list[ChangelogEntry]:
        from llmreg.types import ChangelogEntry

        return [ChangelogEntry.model_validate(e)
                for e in self._json("GET", f"/v1/names/{quote_path(name)}/changelog")]

    def stored_diff(self, info: VersionInfo) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._json(
            "GET", f"/v1/stored-diffs/{quote_path(info.ref)}")
        return result

    def diff_refs(self, old: str, new: str) -> BundleDiff:
        from llmreg.diff import BundleDiff

        data = self._json("GET", "/v1/diff", params={"old": old, "new": new})
        data["schema_"] = data.pop("schema")
        return BundleDiff.model_validate(data)

    def status(self, name: str | None, env: str | None) -> list[SlotStatus]:
        from llmreg.types import SlotStatus

        params = {k: v for k, v in (("name", name), ("env", env)) if v is not None}
        return [SlotStatus.model_validate(s)
                for s in self._json("GET", "/v1/status", params=params)]

    def slot_history(self, name: str, env: str) -> list[SlotEventInfo]:
        from llmreg.types import SlotEventInfo

        path = f"/v1/names/{quote_path(name)}/slots/{quote_path(env)}/history"
        return [SlotEventInfo.model_validate(e) for e in self._json("GET", path)]

    def evidence(self, ref: str) -> list[EvidenceInfo]:
        from llmreg.types import EvidenceInfo

        return [EvidenceInfo.model_validate(e)
                for e in self._json("GET", f"/v1/evidence/{quote_path(ref)}")]

    def check_gates(self, ref: str, env: str) -> GateReport:
        from llmreg.types import GateReport

        return GateReport.model_validate(self._json("GET", "/v1/gates",
                                                    params={"ref": ref, "to": env}))

    def audit(self, name: str | None, limit: int | None) -> list[AuditInfo]:
        from llmreg.types import AuditInfo

        params = {k: v for k, v in (("name", name), ("limit", limit)) if v is not None}
        return [AuditInfo.model_validate(e) for e in self._json("GET", "/v1/audit",
                                                                params=params)]

    def verify_audit(self) -> int:
        return int(self._json("GET", "/v1/audit/verify")["verified"])

    # -- writes ----------------------------------------------------------------------

    def register(self, bundle: Bundle, name: str, message: str,
                 provenance: dict[str, Any], *, author: str) -> Registration:
        """The server records the token's subject as the author, not ``author``."""
        from llmreg.types import Registration

        return Registration.model_validate(self._json(
            "POST", f"/v1/names/{quote_path(name)}/versions",
            json={"manifest": bundle.canonical_dict(), "message": message,
                  "provenance": provenance}))

    def attach_evidence(self, ref: str, *, type: str, suite: str, metrics: dict[str, Any],
                        report_digest: str | None, links: list[str],
                        passed: bool | None) -> EvidenceInfo:
        from llmreg.types import EvidenceInfo

        return EvidenceInfo.model_validate(self._json("POST", "/v1/evidence", json={
            "ref": ref, "type": type, "suite": suite, "metrics": metrics, "links": links,
            "passed": passed, "report_digest": report_digest}))

    def approve(self, ref: str, env: str, comment: str) -> ApprovalInfo:
        from llmreg.types import ApprovalInfo

        data = self._json("POST", "/v1/approvals",
                          json={"ref": ref, "env": env, "comment": comment})
        data.pop("created", None)
        return ApprovalInfo.model_validate(data)

    def promote(self, ref: str, env: str, reason: str,
                expect_current: str | None) -> SlotEventInfo:
        from llmreg.types import SlotEventInfo

        data = self._json("POST", "/v1/promotions", json={
            "ref": ref, "env": env, "reason": reason, "expect_current": expect_current})
        return SlotEventInfo.model_validate(data["event"])

    def rollback(self, name: str, env: str, reason: str) -> SlotEventInfo:
        from llmreg.types import SlotEventInfo

        return SlotEventInfo.model_validate(self._json(
            "POST", "/v1/rollbacks", json={"name": name, "env": env, "reason": reason}))

    def retire(self, ref: str, status: str, reason: str) -> VersionInfo:
        from llmreg.policy import ARCHIVED
        from llmreg.types import VersionInfo

        path = "/v1/archives" if status == ARCHIVED else "/v1/deprecations"
        return VersionInfo.model_validate(self._json(
            "POST", path, json={"ref": ref, "reason": reason}))

    def send_heartbeats(self, beats: list[dict[str, Any]]) -> None:
        self._call("POST", "/v1/heartbeats", json={"beats": beats})

    # -- integrity and tokens --------------------------------------------------------

    def verify(self, ref: str) -> list[Problem]:
        from llmreg.types import Problem

        return [Problem.model_validate(p)
                for p in self._json("GET", f"/v1/verify/{quote_path(ref)}")]

    def fsck(self) -> tuple[int, list[Problem]]:
        from llmreg.types import Problem

        data = self._json("GET", "/v1/fsck")
        return int(data["blobs"]), [Problem.model_validate(p) for p in data["problems"]]

    def gc(self, dry_run: bool, grace: float) -> list[str]:
        result: list[str] = self._json("POST", "/v1/gc",
                                       json={"dry_run": dry_run, "grace": grace})["blobs"]
        return result

    def create_token(self, subject: str, role: str) -> tuple[str, TokenInfo]:
        from llmreg.types import TokenInfo

        data = self._json("POST", "/v1/tokens", json={"subject": subject, "role": role})
        token = data.pop("token")
        return token, TokenInfo.model_validate(data)

    def list_tokens(self) -> list[TokenInfo]:
        from llmreg.types import TokenInfo

        return [TokenInfo.model_validate(t) for t in self._json("GET", "/v1/tokens")]

    def revoke_token(self, token_id: str) -> TokenInfo:
        from llmreg.types import TokenInfo

        return TokenInfo.model_validate(
            self._json("DELETE", f"/v1/tokens/{quote_path(token_id)}"))
