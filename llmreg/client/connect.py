"""``llmreg.connect``: a server URL gives the remote client, a folder the embedded one.

Kept apart from both clients so that connecting to a server imports neither the
embedded registry (SQLModel, Alembic) nor, until they are needed, pydantic or httpx.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmreg.errors import ConfigError
from llmreg.settings import Settings, url_scheme

if TYPE_CHECKING:
    from llmreg.client.core import Client

URL_SCHEMES = ("http://", "https://", "file://", "s3://")
_FIX = "use a folder, http(s)://HOST, or a signed mirror's https://, file:// or s3:// URL"


def connect(home: str | Path | None = None, *, settings: Settings | None = None,
            create: bool = False, token: str | None = None,
            http: Any = None, trusted_root: str | Path | None = None) -> Client:
    """Connect to a registry: a server URL, or the embedded registry folder.

    Args:
        home: ``http(s)://…`` for a server, or the registry folder; default
            ``LLMREG_URL``, else ``LLMREG_HOME``, else ``.llmreg/`` found upward.
        settings: explicit settings instead of the ``LLMREG_*`` environment.
        create: create the registry folder if it does not exist (``llmreg init`` does).
        token: the server's API token (default ``LLMREG_TOKEN``).
        http: an ``httpx.Client`` to use for a server (tests, custom transports).
        trusted_root: the root metadata of a signed static mirror (default
            ``LLMREG_TRUSTED_ROOT``): with it, the URL (``https://``, ``file://`` or
            ``s3://``) is read as a mirror (docs/mirror.md), verified against this root.

    Example:
        >>> with llmreg.connect("demo/.llmreg", create=True) as reg:  # a folder: embedded
        ...     type(reg).__name__, reg.list()
        ('Client', [])
        >>> reg = llmreg.connect("http://127.0.0.1:8700", token="llmreg_…")  # doctest: +SKIP
        >>> reg = llmreg.connect("s3://mirror/llmreg", trusted_root="root.json")  # doctest: +SKIP
        >>> llmreg.connect("gs://bucket/reg")  # never a folder named gs:
        Traceback (most recent call last):
        ...
        llmreg.errors.ConfigError: connect('gs://bucket/reg'): scheme 'gs' is not supported; ...
    """
    scheme = url_scheme(str(home)) if home is not None else None
    if scheme is not None and f"{scheme}://" not in URL_SCHEMES:
        raise ConfigError(f"connect({str(home)!r}): scheme {scheme!r} is not supported; {_FIX}")
    settings = settings or Settings.from_env()
    is_url = home is not None and str(home).startswith(URL_SCHEMES)
    url = str(home) if is_url else (settings.url if home is None else None)
    root = trusted_root if trusted_root is not None else settings.trusted_root
    if url is not None and (root is not None or not url.startswith(("http://", "https://"))):
        if root is None:
            raise ConfigError(f"{url} is a static mirror; give the root it is signed with: "
                              "connect(url, trusted_root=PATH) or LLMREG_TRUSTED_ROOT")
        from llmreg.client.mirror_reader import MirrorClient

        return MirrorClient(url, trusted_root=Path(root), settings=settings)
    if url is not None:
        from llmreg.client.remote import RemoteClient

        secret = token or (settings.token.get_secret_value() if settings.token else None)
        return RemoteClient(url, token=secret, settings=settings, http=http)
    from llmreg.client.embedded import open_embedded

    return open_embedded(Path(home) if home is not None else None, settings, create)
