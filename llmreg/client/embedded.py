"""The embedded backend: a client's calls go to the service layer in this process.

The registry is a folder (``.llmreg/``: SQLite and a blob folder, or the database and
store the settings name). In the embedded registry every identity holds every role:
access to the registry's files is the trust root.

Reads an application makes at startup — ``resolve(name, env=…)``, ``resolve(ref)``,
``get(ref)`` — go first to :class:`~llmreg.db.readonly.ReadOnlyRegistry` (the standard
library's ``sqlite3``, read-only), so that they import neither SQLAlchemy, SQLModel nor
(``get`` aside, whose :class:`~llmreg.bundle.schema.Bundle` is a pydantic model) pydantic.
Everything else, and any read the fast path misses, builds the ORM-backed
:class:`~llmreg.service.registry.RegistryService` on first use; opening it migrates
the database, as ever. A registry elsewhere than the folder (``LLMREG_DATABASE_URL``,
``LLMREG_STORE=s3://…``) or at an older schema revision uses the service from the start.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from llmreg.bundle.names import check_name, parse_ref
from llmreg.bundle.resolved import ResolvedBundle
from llmreg.client.backend import Backend, Progress
from llmreg.client.core import Client
from llmreg.db.readonly import ReadOnlyRegistry, VersionRow
from llmreg.errors import MissingDependencyError, RegistryNotFoundError
from llmreg.settings import Settings

if TYPE_CHECKING:
    from llmreg.bundle.schema import Bundle
    from llmreg.policy import Policy
    from llmreg.service.registry import RegistryService
    from llmreg.types import Actor

POLICY_FILENAME = "llmreg-policy.yaml"  # llmreg.policy.POLICY_FILENAME, without pydantic


def open_embedded(home: Path | None, settings: Settings, create: bool) -> Client:
    """A client over the embedded registry at ``home`` (or where the settings point).

    Example:
        >>> import tempfile
        >>> reg = open_embedded(Path(tempfile.mkdtemp()), Settings(), create=True)
        >>> reg.list()
        []
        >>> reg.close()
    """
    path = Path(home) if home is not None else settings.resolve_home()
    if not create and not is_registry(path, settings):
        # Only `llmreg init` (or create=True) makes a registry: a mistyped --registry,
        # connect(path) or LLMREG_HOME must not silently answer "nothing here".
        raise RegistryNotFoundError(
            f"{str(path)!r} is not a registry; run `llmreg init` to create one there")
    reader = None
    store = settings.store
    if settings.database_url is None and not (store or "").startswith("s3://"):
        reader = ReadOnlyRegistry.open(path, Path(store) if store else None)
    backend = EmbeddedBackend(None, settings=settings, home=path, reader=reader)
    if reader is None:
        backend.service  # noqa: B018 - create or migrate the registry now, as connect did
    return Client(backend)


def is_registry(path: Path, settings: Settings) -> bool:
    """Whether ``path`` holds a registry ``llmreg init`` made.

    With the default SQLite database that is its ``registry.db``; with an external
    database (``LLMREG_DATABASE_URL``) the database itself is the registry.

    Example:
        >>> import tempfile
        >>> is_registry(Path(tempfile.mkdtemp()), Settings())
        False
    """
    if settings.database_url is not None:
        return True
    return (path / "registry.db").is_file()


class EmbeddedBackend(Backend):
    """Each primitive is one call on the service's parts (reads first try the
    read-only path; the service is opened on first use)."""

    def __init__(self, service: RegistryService | None, *, settings: Settings, home: Path,
                 reader: ReadOnlyRegistry | None = None) -> None:
        self._service = service
        self._reader = reader
        self._policy: Policy | None = service.policy if service is not None else None
        self.settings = settings
        self.home: Path = home

    @property
    def service(self) -> RegistryService:
        """The ORM-backed service, opened (and the database migrated) on first use."""
        if self._service is None:
            try:
                from llmreg.service.registry import RegistryService
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise MissingDependencyError(
                    f"the embedded registry needs {exc.name}; pip install 'llmreg'") from exc
            self._service = RegistryService.open_home(
                self.home, database_url=self.settings.database_url,
                store=self.settings.store, policy=self.policy)
        return self._service

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._service is not None:
            self._service.close()

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            from llmreg.policy import find_policy

            self._policy = find_policy(self.settings.policy, self.home)
        return self._policy

    def actor(self) -> Actor:
        from llmreg.types import Actor

        return Actor(self.settings.identity())

    # -- the read-only path ------------------------------------------------------------

    def _is_canonical_env(self, env: str) -> bool:
        """Whether ``env`` is one of the policy's environments by its canonical name,
        judged without building the pydantic policy where that can be avoided (an
        alias, or an environment the policy no longer has, goes to the service)."""
        if self._policy is not None:
            return self._policy.is_environment(env) and self._policy.canonical_env(env) == env
        path = self.settings.policy or self.home.parent / POLICY_FILENAME
        if self.settings.policy is None and not path.is_file():
            return True  # the built-in default; a slot's env was checked when it moved
        import yaml

        try:
            data = yaml.safe_load(path.read_text())
            return env in (data.get("environments") or {})
        except (OSError, yaml.YAMLError, AttributeError, TypeError):
            return False  # let the service load it and say what is wrong

    def _fast_row(self, ref: str) -> VersionRow | None:
        """The version ``ref`` names, from the read-only path; None: ask the service."""
        if self._reader is None:
            return None
        try:
            parsed = parse_ref(ref)
        except ValueError:
            return None  # the service raises the error, with its message
        if parsed.name is None:
            return None
        if parsed.version is not None:
            return self._reader.version(parsed.name, number=parsed.version)
        if parsed.digest_prefix is not None:
            return self._reader.version(parsed.name, digest_prefix=parsed.digest_prefix)
        if parsed.label in (None, "latest"):
            return self._reader.version(parsed.name)
        assert parsed.label is not None
        if not self._is_canonical_env(parsed.label):
            return None
        return self._reader.slot(parsed.name, parsed.label)

    # -- reads ------------------------------------------------------------------------

    def get(self, ref: str) -> Bundle:
        row = self._fast_row(ref)
        if row is None:
            return self.service.versions.get(ref)
        from llmreg.bundle.schema import Bundle
        from llmreg.errors import InvalidBundleError
        from llmreg.types import VersionInfo

        assert self._reader is not None
        bundle = Bundle.from_canonical(self._reader.manifest(row.digest))
        if bundle.digest != row.digest:  # as Versions.load: the bytes verified, so a bug
            raise InvalidBundleError(
                f"manifest {row.digest} re-canonicalises to {bundle.digest}; this llmreg "
                "cannot reproduce that digest")
        return bundle.with_info(VersionInfo(**row.fields()))

    def resolve_ref(self, ref: str) -> ResolvedBundle:
        row = self._fast_row(ref)
        if row is None:
            return ResolvedBundle.from_bundle(self.get(ref))
        assert self._reader is not None
        return ResolvedBundle(self._reader.manifest(row.digest), name=row.name,
                              version=row.number, env=None, digest=row.digest)

    def resolve_slot(self, name: str, env: str, *, strict: bool,
                     max_stale: float | None) -> ResolvedBundle:
        if self._reader is not None and _valid_name(name) and self._is_canonical_env(env):
            row = self._reader.slot(name, env)
            if row is not None:
                return ResolvedBundle(self._reader.manifest(row.digest), name=row.name,
                                      version=row.number, env=env, digest=row.digest)
        info = self.service.versions.slot(name, env)
        return ResolvedBundle(self.service.blobs.read(info.digest), name=info.name,
                              version=info.version, env=self.policy.canonical_env(env),
                              digest=info.digest)

    # -- every operation of the table: its handler, in this process -------------------

    def call(self, operation: str, /, **args: Any) -> Any:
        """The operation's handler (:mod:`llmreg.service.operations`) on the service,
        as the local identity (which holds every role here)."""
        from llmreg.contract.operations import operation as declared
        from llmreg.service.operations import HANDLERS

        return HANDLERS[declared(operation).name](self.service, self.actor(), **args)

    # -- blobs -----------------------------------------------------------------------

    def put_file(self, path: Path, progress: Progress | None) -> tuple[str, int]:
        with path.open("rb") as fh:
            reader = _Progress(fh, path.name, path.stat().st_size, progress)
            desc = self.service.blobs.put_stream(reader)  # type: ignore[arg-type]
        return desc.digest, desc.size

    def put_bytes(self, data: bytes) -> str:
        return self.service.blobs.put_bytes(data).digest

    def blob_chunks(self, digest: str, offset: int) -> Iterator[bytes]:
        with self.service.blobs.open(digest) as fh:
            skip = offset
            while skip > 0:  # resuming: the caller re-hashes the whole file at the end
                data = fh.read(min(skip, 1024 * 1024))
                if not data:
                    return
                skip -= len(data)
            while chunk := fh.read(1024 * 1024):
                yield chunk


class _Progress:
    """A file wrapper that reports bytes read (for upload progress bars)."""

    def __init__(self, fh: BinaryIO, name: str, total: int, progress: Progress | None) -> None:
        self._fh, self._name, self._total, self._progress = fh, name, total, progress
        self._done = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self._done += len(data)
        if self._progress is not None:
            self._progress(self._name, self._done, self._total)
        return data


def _valid_name(name: str) -> bool:
    try:
        check_name(name)
    except ValueError:
        return False
    return True
