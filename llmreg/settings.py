"""Settings, read from ``LLMREG_*`` variables in one place, at the edges.

``Settings.from_env()`` is called by :func:`llmreg.connect`, the CLI and the
server — never at import time.

=======================  ===============================================================
``LLMREG_HOME``          the embedded registry folder (default: ``.llmreg/`` found from
                         the current folder upward)
``LLMREG_DATABASE_URL``  metadata database (default ``sqlite:///<home>/registry.db``)
``LLMREG_STORE``         blob store (default the home folder; a path, ``file://PATH`` or
                         ``s3://BUCKET/PREFIX``: :func:`parse_store_url`)
``LLMREG_USER``          who you are, for authorship (default the OS user)
``LLMREG_POLICY``        the policy file (default ``llmreg-policy.yaml`` beside the
                         registry folder, else the built-in default policy)
``LLMREG_OFFLINE``       ``1`` to never touch the network
``LLMREG_URL``           a registry server; the client and CLI then use HTTP (or a
                         signed mirror: ``https://``, ``file://``, ``s3://`` with
                         ``LLMREG_TRUSTED_ROOT``)
``LLMREG_TRUSTED_ROOT``  the mirror's root metadata file the client trusts
                         (docs/mirror.md)
``LLMREG_PUBLISH``       server: publish the signed mirror there after every move (a
                         folder, ``file://PATH`` or ``s3://BUCKET/PREFIX``)
``LLMREG_MIRROR_KEYS``   the mirror's keys folder (default ``mirror-keys``)
``LLMREG_TOKEN``         the API token for that server
``LLMREG_CACHE``         the client's on-disk cache (default: the user cache folder)
``LLMREG_CACHE_KEY``     the file holding the key that authenticates the cache's slot
                         records, kept outside the cache folder (default: the user state
                         folder, e.g. ``~/.local/state/llmreg/cache.key``)
``LLMREG_READ_DEADLINE`` client: seconds one resolve or request may take in all,
                         connecting and reading included (default 30; docs/security.md)
``LLMREG_READ_AUTH``     server: ``token`` (default) or ``open`` for unauthenticated reads
``LLMREG_OIDC_ISSUERS``  server: the OIDC issuers whose ID tokens it accepts (comma-
                         separated https URLs, e.g. GitHub Actions'); the policy's
                         ``identities`` map them to subjects and teams (docs/teams.md);
                         ``LLMREG_OIDC_AUDIENCE``: the audience they must name (llmreg)
``LLMREG_SMTP_URL``      the relay for owners' email notices: ``smtp://USER:PASS@HOST:587``
                         (STARTTLS) or ``smtps://…:465``; ``LLMREG_SMTP_FROM``: the sender
``LLMREG_RESOLVE_TTL``   server: seconds a slot lookup is cached in memory (default 1)
``LLMREG_MAX_BODY``      server: bytes of one JSON request body (default 16 MiB);
                         ``LLMREG_MAX_JSON_NODES``: values in it (500,000)
``LLMREG_BODY_*``        server: ``IDLE_TIMEOUT`` (30 s), ``GRACE`` (10 s) and
                         ``MIN_RATE`` (8192 bytes/s) of request bodies, ``TIMEOUT``
                         (60 s) for a whole JSON or form body (docs/security.md)
``LLMREG_LARGE_BODY``    server: bytes from which a body is large (default 1 MiB);
                         ``LLMREG_MAX_LARGE_BODIES``: how many a worker reads at once (4)
``LLMREG_MAX_HEADER_*``  server (``llmreg serve``): ``BYTES`` of a request line and its
                         headers (32 KiB); ``LLMREG_MAX_HEADERS``: header fields (100);
                         ``LLMREG_HEADER_TIMEOUT``: seconds to send them (10)
``LLMREG_RENDER_*``      ``MAX_CHARS``, ``MAX_STEPS``, ``TIMEOUT``: a render's budget,
                         read by :mod:`llmreg.bundle.render`
``LLMREG_JOBS``          server: 1 runs the scheduled jobs in the background (``llmreg
                         serve`` sets it unless ``--no-jobs``); ``LLMREG_JOBS_TICK``: s
``LLMREG_API_DOCS``      server: 1 serves the interactive API pages ``/docs`` and
                         ``/redoc`` (off by default: they load scripts from a CDN onto
                         the registry's origin); ``/openapi.json`` is always served
=======================  ===============================================================

Store URLs (``LLMREG_STORE``, ``LLMREG_PUBLISH``, a mirror's ``DEST``) are read by one
parser, :func:`parse_store_url`, and every S3 client llmreg makes comes from one factory,
:func:`s3_client`, with one retry policy (:data:`S3_CONFIG`). Both live here because
the stores, the service and the client all need them, and this module is below them all.

Example:
    >>> Settings.from_env({"LLMREG_USER": "ana", "LLMREG_OFFLINE": "1"}).offline
    True
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from llmreg.errors import ConfigError, MissingDependencyError, RegistryNotFoundError, shown

HOME_DIRNAME = ".llmreg"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

ReadAuth = Literal["token", "open"]
"""``LLMREG_READ_AUTH`` (``llmreg serve --read-auth``): ``token``, reads need a reader
token; ``open``, anyone may read."""


class Secret:
    """A string that never shows itself in reprs, logs or tracebacks.

    Example:
        >>> Secret("llmreg_abc"), Secret("llmreg_abc").get_secret_value()
        (Secret('**********'), 'llmreg_abc')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# A frozen dataclass, not a pydantic model: applications import the client at startup,
# and the remote resolve path stays free of pydantic (see docs/benchmarks.md).
@dataclass(frozen=True)
class Settings:
    """Frozen configuration for one client, CLI run or server."""

    home: Path | None = None
    database_url: str | None = None
    store: str | None = None
    user: str | None = None
    policy: Path | None = None
    offline: bool = False
    url: str | None = None
    token: Secret | None = None
    cache: Path | None = None
    cache_key: Path | None = None
    # Client: the total time one resolve (or one request) may take (llmreg.client.limits).
    read_deadline: float = 30.0
    trusted_root: Path | None = None
    publish: str | None = None
    mirror_keys: Path | None = None
    read_auth: str = "token"
    resolve_ttl: float = 1.0
    metrics: str = "token"  # /metrics: off, public, or token (the same rule as reads)
    # Request bodies on the server (llmreg.server.guard): size, stall and pace.
    max_body: int = 16 * 1024 * 1024
    body_idle_timeout: float = 30.0
    body_grace: float = 10.0
    body_min_rate: int = 8 * 1024
    body_timeout: float = 60.0  # a whole JSON or form body (blobs: the pace rule)
    large_body: int = 1024 * 1024  # a body this large needs one of max_large_bodies slots
    max_large_bodies: int = 4  # per worker process
    max_json_nodes: int = 500_000  # values in one JSON body (nesting: bundle.parse.MAX_DEPTH)
    # Request heads, enforced in front of the HTTP parser by `llmreg serve`
    # (llmreg.server.connection): size, number of fields, time to send them.
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    # Server: run the scheduled jobs in the background (``llmreg serve`` turns it on).
    jobs: bool = False
    jobs_tick: float = 0.5
    # Server: /docs and /redoc (Swagger UI, ReDoc) load third-party scripts from a CDN
    # onto this origin, where the web pages' session cookie lives: off unless asked for.
    api_docs: bool = False
    # Server: OIDC issuers whose ID tokens are accepted, and the audience they must name.
    oidc_issuers: tuple[str, ...] = ()
    oidc_audience: str = "llmreg"
    # Email notices to owners (llmreg.service.notifications.email): the relay and sender.
    smtp_url: Secret | None = None
    smtp_from: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``), naming bad values."""
        env = os.environ if environ is None else environ
        offline_raw = env.get("LLMREG_OFFLINE", "").strip().lower()
        if offline_raw not in _TRUE | _FALSE:
            raise ConfigError(
                f"LLMREG_OFFLINE={shown(env['LLMREG_OFFLINE'])} is not a boolean; use 1 or 0"
            )
        store = env.get("LLMREG_STORE") or None
        if store is not None:
            store = str(parse_store_url(store, "LLMREG_STORE"))  # file:// dropped: a folder
        publish = env.get("LLMREG_PUBLISH") or None
        if publish is not None:
            parse_store_url(publish, "LLMREG_PUBLISH")  # kept as given: the mirror's name
        home = env.get("LLMREG_HOME") or None
        url = env.get("LLMREG_URL") or None
        trusted_root = env.get("LLMREG_TRUSTED_ROOT") or None
        mirror_schemes = ("file://", "s3://") if trusted_root else ()
        if url is not None and not url.startswith(("http://", "https://", *mirror_schemes)):
            hint = (" (file:// and s3:// are signed mirrors: set LLMREG_TRUSTED_ROOT too)"
                    if url.startswith(("file://", "s3://")) else "")
            raise ConfigError(f"LLMREG_URL={shown(url)} is not an http(s) URL, e.g. "
                              f"http://127.0.0.1:8700{hint}")
        read_auth = env.get("LLMREG_READ_AUTH", "token") or "token"
        if read_auth not in ("token", "open"):
            raise ConfigError(f"LLMREG_READ_AUTH={shown(read_auth)} must be 'token' or 'open'")
        metrics = env.get("LLMREG_METRICS", "token") or "token"
        if metrics not in ("off", "public", "token"):
            raise ConfigError(f"LLMREG_METRICS={shown(metrics)} must be 'off', 'public' or 'token'")
        ttl_raw = env.get("LLMREG_RESOLVE_TTL", "1") or "1"
        try:
            ttl = float(ttl_raw)
            if ttl < 0:
                raise ValueError
        except ValueError:
            raise ConfigError(f"LLMREG_RESOLVE_TTL={shown(ttl_raw)} must be seconds >= 0") from None
        jobs_raw = env.get("LLMREG_JOBS", "").strip().lower()
        if jobs_raw not in _TRUE | _FALSE:
            raise ConfigError(f"LLMREG_JOBS={shown(env['LLMREG_JOBS'])} is not a boolean; "
                              "use 1 or 0")
        docs_raw = env.get("LLMREG_API_DOCS", "").strip().lower()
        if docs_raw not in _TRUE | _FALSE:
            raise ConfigError(f"LLMREG_API_DOCS={shown(env['LLMREG_API_DOCS'])} is not a "
                              "boolean; use 1 or 0")
        return cls(
            oidc_issuers=_issuers(env.get("LLMREG_OIDC_ISSUERS", "")),
            oidc_audience=(env.get("LLMREG_OIDC_AUDIENCE") or "llmreg").strip(),
            smtp_url=Secret(env["LLMREG_SMTP_URL"]) if env.get("LLMREG_SMTP_URL") else None,
            smtp_from=env.get("LLMREG_SMTP_FROM") or None,
            api_docs=docs_raw in _TRUE,
            jobs=jobs_raw in _TRUE,
            jobs_tick=_positive(env, "LLMREG_JOBS_TICK", cls.jobs_tick),
            max_body=int(_positive(env, "LLMREG_MAX_BODY", cls.max_body)),
            body_idle_timeout=_positive(env, "LLMREG_BODY_IDLE_TIMEOUT", cls.body_idle_timeout),
            body_grace=_positive(env, "LLMREG_BODY_GRACE", cls.body_grace),
            body_min_rate=int(_positive(env, "LLMREG_BODY_MIN_RATE", cls.body_min_rate)),
            body_timeout=_positive(env, "LLMREG_BODY_TIMEOUT", cls.body_timeout),
            large_body=int(_positive(env, "LLMREG_LARGE_BODY", cls.large_body)),
            max_large_bodies=int(_positive(env, "LLMREG_MAX_LARGE_BODIES",
                                           cls.max_large_bodies)),
            max_json_nodes=int(_positive(env, "LLMREG_MAX_JSON_NODES", cls.max_json_nodes)),
            max_header_bytes=int(_positive(env, "LLMREG_MAX_HEADER_BYTES",
                                           cls.max_header_bytes)),
            max_headers=int(_positive(env, "LLMREG_MAX_HEADERS", cls.max_headers)),
            header_timeout=_positive(env, "LLMREG_HEADER_TIMEOUT", cls.header_timeout),
            home=Path(home).expanduser() if home else None,
            database_url=env.get("LLMREG_DATABASE_URL") or None,
            store=store,
            user=env.get("LLMREG_USER") or None,
            policy=Path(env["LLMREG_POLICY"]) if env.get("LLMREG_POLICY") else None,
            offline=offline_raw in _TRUE,
            url=url.rstrip("/") if url else None,
            token=Secret(env["LLMREG_TOKEN"]) if env.get("LLMREG_TOKEN") else None,
            cache=Path(env["LLMREG_CACHE"]).expanduser() if env.get("LLMREG_CACHE") else None,
            cache_key=(Path(env["LLMREG_CACHE_KEY"]).expanduser()
                       if env.get("LLMREG_CACHE_KEY") else None),
            read_deadline=_positive(env, "LLMREG_READ_DEADLINE", cls.read_deadline),
            read_auth=read_auth,
            resolve_ttl=ttl,
            trusted_root=Path(trusted_root).expanduser() if trusted_root else None,
            publish=publish,
            mirror_keys=(Path(env["LLMREG_MIRROR_KEYS"]).expanduser()
                         if env.get("LLMREG_MIRROR_KEYS") else None),
            metrics=metrics,
        )

    def identity(self) -> str:
        """The user name recorded as author: ``LLMREG_USER``, else the OS user."""
        if self.user:
            return self.user
        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no passwd entry, as in some containers
            return f"uid-{os.getuid()}"

    def resolve_home(self, start: Path | None = None) -> Path:
        """The embedded registry folder: ``LLMREG_HOME`` or ``.llmreg/`` found upward.

        Raises :class:`RegistryNotFoundError` with the next step when there is none.
        """
        if self.home is not None:
            return self.home
        found = find_home(start or Path.cwd())
        if found is None:
            raise RegistryNotFoundError(
                f"no {HOME_DIRNAME}/ registry in {start or Path.cwd()} or any parent folder; "
                "run `llmreg init` here or set LLMREG_HOME"
            )
        return found


# -- store URLs: one parser, one list of schemes ------------------------------------

StoreScheme = Literal["file", "s3"]
"""The schemes a blob store (``LLMREG_STORE``) or a mirror destination (``DEST``,
``LLMREG_PUBLISH``) may name. Each has an opener in ``llmreg.store.OPENERS`` and in
``llmreg.service.mirror.destinations.OPENERS`` (tests/store/test_urls.py holds them
equal); a plain path is ``file``."""

STORE_SCHEMES: tuple[StoreScheme, ...] = get_args(StoreScheme)
_FORMS: dict[StoreScheme, str] = {"file": "a folder, file://PATH", "s3": "s3://BUCKET/PREFIX"}
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def url_scheme(value: str) -> str | None:
    """The scheme of ``value`` when it is a URL (``scheme://…``); ``None`` for a path.

    Example:
        >>> url_scheme("s3://bucket/p"), url_scheme("/srv/blobs"), url_scheme("./a://b")
        ('s3', None, None)
    """
    found = _URL.match(value)
    return found.group(1) if found else None


@dataclass(frozen=True)
class StoreURL:
    """Where blobs or a mirror live: a folder (``file``) or ``s3://bucket/prefix``.

    ``str()`` gives it back in its plain form: the folder path, or the ``s3://`` URL.
    """

    scheme: StoreScheme
    path: str = ""  # file: the folder, as given (relative paths stay relative)
    bucket: str = ""  # s3
    prefix: str = ""  # s3: the key prefix, without slashes around it

    def __str__(self) -> str:
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return self.path


def parse_store_url(value: str, field: str = "LLMREG_STORE",
                    schemes: Collection[StoreScheme] = STORE_SCHEMES) -> StoreURL:
    """Read a store URL; a bad one is a :class:`ConfigError` naming ``field`` and the fix.

    A plain path or ``file://PATH`` is a folder, ``s3://BUCKET/PREFIX`` a bucket. Any
    other ``scheme://`` is refused — never taken for a folder named ``scheme:``.
    ``schemes`` narrows what the caller can open (the keys of its table of openers).

    Example:
        >>> parse_store_url("file:///srv/blobs"), str(parse_store_url("s3://b/reg/"))
        (StoreURL(scheme='file', path='/srv/blobs', bucket='', prefix=''), 's3://b/reg')
        >>> parse_store_url("s4://x")
        Traceback (most recent call last):
        ...
        llmreg.errors.ConfigError: LLMREG_STORE='s4://x' is not a folder, file://PATH or ...
    """
    scheme = url_scheme(value) or "file"
    if scheme not in schemes:
        forms = [_FORMS[s] for s in STORE_SCHEMES if s in schemes]
        accepted = ", ".join(forms[:-1]) + " or " + forms[-1] if len(forms) > 1 else forms[0]
        raise ConfigError(f"{field}={shown(value)} is not {accepted} "
                          f"(scheme {shown(scheme)} is not supported)")
    if scheme == "s3":
        bucket, _, prefix = value[len("s3://"):].partition("/")
        if not bucket:
            raise ConfigError(f"{field}={shown(value)} names no bucket; use s3://BUCKET/PREFIX")
        return StoreURL("s3", bucket=bucket, prefix=prefix.strip("/"))
    path = value.removeprefix("file://")
    if not path:
        raise ConfigError(f"{field}={shown(value)} names no folder; use a path or file://PATH")
    return StoreURL("file", path=path)


# -- S3: one client factory, one retry policy ----------------------------------------

# The botocore configuration of every S3 client llmreg makes: the blob store, the mirror
# publisher's destination, the mirror reader (and the tests' SeaweedFS client).
# - Retries: botocore's "standard" mode, 6 attempts in all (the first and 5 retries, as
#   the store had), with exponential backoff and jitter, on throttling, 5xx answers,
#   timeouts and connection errors. ``total_max_attempts`` counts the first try;
#   botocore's other key, ``max_attempts``, counts only retries. This is the only retry
#   policy: no caller loops around its calls (a multipart upload's parts included).
# - Timeouts: 5 s to connect, so an endpoint that is down fails fast (the mirror reader's
#   HTTP waits as long); 60 s for the next bytes of an answer (botocore's default; a
#   64 MiB part is acknowledged well within it).
# - Checksums only when an operation requires them: the store sends its own SHA-256 with
#   every upload and hashes every read itself, so no extra CRC trailers.
# Endpoint, region and credentials come from the standard AWS configuration
# (AWS_ENDPOINT_URL_S3, AWS_PROFILE, …), never from LLMREG_* variables.
S3_CONFIG: dict[str, Any] = {
    "retries": {"mode": "standard", "total_max_attempts": 6},
    "connect_timeout": 5,
    "read_timeout": 60,
    "request_checksum_calculation": "when_required",
    "response_checksum_validation": "when_required",
}


def s3_client(needed_for: str = "an S3 store", hint: str = "", **client_args: Any) -> Any:
    """A boto3 S3 client with :data:`S3_CONFIG`; boto3 is imported only here, on call.

    Args:
        needed_for: what needs it, for the error when boto3 is missing
            (``"an s3:// mirror"``); ``hint`` ends that error (another way out).
        client_args: passed to ``boto3.client`` (``endpoint_url``, keys, ``region_name``);
            by default the standard AWS configuration decides.

    Example:
        >>> s3_client(endpoint_url="http://127.0.0.1:8333")  # doctest: +SKIP
    """
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise MissingDependencyError(f"{needed_for} needs boto3: pip install "
                                     f"'llmreg[s3]'{hint}") from None
    return boto3.client("s3", config=Config(**S3_CONFIG), **client_args)


def _issuers(raw: str) -> tuple[str, ...]:
    """``LLMREG_OIDC_ISSUERS``: https URLs (http only on the loopback, for tests), each
    once, without a trailing slash.

    Example:
        >>> _issuers("https://token.actions.githubusercontent.com, https://gitlab.com/")
        ('https://token.actions.githubusercontent.com', 'https://gitlab.com')
    """
    out: list[str] = []
    for item in raw.split(","):
        url = item.strip().rstrip("/")
        if not url:
            continue
        parts = urlsplit(url)
        loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")
        if not (parts.scheme == "https" and parts.hostname) and not loopback:
            raise ConfigError(f"LLMREG_OIDC_ISSUERS: {shown(url)} is not an https URL; e.g. "
                              "https://token.actions.githubusercontent.com")
        if url not in out:
            out.append(url)
    return tuple(out)


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
        if not value > 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{name}={shown(raw)} must be a number above 0") from None
    return value


def find_home(start: Path) -> Path | None:
    """Return the nearest ``.llmreg/`` folder at or above ``start``.

    Example:
        >>> find_home(Path("/")) is None or True
        True
    """
    here = start.resolve()
    for folder in (here, *here.parents):
        candidate = folder / HOME_DIRNAME
        if candidate.is_dir():
            return candidate
    return None
