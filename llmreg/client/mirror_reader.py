"""The mirror backend: resolve from a signed static mirror, with no registry server.

``llmreg.connect(url, trusted_root=PATH)`` (or ``LLMREG_URL`` + ``LLMREG_TRUSTED_ROOT``)
reads a mirror written by ``llmreg publish`` — a repository of The Update Framework —
from ``https://…`` (any web server, CDN or public bucket), ``file://…`` or
``s3://bucket/prefix`` (boto3, with the standard AWS configuration). Each ``resolve``:

1. refreshes the TUF metadata with python-tuf's client (root → timestamp → snapshot
   → targets), verified against the pinned root and the copies kept from the last
   refresh (so a rollback is seen), and fetches only what changed;
2. reads the slot's pointer (``pointers/<name>/<env>.json``), verified against its
   signed length and hash;
3. reads the manifest the pointer names from the disk cache, or from the mirror
   (``blobs/sha256/<hex>``, verified by TUF and against the digest), and keeps it.

Every file is read in chunks, stopped as soon as it is longer than the length its signed
metadata lists (or, where TUF lists none, the maximum for its kind), and the whole
resolve ends within ``LLMREG_READ_DEADLINE`` seconds (:mod:`llmreg.client.limits`).

When the mirror cannot be reached or answers too slowly (an outage), or what it serves
does not verify (tampered, longer than signed, replayed, frozen, signed with an
untrusted key, mixed from two publishes: an attack), ``resolve``
serves the last verified answer from the same disk cache as the HTTP client, with a
warning naming what failed — or raises with ``strict=True`` (or past ``max_stale``):
:class:`~llmreg.errors.MirrorVerificationError` for an attack,
:class:`~llmreg.errors.RegistryUnavailableError` for an outage. A damaged trusted root on
this machine (the pinned file, or the newest root kept in the cache) is neither: it is a
:class:`~llmreg.errors.ConfigError` naming the file and the fix, and nothing is served.
A mirror is read-only: everything but ``resolve`` and ``get`` raises
:class:`~llmreg.errors.ReadOnlyError`.

python-tuf is imported on the first resolve, not by ``import llmreg``; docs/benchmarks.md
has its import cost.

Example:
    >>> reg = llmreg.connect("https://mirror.example/llmreg",          # doctest: +SKIP
    ...                      trusted_root="root.json")
    >>> reg.resolve("support-rag", env="production").version          # doctest: +SKIP
    3
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import json
import logging
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from llmreg.bundle.digest import digest_bytes, hex_of, short
from llmreg.bundle.names import check_name, parse_ref
from llmreg.bundle.resolved import ResolvedBundle
from llmreg.client.backend import Backend, Progress
from llmreg.client.cache import ClientCache, SlotRecord, serve_cached
from llmreg.client.core import Client
from llmreg.client.limits import (
    CHUNK,
    MAX_ROOT,
    MAX_SNAPSHOT,
    MAX_TARGETS,
    MAX_TIMESTAMP,
    Deadline,
    TooLongError,
    read_capped,
)
from llmreg.client.transport import StdlibHTTP, default_cache
from llmreg.errors import (
    ConfigError,
    EmptySlotError,
    IntegrityError,
    MirrorVerificationError,
    ReadOnlyError,
    RefNotFoundError,
    RegistryUnavailableError,
)
from llmreg.settings import Settings

if TYPE_CHECKING:
    from tuf.ngclient import Updater

    from llmreg.bundle.schema import Bundle
    from llmreg.policy import Policy
    from llmreg.types import (
        Actor,
    )

log = logging.getLogger("llmreg")

# securesystemslib registers every signer it knows when imported, and its cloud-KMS
# signers import their SDKs (boto3 alone costs ~0.5 s). A client only verifies, so
# these are hidden while tuf is first imported (unless the application loaded them).
_SIGNER_SDKS = ("boto3", "google.cloud", "azure", "hvac", "PyKCS11", "sigstore")


def _import_tuf() -> Any:
    if "tuf.ngclient" in sys.modules:
        return sys.modules["tuf.ngclient"]
    hidden = [m for m in _SIGNER_SDKS if m not in sys.modules]
    for module in hidden:
        sys.modules[module] = None  # type: ignore[assignment]  # "not installed"
    try:
        import tuf.ngclient
    except ImportError:  # pragma: no cover - depends on the install
        from llmreg.errors import MissingDependencyError

        raise MissingDependencyError("a signed mirror needs python-tuf: pip install "
                                     "'llmreg[mirror]'") from None
    finally:
        for module in hidden:
            if sys.modules.get(module, 0) is None:
                del sys.modules[module]
    return tuf.ngclient


class MirrorClient(Client):
    """A :class:`~llmreg.client.core.Client` over a signed static mirror (read-only).

    Example:
        >>> reg = MirrorClient("https://mirror.example/llmreg", trusted_root=Path("root.json"))
        ... # doctest: +SKIP
    """

    def __init__(self, url: str, *, trusted_root: Path, settings: Settings | None = None,
                 cache: Path | None = None) -> None:
        super().__init__(MirrorBackend(url, trusted_root=trusted_root, settings=settings,
                                       cache=cache))


class MirrorBackend(Backend):
    """``resolve_slot`` and ``get`` from the mirror; every other primitive refuses."""

    def __init__(self, url: str, *, trusted_root: Path, settings: Settings | None = None,
                 cache: Path | None = None) -> None:
        self.url = self._base = url.rstrip("/")
        self.settings = settings or Settings.from_env()
        self._trusted_root = Path(trusted_root)
        try:
            self._root = self._trusted_root.read_bytes()
        except OSError as exc:
            raise ConfigError(f"trusted_root={str(trusted_root)!r} cannot be read "
                              f"({exc.strerror}); give the mirror's root.json "
                              "(docs/mirror.md)") from None
        root = cache or self.settings.cache or default_cache()
        self._cache = ClientCache(root, f"mirror:{self.url}", self.settings.cache_key)
        # TUF's trusted metadata for this (mirror, pinned root): a rollback below what
        # this machine has seen is refused.
        tag = hashlib.sha256(self.url.encode() + b"\0" + self._root).hexdigest()[:16]
        self._dir = root / "mirror" / tag
        self._fetcher: Any = None

    def close(self) -> None:
        if self._fetcher is not None:
            self._fetcher.close()

    # -- TUF -----------------------------------------------------------------------

    def _updater(self) -> Updater:
        """A refreshed TUF client (one per resolve: python-tuf refreshes once each)."""
        ngclient = _import_tuf()
        if self._fetcher is None:
            self._fetcher = make_fetcher(self._base, ngclient, self.settings.read_deadline)
        self._fetcher.start()  # one deadline for every file this resolve reads
        meta = self._dir / "metadata"
        meta.mkdir(parents=True, exist_ok=True)
        # The newest root this machine verified, else the pinned one.
        bootstrap = None if (meta / "root.json").exists() else self._root
        config = ngclient.UpdaterConfig(root_max_length=MAX_ROOT,
                                        timestamp_max_length=MAX_TIMESTAMP,
                                        snapshot_max_length=MAX_SNAPSHOT,
                                        targets_max_length=MAX_TARGETS)
        try:
            updater: Updater = ngclient.Updater(
                str(meta), f"{self.url}/metadata/", str(self._dir / "targets"),
                f"{self.url}/targets/", self._fetcher, config, bootstrap=bootstrap)
        except (OSError, _tuf_exceptions().RepositoryError) as exc:
            # Nothing was downloaded yet: this is this machine's root, not the mirror's.
            raise self._damaged_root(bootstrap is None, exc) from None
        updater.refresh()
        return updater

    def _damaged_root(self, kept: bool, exc: Exception) -> ConfigError:
        """The error for a local trusted root that does not load: the newest one kept
        in the cache, or the pinned one (``trusted_root``)."""
        why = f"{type(exc).__name__}: {exc}"
        if kept:
            return ConfigError(
                f"the trusted root kept on this machine, {self._dir / 'metadata' / 'root.json'}"
                f", is damaged ({why}); delete the folder {self._dir} to start again from "
                "the pinned root (docs/mirror.md)")
        return ConfigError(f"the pinned trusted root {str(self._trusted_root)!r} is damaged "
                           f"({why}); give the mirror's root.json again (docs/mirror.md)")

    def _fetch_target(self, updater: Updater, path: str) -> bytes:
        info = updater.get_targetinfo(path)
        if info is None:
            raise LookupError(path)
        local = str(self._dir / "targets" / hashlib.sha256(path.encode()).hexdigest())
        cached = updater.find_cached_target(info, local)
        data = Path(cached or updater.download_target(info, local)).read_bytes()
        return data

    def _load(self, name: str, env: str) -> tuple[dict[str, Any], bytes]:
        """The verified pointer and manifest of (name, env), from the mirror."""
        updater = self._updater()
        try:
            pointer = json.loads(self._fetch_target(updater, f"pointers/{name}/{env}.json"))
        except LookupError:
            raise EmptySlotError(f"the mirror {self.url} has no {name}@{env}: nothing runs "
                                 "there, or it was not published yet (`llmreg publish`)"
                                 ) from None
        if pointer.get("name") != name:
            raise MirrorVerificationError(f"the mirror's pointer for {name}@{env} names "
                                          f"{pointer.get('name')!r}; refusing it")
        digest = str(pointer["digest"])
        body = self._cached(digest)
        if body is None:
            try:
                body = self._fetch_target(updater, f"blobs/sha256/{hex_of(digest)}")
            except LookupError:
                raise MirrorVerificationError(
                    f"the mirror's pointer {name}@{env} names {short(digest)}, which its "
                    "signed metadata does not list; refusing it") from None
            if digest_bytes(body) != digest:
                raise MirrorVerificationError(f"the mirror's manifest {short(digest)} does not "
                                              "hash to its digest; refusing it")
            self._cache.keep(body)
        return pointer, body

    def _cached(self, digest: str) -> bytes | None:
        if not self._cache.has(digest):
            return None
        try:
            return self._cache.read(digest)
        except IntegrityError:
            self._cache.drop(digest)
            return None

    # -- the hot path -----------------------------------------------------------------

    def resolve_slot(self, name: str, env: str, *, strict: bool,
                     max_stale: float | None) -> ResolvedBundle:
        check_name(name)
        record = self._cache.last(name, env)
        _import_tuf()
        exceptions = _tuf_exceptions()
        try:
            pointer, body = self._load(name, env)
        except exceptions.DownloadError as exc:
            return self._fallback(name, env, record, RegistryUnavailableError(
                f"cannot read the mirror {self.url} ({exc})"), strict, max_stale)
        except exceptions.RepositoryError as exc:
            return self._fallback(name, env, record, MirrorVerificationError(
                f"the mirror {self.url} failed verification: {explain(exc)}"), strict,
                max_stale)
        except MirrorVerificationError as exc:
            return self._fallback(name, env, record, exc, strict, max_stale)
        version, canonical_env, digest = int(pointer["version"]), str(pointer["env"]), \
            str(pointer["digest"])
        self._cache.remember(name, env, digest, version, canonical_env)
        return ResolvedBundle(body, name=name, version=version, env=canonical_env,
                              digest=digest)

    def _fallback(self, name: str, env: str, record: SlotRecord | None,
                  error: RegistryUnavailableError | MirrorVerificationError, strict: bool,
                  max_stale: float | None) -> ResolvedBundle:
        return serve_cached(self._cache, name, env, record, error, strict=strict,
                            max_stale=max_stale)

    def resolve_ref(self, ref: str) -> ResolvedBundle:
        return ResolvedBundle.from_bundle(self.get(ref))

    def get(self, ref: str) -> Bundle:
        parsed = parse_ref(ref)
        if parsed.name is None:
            raise ReadOnlyError(f"a mirror finds bundles by name; use 'name@sha256:…', not "
                                f"{ref!r}")
        if parsed.label is not None and parsed.label != "latest":
            return self.resolve_slot(parsed.name, parsed.label, strict=False,
                                     max_stale=None).bundle
        _import_tuf()
        exceptions = _tuf_exceptions()
        try:
            updater = self._updater()
            try:
                index = json.loads(self._fetch_target(updater, f"names/{parsed.name}.json"))
            except LookupError:
                raise RefNotFoundError(f"the mirror {self.url} has no bundle named "
                                       f"{parsed.name!r}") from None
            versions = {int(v): d for v, d in index["versions"].items()}
            if parsed.version is not None:
                number = parsed.version
            elif parsed.digest_prefix is not None:
                hits = [v for v, d in versions.items()
                        if hex_of(d).startswith(parsed.digest_prefix)]
                number = hits[0] if len(hits) == 1 else 0
            else:
                number = max(versions, default=0)
            if number not in versions:
                raise RefNotFoundError(f"the mirror {self.url} has no {ref}; see "
                                       f"`llmreg history {parsed.name}` on the registry")
            digest = versions[number]
            body = self._cached(digest)
            if body is None:
                body = self._fetch_target(updater, f"blobs/sha256/{hex_of(digest)}")
                if digest_bytes(body) != digest:
                    raise MirrorVerificationError(f"the mirror's manifest {short(digest)} "
                                                  "does not hash to its digest")
                self._cache.keep(body)
        except exceptions.DownloadError as exc:
            raise RegistryUnavailableError(f"cannot read the mirror {self.url} ({exc})"
                                           ) from None
        except exceptions.RepositoryError as exc:
            raise MirrorVerificationError(
                f"the mirror {self.url} failed verification: {explain(exc)}") from None
        return ResolvedBundle(body, name=parsed.name, version=number, env=None,
                              digest=digest).bundle

    # -- everything else is the registry's ------------------------------------------

    def _refuse(self, what: str) -> NoReturn:
        raise ReadOnlyError(f"{self.url} is a read-only mirror: {what} needs the registry "
                            "itself (LLMREG_URL=http(s)://… of a server, or LLMREG_HOME)")

    def call(self, operation: str, /, **args: Any) -> Any:
        """A mirror holds manifests and slot pointers, nothing else: every operation of
        the table is refused, named as it is declared, except one declared
        ``on_mirror="drop"`` (heartbeats: served traffic is the registry's to count)."""
        from llmreg.contract.operations import operation as declared

        op = declared(operation)
        if op.on_mirror == "drop":
            log.debug("llmreg: %s dropped: the mirror %s takes none (%s)", operation,
                      self.url, ", ".join(f"{len(v)} {k}" for k, v in args.items()
                                          if isinstance(v, list | tuple)) or "no items")
            return None
        self._refuse(f"{operation} ({op.method} {op.path})")

    @property
    def policy(self) -> Policy:
        self._refuse("the policy")

    def actor(self) -> Actor:
        self._refuse("whoami")

    def put_file(self, path: Path, progress: Progress | None) -> tuple[str, int]:
        self._refuse("uploading a blob")

    def put_bytes(self, data: bytes) -> str:
        self._refuse("uploading a blob")

    def blob_chunks(self, digest: str, offset: int) -> Iterator[bytes]:
        self._refuse("downloading an artifact")


def _tuf_exceptions() -> Any:
    from tuf.api import exceptions

    return exceptions


def explain(exc: Exception) -> str:
    """Name the attack a python-tuf verification error means, with its own message.

    Example:
        >>> from tuf.api import exceptions as x
        >>> explain(x.ExpiredMetadataError("timestamp.json is expired"))
        'frozen metadata: timestamp.json is expired'
    """
    x = _tuf_exceptions()
    kinds = [(oversized_error(), "oversized file (longer than signed or allowed; reading "
                                 "stopped there)"),
             (x.UnsignedMetadataError, "signature not made by a trusted key"),
             (x.BadVersionNumberError, "rollback or mix-and-match (metadata of another "
                                       "version than the one trusted or signed for)"),
             (x.ExpiredMetadataError, "frozen metadata"),
             (x.LengthOrHashMismatchError, "tampered content (length or hash differs from "
                                           "the signed metadata)")]
    for cls, kind in kinds:
        if isinstance(exc, cls):
            return f"{kind}: {exc}"
    return f"metadata that does not verify ({type(exc).__name__}): {exc}"


@functools.cache
def oversized_error() -> type[Exception]:
    """python-tuf's length-or-hash error, for a file longer than its cap: the mirror
    served more than its signed metadata lists (or than any genuine file of its kind),
    so it is refused as tampered content, never taken for an outage.

    Example:
        >>> explain(oversized_error()("timestamp.json is longer than 16384 bytes"))[:14]
        'oversized file'
    """
    class OversizedFileError(_tuf_exceptions().LengthOrHashMismatchError):  # type: ignore[misc]
        pass

    return OversizedFileError


# What llmreg reads at most of a metadata file whose length TUF does not list.
_MAXIMA = {"root": MAX_ROOT, "timestamp": MAX_TIMESTAMP, "snapshot": MAX_SNAPSHOT}


def _cap_said(path: str, limit: int) -> str:
    """What the cap of a mirror's file is: its signed length, or llmreg's maximum for a
    metadata file whose length TUF does not list (docs/mirror.md)."""
    kind = path.rsplit("/", 1)[-1].removesuffix(".json").rpartition(".")[2]
    if path.startswith("/metadata/") and limit == _MAXIMA.get(kind, MAX_TARGETS):
        return f"the most llmreg reads of {kind} metadata"
    return "the length the mirror's signed metadata lists for it"


def _s3_client() -> Any:
    """boto3, configured by the standard AWS settings (``AWS_ENDPOINT_URL_S3``, keys) and
    llmreg's one S3 policy (:data:`llmreg.settings.S3_CONFIG`)."""
    from llmreg.settings import s3_client

    return s3_client("an s3:// mirror", hint="; or read it over https://")


def make_fetcher(url: str, ngclient: Any, deadline: float = 30.0) -> Any:
    """python-tuf's fetcher for the mirror's scheme: the standard library's HTTP (no
    urllib3 pool per call), a local folder, or boto3 for ``s3://``.

    Each file is read in chunks and refused past its cap (python-tuf's ``max_length``:
    the signed length, or the maximum for its kind) as soon as it is longer, with
    :func:`oversized_error`; every read ends by the deadline that :meth:`start` began
    (``deadline`` seconds; also begun when the fetcher is made), else a ``DownloadError``.

    Example:
        >>> from tuf import ngclient
        >>> fetcher = make_fetcher("file:///srv/mirror", ngclient, deadline=10)
        >>> fetcher.download_bytes("file:///srv/mirror/metadata/timestamp.json", 16384)
        ... # doctest: +SKIP
        b'{"signatures": ...'
    """
    base = ngclient.FetcherInterface
    from tuf.api.exceptions import DownloadError, DownloadHTTPError

    class Fetcher(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self._http: StdlibHTTP | None = None
            self._s3: Any = None
            self.start()

        def start(self) -> None:
            """Begin the deadline of one resolve."""
            self.deadline = Deadline(deadline)

        def close(self) -> None:
            if self._http is not None:
                self._http.close()

        @contextmanager
        def download_file(self, target: str, max_length: int) -> Iterator[Any]:
            data = self._read(target, max_length)
            with tempfile.TemporaryFile() as fh:
                fh.write(data)
                fh.seek(0)
                yield fh

        def _fetch(self, target: str) -> Iterator[bytes]:  # the interface's; unused
            yield self._read(target, MAX_TARGETS)

        def _read(self, target: str, limit: int) -> bytes:
            if not target.startswith(url + "/"):
                raise DownloadHTTPError(f"{target} is outside the mirror {url}", 404)
            path = target[len(url):]
            try:
                if url.startswith("file://"):
                    return self._read_file(target, url[7:] + path, limit)
                if url.startswith("s3://"):
                    return self._get_s3(path, limit)
                return self._get_http(target, path, limit)
            except TooLongError:
                raise oversized_error()(f"{target} is longer than {limit} bytes, "
                                        f"{_cap_said(path, limit)}") from None

        def _read_file(self, target: str, file: str, limit: int) -> bytes:
            try:
                with open(file, "rb") as fh:
                    return read_capped(iter(lambda: fh.read(CHUNK), b""), limit,
                                       self.deadline, target)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise DownloadHTTPError(f"{target} not found", 404) from None
            except OSError as exc:  # unreadable, or the deadline: an outage, not an attack
                raise DownloadError(f"{target}: {exc.strerror or exc}") from None

        def _get_http(self, target: str, path: str, limit: int) -> bytes:
            if self._http is None:
                self._http = StdlibHTTP(url, {}, timeout=5.0)
            try:
                status, _, body = self._http.get(path, {}, limit=limit, deadline=self.deadline)
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(f"{target}: {exc}") from None
            if status != 200:
                raise DownloadHTTPError(f"{target} answered {status}", status)
            return body

        def _get_s3(self, path: str, limit: int) -> bytes:
            bucket, _, prefix = url[5:].partition("/")
            if self._s3 is None:
                self._s3 = _s3_client()
            key = f"{prefix.strip('/')}{path}" if prefix.strip("/") else path.lstrip("/")
            try:
                body = self._s3.get_object(Bucket=bucket, Key=key)["Body"]
                return read_capped(body.iter_chunks(CHUNK), limit, self.deadline, url + path)
            except TooLongError:
                raise
            except self._s3.exceptions.NoSuchKey:
                raise DownloadHTTPError(f"{url}{path} not found", 404) from None
            except Exception as exc:  # botocore's errors: no credentials, endpoint down, …
                if "AccessDenied" in str(exc) or "403" in str(exc):
                    raise DownloadHTTPError(f"{url}{path}: {exc}", 403) from None
                raise DownloadError(f"{url}{path}: {exc}") from None

    return Fetcher()
