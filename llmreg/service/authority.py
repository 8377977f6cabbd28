"""Teams' authority applied inside a transaction: the owning team read in the caller's
session, and the refusal raised. The rules themselves are :mod:`llmreg.teams`.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from llmreg.bundle.schema import Bundle
    >>> from llmreg.service import RegistryService
    >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
    >>> ci = Actor("search-ci", teams={"*": "reader", "search": "publisher"})
    >>> bundle = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
    ...                            "template": {"source": "hi"}})
    >>> svc.versions.register(bundle, name="chat", message="m", author="ci", actor=ci).created
    True
    >>> with svc.db.read() as s:
    ...     require(s, Actor("bo", teams={"*": "reader", "support": "publisher"}),
    ...             "chat", 1, "publisher")
    Traceback (most recent call last):
    ...
    llmreg.errors.PermissionDeniedError: chat is owned by team search; bo is ...
    >>> svc.close()
"""

from __future__ import annotations

from sqlmodel import Session

from llmreg.db.models import Owner
from llmreg.errors import PermissionDeniedError
from llmreg.teams import refusal
from llmreg.types import Actor


def owner_team(session: Session, name_id: int | None) -> str | None:
    """The team that owns the name with id ``name_id`` (None: no owner yet)."""
    found = session.get(Owner, name_id) if name_id is not None else None
    return found.team if found is not None else None


def require(session: Session, actor: Actor, name: str, name_id: int | None,
            role: str) -> str | None:
    """Raise :class:`~llmreg.errors.PermissionDeniedError` unless ``actor`` may act with
    ``role`` on ``name``, read in ``session`` (the caller's transaction); return the
    owning team.

    Example:
        >>> require(s, Actor("bo", teams={"*": "reader"}), "chat", 1,
        ...         "publisher")  # doctest: +SKIP
        Traceback (most recent call last):
        ...
        llmreg.errors.PermissionDeniedError: chat is owned by team search; bo is ...
    """
    owner = owner_team(session, name_id)
    why = refusal(actor, name, owner, role)
    if why is not None:
        raise PermissionDeniedError(why)
    return owner
