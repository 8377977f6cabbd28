"""A registry clock the test moves (forward only: the audit log is kept in order)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from llmreg.db.models import set_clock


class Clock:
    """Stands in for ``utcnow`` while set with :func:`frozen_clock`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@contextmanager
def frozen_clock(start: datetime) -> Iterator[Clock]:
    """The registry reads ``Clock(start)`` as its time until the block ends."""
    c = Clock(start)
    set_clock(c)
    try:
        yield c
    finally:
        set_clock(None)
