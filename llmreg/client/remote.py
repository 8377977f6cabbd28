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
from typing import TYPE_CHECKING, Any, TypeVar

from llmreg import errors
from llmreg.bundle.digest import canonical_json, digest_bytes, short
from llmreg.bundle.names import check_name
from llmreg.bundle.resolved import ResolvedBundle
from llmreg.client.backend import Backend, Progress
from llmreg.client.cache import ClientCache, SlotRecord
from llmreg.client.core import Client
from llmreg.client.transport import CODES, StdlibHTTP, default_cache, quote_path
from llmreg.errors import IntegrityError, LLMRegError, RegistryUnavailableError, ServerError
from llmreg.settings import Settings

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel

    from llmreg.bundle.diff import BundleDiff
    from llmreg.bundle.schema import Bundle
    from llmreg.policy import Policy
    from llmreg.types import (
        Actor,
        AlertInfo,
        ApprovalInfo,
        AuditInfo,
        ChangelogEntry,
        DeliveryInfo,
        DeprecationReport,
        DriftItem,
        EnvironmentInfo,
        EvidenceInfo,
        GateReport,
        ImportReport,
        JobRunInfo,
        NameSummary,
        OwnerInfo,
        Problem,
        Registration,
        ServedInfo,
        SlotEventInfo,
        SlotStatus,
        TokenInfo,
        VersionInfo,
        WebhookInfo,
    )

log = logging.getLogger("llmreg")
M = TypeVar("M", bound="BaseModel")


class RemoteClient(Client):
    """A :class:`~llmreg.client.core.Client` over a registry server. :func:`llmreg.connect`
    makes one from a URL; this constructor is for tests and custom transports.

    Example:
        >>> reg = RemoteClient("http://127.0.0.1:8700", token="llmreg_…")
        >>> reg.url, reg.home
        ('http://127.0.0.1:8700', None)
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
                log.warning("the cached manifest %s was corrupt; fetching it again",
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
        log.warning("%s; serving the cached %s@%s (version %s, %s) resolved %.0fs ago",
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

    # -- reads: every answer is parsed as the model the server declares ------------------

    def _as(self, model: type[M], method: str, path: str, body: BaseModel | None = None,
            **kwargs: Any) -> M:
        """One request; the answer validated as ``model`` (a :mod:`llmreg.contract.models`
        shape). ``body`` is sent as JSON unvalidated: the server is the one judge."""
        if body is not None:
            kwargs["json"] = body.model_dump(mode="json")
        return model.model_validate(self._json(method, path, **kwargs))

    def _list(self, model: type[M], path: str, **kwargs: Any) -> list[M]:
        return [model.model_validate(item) for item in self._json("GET", path, **kwargs)]

    @property
    def policy(self) -> Policy:
        from llmreg.contract.models import PolicyResponse
        from llmreg.policy import Policy

        if self._policy is None:
            answer = self._as(PolicyResponse, "GET", "/v1/policy")
            self._policy = Policy.model_validate(answer.policy)
        return self._policy

    def actor(self) -> Actor:
        from llmreg.contract.models import WhoAmI
        from llmreg.types import Actor

        who = self._as(WhoAmI, "GET", "/v1/whoami")
        return Actor(who.subject, frozenset(who.roles))

    def resolve_ref(self, ref: str) -> ResolvedBundle:
        return ResolvedBundle.from_bundle(self.get(ref))

    def get(self, ref: str) -> Bundle:
        from llmreg.bundle.schema import Bundle
        from llmreg.contract.models import BundleResponse

        answer = self._as(BundleResponse, "GET", f"/v1/bundles/{quote_path(ref)}")
        if digest_bytes(canonical_json(answer.manifest)) != answer.version.digest:
            raise IntegrityError(f"the server's manifest for {ref} does not hash to "
                                 f"{answer.version.digest}; refusing it")
        bundle = Bundle.from_dict(answer.manifest, allow_floating_model_ids=True)
        return bundle.with_info(answer.version)

    def info(self, ref: str) -> VersionInfo:
        from llmreg.types import VersionInfo

        return self._as(VersionInfo, "GET", f"/v1/refs/{quote_path(ref)}")

    def _pages(self, model: type[M], path: str) -> list[M]:
        from llmreg.types import Page

        out: list[M] = []
        offset: int | None = 0
        while offset is not None:
            page = self._as(Page[model], "GET", path,  # type: ignore[valid-type]
                            params={"offset": offset, "limit": 1000})
            out += page.items
            offset = page.next
        return out

    def history(self, name: str) -> list[VersionInfo]:
        from llmreg.types import VersionInfo

        return self._pages(VersionInfo, f"/v1/names/{quote_path(name)}/versions")

    def list_names(self) -> list[NameSummary]:
        from llmreg.types import NameSummary

        return self._pages(NameSummary, "/v1/names")

    def changelog(self, name: str) -> list[ChangelogEntry]:
        from llmreg.types import ChangelogEntry

        return self._list(ChangelogEntry, f"/v1/names/{quote_path(name)}/changelog")

    def stored_diff(self, info: VersionInfo) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._json(
            "GET", f"/v1/stored-diffs/{quote_path(info.ref)}")
        return result

    def diff_refs(self, old: str, new: str) -> BundleDiff:
        from llmreg.bundle.diff import BundleDiff

        return self._as(BundleDiff, "GET", "/v1/diff", params={"old": old, "new": new})

    def status(self, name: str | None, env: str | None) -> list[SlotStatus]:
        from llmreg.types import SlotStatus

        params = {k: v for k, v in (("name", name), ("env", env)) if v is not None}
        return self._list(SlotStatus, "/v1/status", params=params)

    def slot_history(self, name: str, env: str) -> list[SlotEventInfo]:
        from llmreg.types import SlotEventInfo

        return self._list(SlotEventInfo,
                          f"/v1/names/{quote_path(name)}/slots/{quote_path(env)}/history")

    def evidence(self, ref: str) -> list[EvidenceInfo]:
        from llmreg.types import EvidenceInfo

        return self._list(EvidenceInfo, f"/v1/evidence/{quote_path(ref)}")

    def check_gates(self, ref: str, env: str) -> GateReport:
        from llmreg.types import GateReport

        return self._as(GateReport, "GET", "/v1/gates", params={"ref": ref, "to": env})

    def audit(self, name: str | None, limit: int | None,
              env: str | None = None) -> list[AuditInfo]:
        from llmreg.types import AuditInfo

        params = {k: v for k, v in (("name", name), ("limit", limit), ("env", env))
                  if v is not None}
        return self._list(AuditInfo, "/v1/audit", params=params)

    def verify_audit(self, head: str | None) -> int:
        from llmreg.contract.models import AuditVerifyResult

        params = {"head": head} if head is not None else {}
        return self._as(AuditVerifyResult, "GET", "/v1/audit/verify", params=params).verified

    # -- writes: bodies are the contract's request models ------------------------------

    def register(self, bundle: Bundle, name: str, message: str,
                 provenance: dict[str, Any], *, author: str) -> Registration:
        """The server records the token's subject as the author, not ``author``."""
        from llmreg.contract.models import RegisterBody
        from llmreg.types import Registration

        body = RegisterBody.model_construct(manifest=bundle.canonical_dict(), message=message,
                                            provenance=provenance)
        return self._as(Registration, "POST", f"/v1/names/{quote_path(name)}/versions", body)

    def register_many(self, bundles: list[Bundle], name: str, message: str,
                      provenance: list[dict[str, Any]], *,
                      author: str) -> list[Registration]:
        """Sent in requests of at most :data:`~llmreg.contract.models.MAX_BATCH_HTTP` bundles,
        each one transaction on the server."""
        from llmreg.contract.models import (
            MAX_BATCH_HTTP,
            RegisterItem,
            RegisterManyBody,
            RegistrationBatch,
        )

        out: list[Registration] = []
        for start in range(0, len(bundles), MAX_BATCH_HTTP):
            items = [RegisterItem.model_construct(manifest=b.canonical_dict(), provenance=p)
                     for b, p in zip(bundles[start:start + MAX_BATCH_HTTP],
                                     provenance[start:start + MAX_BATCH_HTTP], strict=True)]
            body = RegisterManyBody.model_construct(items=items, message=message)
            out += self._as(RegistrationBatch, "POST",
                            f"/v1/names/{quote_path(name)}/version-batches", body).items
        return out

    def attach_evidence(self, ref: str, *, type: str, suite: str, metrics: dict[str, Any],
                        report_digest: str | None, links: list[str],
                        passed: bool | None) -> EvidenceInfo:
        from llmreg.contract.models import EvidenceBody
        from llmreg.types import EvidenceInfo

        body = EvidenceBody.model_construct(ref=ref, type=type,  # type: ignore[arg-type]
                                            suite=suite, metrics=metrics,
                                            links=links, passed=passed,
                                            report_digest=report_digest)
        return self._as(EvidenceInfo, "POST", "/v1/evidence", body)

    def approve(self, ref: str, env: str, comment: str) -> ApprovalInfo:
        from llmreg.contract.models import ApprovalBody, ApprovalResult

        body = ApprovalBody.model_construct(ref=ref, env=env, comment=comment)
        return self._as(ApprovalResult, "POST", "/v1/approvals", body)

    def promote(self, ref: str, env: str, reason: str,
                expect_current: str | None) -> SlotEventInfo:
        from llmreg.contract.models import PromotionBody, PromotionResult

        body = PromotionBody.model_construct(ref=ref, env=env, reason=reason,
                                             expect_current=expect_current)
        return self._as(PromotionResult, "POST", "/v1/promotions", body).event

    def rollback(self, name: str, env: str, reason: str) -> SlotEventInfo:
        from llmreg.contract.models import RollbackBody
        from llmreg.types import SlotEventInfo

        body = RollbackBody.model_construct(name=name, env=env, reason=reason)
        return self._as(SlotEventInfo, "POST", "/v1/rollbacks", body)

    def retire(self, ref: str, status: str, reason: str) -> VersionInfo:
        from llmreg.contract.models import RetireBody
        from llmreg.policy import ARCHIVED
        from llmreg.types import VersionInfo

        path = "/v1/archives" if status == ARCHIVED else "/v1/deprecations"
        return self._as(VersionInfo, "POST", path,
                        RetireBody.model_construct(ref=ref, reason=reason))

    def send_heartbeats(self, beats: list[dict[str, Any]]) -> None:
        self._call("POST", "/v1/heartbeats", json={"beats": beats})

    # -- integrity and tokens --------------------------------------------------------

    def verify(self, ref: str) -> list[Problem]:
        from llmreg.types import Problem

        return self._list(Problem, f"/v1/verify/{quote_path(ref)}")

    def fsck(self) -> tuple[int, list[Problem]]:
        from llmreg.contract.models import FsckResult

        result = self._as(FsckResult, "GET", "/v1/fsck")
        return result.blobs, result.problems

    def gc(self, dry_run: bool, grace: float) -> list[str]:
        from llmreg.contract.models import GcBody, GcResult

        body = GcBody.model_construct(dry_run=dry_run, grace=grace)
        return self._as(GcResult, "POST", "/v1/gc", body).blobs

    def create_token(self, subject: str, role: str) -> tuple[str, TokenInfo]:
        from llmreg.contract.models import NewToken, TokenBody
        from llmreg.types import TokenInfo

        new = self._as(NewToken, "POST", "/v1/tokens",
                       TokenBody.model_construct(subject=subject,
                                                 role=role))  # type: ignore[arg-type]
        return new.token, TokenInfo.model_validate(new.model_dump(exclude={"token"}))

    def list_tokens(self) -> list[TokenInfo]:
        from llmreg.types import TokenInfo

        return self._list(TokenInfo, "/v1/tokens")

    def revoke_token(self, token_id: str) -> TokenInfo:
        from llmreg.types import TokenInfo

        return self._as(TokenInfo, "DELETE", f"/v1/tokens/{quote_path(token_id)}")

    # -- owners, hygiene, jobs ---------------------------------------------------------

    def set_owner(self, name: str, team: str, contacts: list[str]) -> OwnerInfo:
        from llmreg.contract.models import OwnerBody
        from llmreg.types import OwnerInfo

        return self._as(OwnerInfo, "POST", f"/v1/names/{quote_path(name)}/owner",
                        OwnerBody.model_construct(team=team, contacts=contacts))

    def owner(self, name: str) -> OwnerInfo | None:
        from llmreg.contract.models import OwnerResponse

        return self._as(OwnerResponse, "GET", f"/v1/names/{quote_path(name)}/owner").owner

    def owners(self) -> list[OwnerInfo]:
        from llmreg.types import OwnerInfo

        return self._list(OwnerInfo, "/v1/owners")

    def deprecation(self, apply: bool) -> DeprecationReport:
        from llmreg.types import DeprecationReport

        if apply:
            return self._as(DeprecationReport, "POST", "/v1/deprecation/run")
        return self._as(DeprecationReport, "GET", "/v1/deprecation/plan")

    def served(self, name: str | None, env: str | None) -> list[ServedInfo]:
        from llmreg.types import ServedInfo

        params = {k: v for k, v in (("name", name), ("env", env)) if v is not None}
        return self._list(ServedInfo, "/v1/served", params=params)

    def alerts(self, include_closed: bool) -> list[AlertInfo]:
        from llmreg.types import AlertInfo

        return self._list(AlertInfo, "/v1/alerts",
                          params={"all": "true"} if include_closed else {})

    def ack_alert(self, alert_id: int, reason: str) -> AlertInfo:
        from llmreg.contract.models import AckBody
        from llmreg.types import AlertInfo

        return self._as(AlertInfo, "POST", f"/v1/alerts/{alert_id}/ack",
                        AckBody.model_construct(reason=reason))

    def run_jobs(self, only: list[str] | None) -> list[JobRunInfo]:
        from llmreg.types import JobRunInfo

        return [JobRunInfo.model_validate(r) for r in
                self._json("POST", "/v1/jobs/run", json={"jobs": only})]

    def environments(self) -> list[EnvironmentInfo]:
        from llmreg.types import EnvironmentInfo

        return self._list(EnvironmentInfo, "/v1/environments")

    def drift(self, a: str, b: str) -> list[DriftItem]:
        from llmreg.types import DriftItem

        return self._list(DriftItem, "/v1/drift", params={"a": a, "b": b})
    # -- webhooks --------------------------------------------------------------------

    def add_webhook(self, url: str, events: list[str], format: str) -> WebhookInfo:
        from llmreg.contract.models import NewWebhook, WebhookBody
        from llmreg.types import WebhookInfo

        new = self._as(NewWebhook, "POST", "/v1/webhooks",
                       WebhookBody.model_construct(url=url, events=events,
                                                   format=format))
        return WebhookInfo.model_validate(new.model_dump())

    def list_webhooks(self) -> list[WebhookInfo]:
        from llmreg.types import WebhookInfo

        return self._list(WebhookInfo, "/v1/webhooks")

    def remove_webhook(self, webhook_id: int) -> WebhookInfo:
        from llmreg.types import WebhookInfo

        return self._as(WebhookInfo, "DELETE", f"/v1/webhooks/{int(webhook_id)}")

    def test_webhook(self, webhook_id: int) -> DeliveryInfo:
        from llmreg.types import DeliveryInfo

        return self._as(DeliveryInfo, "POST", f"/v1/webhooks/{int(webhook_id)}/test")

    def webhook_deliveries(self, failed: bool, limit: int) -> list[DeliveryInfo]:
        from llmreg.types import DeliveryInfo

        return self._list(DeliveryInfo, "/v1/webhook-deliveries",
                          params={"failed": str(bool(failed)).lower(), "limit": int(limit)})

    def redeliver(self, delivery_id: int) -> DeliveryInfo:
        from llmreg.types import DeliveryInfo

        return self._as(DeliveryInfo, "POST",
                        f"/v1/webhook-deliveries/{int(delivery_id)}/redeliver")
    def publish(self, dest: str, keys: Path, timestamp_expiry: float | None
                ) -> dict[str, Any]:
        raise errors.ConfigError(
            f"publishing runs beside the registry, not through {self.url}: run `llmreg "
            "publish` on the registry folder, or start the server with `llmreg serve "
            "--publish DEST`")
    def import_mlflow(self, tracking_uri: str, *, map_aliases: dict[str, str],
                      model_map: dict[str, str], default_model: str | None,
                      dry_run: bool) -> ImportReport:
        from llmreg.errors import ConfigError

        raise ConfigError(
            f"an import writes to the registry itself, not through the server at {self.url}; "
            "run it where the registry is: --registry FOLDER (or LLMREG_HOME, "
            "LLMREG_DATABASE_URL and LLMREG_STORE as the server has them)")
