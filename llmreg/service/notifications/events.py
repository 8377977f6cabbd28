"""Events for notifications, written in the caller's transaction (the outbox).

A thin front of :func:`llmreg.service.notifications.outbox.emit` for the hygiene parts (owners,
deprecation, alerts): the event row is written in the same transaction as the state
change it reports, so a crash between the two loses nothing.

Example:
    >>> import tempfile
    >>> from llmreg.db.engine import Database
    >>> db = Database.open(f"sqlite:///{tempfile.mkdtemp()}/r.db")
    >>> with db.write() as session:
    ...     emit(session, event="archive", name="chat", data={"version": 3})
    >>> db.dispose()
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from llmreg.db.models import utcnow
from llmreg.service.notifications import outbox


def emit(session: Session, *, event: str, name: str | None, data: dict[str, Any],
         at: datetime | None = None) -> None:
    """Write ``event`` about ``name`` into the outbox, in ``session``'s transaction."""
    outbox.emit(session, event=event, name=name, data={"name": name, **data},
                at=at or utcnow())
