"""Events for notifications, written in the caller's transaction (the outbox).

The outbox itself (:mod:`llmreg.service.outbox`, webhook endpoints and delivery) is
built beside this module; until it is present, :func:`emit` records nothing, so the
state changes that report events work the same with or without it.

Example:
    >>> import tempfile
    >>> from llmreg.db.engine import Database
    >>> db = Database.open(f"sqlite:///{tempfile.mkdtemp()}/r.db")
    >>> with db.write() as session:
    ...     emit(session, event="archive", name="chat", data={"version": 3})
    >>> db.dispose()
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any

from sqlmodel import Session

from llmreg.db.models import utcnow


def emit(session: Session, *, event: str, name: str | None, data: dict[str, Any],
         at: datetime | None = None) -> None:
    """Write ``event`` about ``name`` into the outbox, in ``session``'s transaction."""
    try:
        outbox = importlib.import_module("llmreg.service.outbox")
    except ModuleNotFoundError:
        return
    outbox.emit(session, event=event, name=name, data=data, at=at or utcnow())
