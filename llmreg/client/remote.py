"""The HTTP backend: a client's calls go to ``llmreg serve``.

``resolve(name, env=...)`` costs one request: a conditional ``GET`` of the slot with the
digest it already holds as ``If-None-Match``. Manifests are cached on disk by digest
(``LLMREG_CACHE``, default the user cache folder) and verified on every read; the last
answer for each (server, name, environment) is kept too. When the server cannot be
reached or answers 5xx, ``resolve`` serves that last answer from the cache and logs a
warning saying how stale it is — unless ``strict=True`` or it is older than
``max_stale`` seconds, when it raises :class:`~llmreg.errors.RegistryUnavailableError`.
An answer that does not arrive whole within ``LLMREG_READ_DEADLINE`` seconds, or is
longer than a manifest can be, counts as the server being down: reading stops there, and
the same rule applies (:mod:`llmreg.client.limits`). Every other request reads its answer
with a cap too (:data:`~llmreg.client.limits.MAX_ANSWER`) and the same deadline, checked
at each chunk and cutting httpx's own timeouts to what is left.

The resolve path is an application's startup path: it must not pay for pydantic or
httpx. So this module imports them lazily, inside the methods that need them (every
method but ``resolve_slot``), and ``resolve_slot`` uses the standard library's HTTP
client unless an ``httpx.Client`` was injected. docs/benchmarks.md has the figures.

Example:
    >>> reg = llmreg.connect("http://127.0.0.1:8700", token="llmreg_…")  # doctest: +SKIP
    >>> bundle = reg.resolve("support-rag", env="production")           # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmreg import errors
from llmreg.bundle.digest import canonical_json, digest_bytes, short
from llmreg.bundle.names import check_name
from llmreg.bundle.resolved import ResolvedBundle
from llmreg.client.backend import Backend, Progress
from llmreg.client.cache import ClientCache, SlotRecord, serve_cached
from llmreg.client.core import Client
from llmreg.client.limits import (
    MAX_ANSWER,
    MAX_MANIFEST,
    Deadline,
    DeadlineError,
    TooLongError,
    read_capped,
)
from llmreg.client.transport import CODES, StdlibHTTP, default_cache, quote_path
from llmreg.errors import IntegrityError, LLMRegError, RegistryUnavailableError, ServerError
from llmreg.settings import Settings

if TYPE_CHECKING:
    import httpx

    from llmreg.bundle.schema import Bundle
    from llmreg.policy import Policy
    from llmreg.types import Actor

log = logging.getLogger("llmreg")


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
        self._cache = ClientCache(cache or self.settings.cache or default_cache(), self._base,
                                  self.settings.cache_key)
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

    def _call(self, method: str, path: str, **kwargs: Any) -> bytes:
        """One request; its answer's body, read with a cap and a total deadline."""
        try:
            status, _, content = self._bounded(method, path, MAX_ANSWER, **kwargs)
        except (ConnectionError, TooLongError) as exc:
            raise RegistryUnavailableError(f"cannot read the registry at {self.url}: {exc}"
                                           ) from None
        if status >= 400:
            raise self._error(status, content)
        return content

    def _bounded(self, method: str, path: str, limit: int, **kwargs: Any
                 ) -> tuple[int, dict[str, str], bytes]:
        """A request through httpx, its answer read in chunks: :class:`TooLongError` past
        ``limit`` bytes, :class:`ConnectionError` for a transport failure or the deadline.
        httpx's timeouts are cut to the time left, and the deadline is checked per chunk.
        A streamed upload (``put_file``: weights may take hours) gets its deadline once
        its body is sent, for the answer alone."""
        import httpx

        seconds = self.settings.read_deadline
        uploading = not isinstance(kwargs.get("content", b""), bytes)
        deadline = Deadline(seconds)
        if not uploading:
            given = self._http.timeout
            # A tuple, not httpx.Timeout: an injected client may be another httpx build.
            kwargs["timeout"] = tuple(min(getattr(given, phase) or seconds, seconds)
                                      for phase in ("connect", "read", "write", "pool"))
        try:
            with self._http.stream(method, path, **kwargs) as response:
                if uploading:
                    deadline = Deadline(seconds)
                content = read_capped(response.iter_bytes(), limit, deadline,
                                      f"the answer to {method} {path}")
        except (httpx.TransportError, DeadlineError) as exc:
            raise ConnectionError(str(exc) or type(exc).__name__) from None
        return (response.status_code,
                {k.lower(): v for k, v in response.headers.items()}, content)

    def _get_raw(self, path: str, headers: dict[str, str]
                 ) -> tuple[int, dict[str, str], bytes]:
        """GET for the resolve path: an injected httpx client, else the standard library.
        Transport failures and the deadline are raised as :class:`ConnectionError`, an
        answer longer than a manifest can be as :class:`TooLongError`."""
        if not self._injected:
            try:
                return self._stdlib.get(path, headers, limit=MAX_MANIFEST,
                                        deadline=Deadline(self.settings.read_deadline))
            except (OSError, http.client.HTTPException) as exc:
                raise ConnectionError(str(exc)) from None
        return self._bounded("GET", path, MAX_MANIFEST, headers=headers)

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
        except TooLongError as exc:
            return self._fallback(name, env, record, f"{self.url} sent {exc} (the most a "
                                  "manifest can be); reading stopped there", strict, max_stale)
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
        return serve_cached(self._cache, name, env, record, RegistryUnavailableError(why),
                            strict=strict, max_stale=max_stale)

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

    # -- every operation of the table: one request, the answer validated ---------------

    def call(self, operation: str, /, **args: Any) -> Any:
        """One request as the operation declares it: path parameters into the URL, query
        parameters into the query string, body fields as JSON; the answer validated as
        the declared response. A batch declared with ``batch`` goes in requests of at
        most its size, each one transaction on the server."""
        from llmreg.contract.operations import operation as declared

        op = declared(operation)
        if not op.http:
            raise errors.ConfigError(f"{op.beside} (this client speaks to {self.url})")
        if op.batch is not None:
            field, size = op.batch
            items = list(args[field])
            if len(items) > size:
                answers = [self.call(operation, **{**args, field: items[i:i + size]})
                           for i in range(0, len(items), size)]
                return type(answers[0])(**{field: [x for a in answers
                                                   for x in getattr(a, field)]})
        path = op.path.format(**{p: quote_path(str(args[p])) for p in op.path_params})
        kwargs: dict[str, Any] = {}
        if op.query:
            kwargs["params"] = {k: args[k] for k in op.query if args.get(k) is not None}
        if op.body is not None:
            body = {k: args[k] for k in op.body_fields if k in args}
            kwargs["content"] = json.dumps(body, default=_jsonable).encode()
            kwargs["headers"] = {"Content-Type": "application/json"}
        return _adapter(operation).validate_json(self._call(op.method, path, **kwargs))

    @property
    def policy(self) -> Policy:
        from llmreg.policy import Policy

        if self._policy is None:
            self._policy = Policy.model_validate(self.call("policy").policy)
        return self._policy

    def actor(self) -> Actor:
        from llmreg.types import Actor

        who = self.call("whoami")
        return Actor(who.subject, frozenset(who.roles), token_id=who.token_id,
                     expires_at=who.expires_at, teams=who.teams)

    def resolve_ref(self, ref: str) -> ResolvedBundle:
        return ResolvedBundle.from_bundle(self.get(ref))

    def get(self, ref: str) -> Bundle:
        from llmreg.bundle.schema import Bundle

        answer = self.call("bundle", ref=ref)
        if digest_bytes(canonical_json(answer.manifest)) != answer.version.digest:
            raise IntegrityError(f"the server's manifest for {ref} does not hash to "
                                 f"{answer.version.digest}; refusing it")
        bundle = Bundle.from_dict(answer.manifest, allow_floating_model_ids=True)
        return bundle.with_info(answer.version)


@functools.cache
def _adapter(operation: str) -> Any:
    """The validator of an operation's declared response (built once per operation)."""
    from pydantic import TypeAdapter

    from llmreg.contract.operations import operation as declared

    return TypeAdapter(declared(operation).response)


def _jsonable(value: Any) -> Any:
    """JSON for what a body may carry: a bundle as its canonical manifest, a model as its
    JSON form, a path as text."""
    if hasattr(value, "canonical_dict"):
        return value.canonical_dict()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
