"""Refs to rows, inside an open session.

Writers resolve a ref in the same transaction that changes state, so the gates are
judged and the slot is moved on one snapshot; readers use the same functions in a read
session. Every miss raises naming the ref and what to try next.

Example:
    >>> import tempfile
    >>> from llmreg.db.engine import Database
    >>> db = Database.open(f"sqlite:///{tempfile.mkdtemp()}/r.db")
    >>> with db.read() as session:
    ...     resolve_in(session, "chat@3", Policy.default())
    Traceback (most recent call last):
    ...
    llmreg.errors.RefNotFoundError: 'chat' is not registered; see `llmreg list` ...
    >>> db.dispose()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from llmreg.bundle.digest import short
from llmreg.bundle.names import Ref, parse_ref
from llmreg.db.models import BundleName, Slot, Version
from llmreg.errors import (
    AmbiguousRefError,
    EmptySlotError,
    InvalidRefError,
    RefNotFoundError,
    shown,
)
from llmreg.policy import Policy

NAMES_SCANNED = 10_000  # names compared for a "did you mean" (bounded work per miss)


def resolve_in(session: Session, ref: str | Ref, policy: Policy) -> tuple[BundleName, Version]:
    """The name row and version ``ref`` points to (``name@production`` reads the slot)."""
    parsed = parse_ref(ref) if isinstance(ref, str) else ref
    if parsed.name is None:
        return _by_content(session, parsed)
    row = name_row(session, parsed.name)
    query = select(Version).where(Version.name_id == row.id)
    if parsed.version is not None:
        found = session.exec(query.where(Version.number == parsed.version)).first()
        if found is None:
            raise RefNotFoundError(
                f"{shown(parsed.name)} has no version {parsed.version} (latest is "
                f"{row.latest_version}); see `llmreg history {parsed.name}`")
        return row, found
    if parsed.digest_prefix is not None:
        return row, _one(session.exec(prefix_filter(query, parsed.digest_prefix)).all(),
                         str(parsed))
    if parsed.label in (None, "latest"):
        return row, session.exec(query.where(Version.number == row.latest_version)).one()
    assert parsed.label is not None
    if not policy.is_environment(parsed.label):
        raise InvalidRefError(
            f"ref {shown(str(parsed))}: {shown(parsed.label)} is not a version, a digest, 'latest' "
            f"or an environment ({policy.environment_names()})")
    return slot_in(session, row, policy.canonical_env(parsed.label))


def slot_in(session: Session, row: BundleName, env: str) -> tuple[BundleName, Version]:
    """The version the canonical environment ``env`` holds for ``row``."""
    slot = session.exec(select(Slot).where(Slot.name_id == row.id, Slot.env == env)).first()
    if slot is None:
        raise EmptySlotError(f"{shown(row.name)} has nothing in {shown(env)}; see "
                             f"`llmreg status {row.name}`")
    version = session.exec(select(Version).where(Version.name_id == row.id,
                                                 Version.number == slot.version)).one()
    return row, version


def name_row(session: Session, name: str) -> BundleName:
    """The row of a registered name, or ``RefNotFoundError`` saying where to look."""
    row = session.exec(select(BundleName).where(BundleName.name == name)).first()
    if row is None or row.latest_version == 0:
        raise not_registered(session, name)
    return row


def name_id(row: BundleName) -> int:
    """The id of a name row read from the database (such a row always has one)."""
    assert row.id is not None
    return row.id


def not_registered(session: Session, name: str) -> RefNotFoundError:
    """The error for a name nobody registered, suggesting the closest registered name."""
    import difflib

    names = session.exec(select(BundleName.name).where(BundleName.latest_version > 0)
                         .limit(NAMES_SCANNED)).all()
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.7)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return RefNotFoundError(
        f"{shown(name)} is not registered; {hint}see `llmreg list` for the names there are")


def prefix_filter(query: Any, prefix: str) -> Any:
    """Versions whose digest starts with ``sha256:<prefix>``.

    A range instead of LIKE, so the digest index is used on every backend.
    """
    low = f"sha256:{prefix}"
    return query.where(col(Version.digest) >= low, col(Version.digest) < low + "g")


def _by_content(session: Session, parsed: Ref) -> tuple[BundleName, Version]:
    assert parsed.digest_prefix is not None
    query = select(Version).order_by(col(Version.id))
    rows = session.exec(prefix_filter(query, parsed.digest_prefix)).all()
    if not rows:
        raise RefNotFoundError(f"no bundle has digest {shown(str(parsed))}")
    version = _one(rows, str(parsed))
    name = session.get(BundleName, version.name_id)
    assert name is not None
    return name, version


def _one(rows: Sequence[Version], ref: str) -> Version:
    digests = sorted({r.digest for r in rows})
    if not digests:
        raise RefNotFoundError(f"no version matches {shown(ref)}; see `llmreg history`")
    if len(digests) > 1:
        listed = ", ".join(short(d) for d in digests[:5])
        raise AmbiguousRefError(
            f"{shown(ref)} matches {len(digests)} bundles ({listed}); give more hex digits")
    return rows[0]
