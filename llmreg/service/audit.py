"""The audit log: append-only, each entry chained to the previous one by hash.

An entry's hash is the SHA-256 of the canonical JSON of its fields plus the previous
entry's hash, so changing, removing or reordering any entry breaks every hash after
it. ``verify`` recomputes the chain and names the first entry that does not match.
Entries are appended in the same transaction as the state change they record.

:class:`AuditLog` is the service's part for reading it (``svc.audit``).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from llmreg.bundle.digest import canonical_json, digest_bytes
from llmreg.db.engine import Database
from llmreg.db.models import AuditEntry, table, utcnow
from llmreg.errors import AuditChainError, InvalidRefError
from llmreg.policy import Policy
from llmreg.service.audited import Audited, Row, check_rows
from llmreg.service.rows import MAX_ROW_ID
from llmreg.types import AuditInfo

GENESIS = "sha256:" + "0" * 64


def entry_hash(seq: int, at: datetime, actor: str, action: str, name: str | None,
               target: str | None, env: str | None, detail: dict[str, Any],
               prev_hash: str) -> str:
    """The hash of one entry (timestamps as UTC microseconds, so every backend agrees)."""
    payload = {
        "seq": seq, "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor": actor,
        "action": action, "name": name, "target": target, "env": env, "detail": detail,
        "prev": prev_hash,
    }
    return digest_bytes(canonical_json(payload))


#: The workload identity (OIDC) of the request being served, if any: every entry it
#: writes records it as ``detail["workload"]`` (set by the server's route around the
#: handler; see :mod:`llmreg.server.oidc`).
WORKLOAD: ContextVar[dict[str, str] | None] = ContextVar("llmreg_workload", default=None)


def _with_workload(detail: dict[str, Any]) -> dict[str, Any]:
    workload = WORKLOAD.get()
    return {**detail, "workload": dict(workload)} if workload else detail


def append(session: Session, *, actor: str, action: str, name: str | None = None,
           target: str | None = None, env: str | None = None,
           detail: dict[str, Any] | None = None, at: datetime | None = None,
           rows: list[Row] | None = None) -> AuditEntry:
    """Append an entry inside the caller's write transaction (``at``: the time of the
    state change it records, when the caller stamped one; ``rows``: the covered rows it
    wrote, as :mod:`llmreg.service.audited` forms them, recorded in ``detail["rows"]``)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_SERIALISE)
    last = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq).desc()).limit(1)).first()
    seq = (last.seq or 0) + 1 if last else 1
    prev = last.hash if last else GENESIS
    at = at or utcnow()
    body = _with_workload(dict(detail or {}))
    if rows:
        body["rows"] = dict(rows)
    entry = AuditEntry(seq=seq, at=at, actor=actor, action=action, name=name, target=target,
                       env=env, detail=body, prev_hash=prev,
                       hash=entry_hash(seq, at, actor, action, name, target, env, body, prev))
    session.add(entry)
    session.flush()
    return entry


# Appenders serialise on PostgreSQL (an advisory lock held to commit), so two
# transactions never chain onto the same tail; SQLite's write lock does that already.
_SERIALISE = sa.text("SELECT pg_advisory_xact_lock(7226312)")
_LOG = table(AuditEntry)
_TAIL = sa.select(_LOG.c.seq, _LOG.c.hash).order_by(_LOG.c.seq.desc()).limit(1)
_APPEND = sa.insert(_LOG)


def append_many(session: Session, *, actor: str, action: str,
                entries: list[dict[str, Any]]) -> str | None:
    """Append one entry per item of ``entries`` (each with ``name``, ``target`` and
    ``detail``, and optionally ``rows`` as :func:`append` takes them), chained in order,
    in one statement; the new head hash (None if none)."""
    if not entries:
        return None
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_SERIALISE)
    last = session.execute(_TAIL).first()
    seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
    at = utcnow()
    rows = []
    for item in entries:
        seq += 1
        name, target, detail = item["name"], item["target"], _with_workload(item["detail"])
        if item.get("rows"):
            detail = {**detail, "rows": dict(item["rows"])}
        digest = entry_hash(seq, at, actor, action, name, target, None, detail, prev)
        rows.append({"seq": seq, "at": at, "actor": actor, "action": action, "name": name,
                     "target": target, "env": None, "detail": detail, "prev_hash": prev,
                     "hash": digest})
        prev = digest
    session.execute(_APPEND, rows)
    return prev


def to_info(e: AuditEntry) -> AuditInfo:
    assert e.seq is not None
    return AuditInfo(seq=e.seq, at=e.at, actor=e.actor, action=e.action, name=e.name,
                     target=e.target, env=e.env, detail=e.detail, prev_hash=e.prev_hash,
                     hash=e.hash)


def entries(db: Database, name: str | None = None, limit: int | None = None, *,
            env: str | None = None) -> list[AuditInfo]:
    """Entries in order (optionally for one name or one environment, optionally the last
    ``limit``; more than there are entries gives them all)."""
    if limit is not None:
        if limit < 0:
            raise InvalidRefError(f"limit {limit} is negative; give 0 or more (or no "
                                  "limit for the whole log)")
        limit = min(limit, MAX_ROW_ID)  # no log is longer; the driver binds no more
    with db.read() as session:
        query = select(AuditEntry)
        if name is not None:
            query = query.where(AuditEntry.name == name)
        if env is not None:
            query = query.where(AuditEntry.env == env)
        query = query.order_by(col(AuditEntry.seq).desc())
        if limit is not None:
            query = query.limit(limit)
        return [to_info(e) for e in reversed(session.exec(query).all())]


@dataclass(frozen=True)
class AuditCheck:
    """What one verification found intact.

    ``entries``: entries that chain; ``rows``: covered rows equal to their audited fields;
    ``unrecorded``: rows of an upgraded registry that no entry recorded (checked by counts
    only); ``head``/``seq``: the newest entry; ``anchor``: the head it was checked against.
    """

    entries: int
    rows: int = 0
    unrecorded: int = 0
    head: str | None = None
    seq: int = 0
    anchor: str | None = None


def verify(db: Database, head: str | None = None) -> int:
    """Recompute the chain; return the number of entries, or raise naming the first bad one.

    A chain can be intact and still short: someone may have deleted its newest entries.
    So the entries are also counted against the state they record (versions, evidence,
    approvals, slot moves, tokens, policies), and with ``head`` — a hash printed by an
    earlier write, a webhook event or the signed mirror — the chain must still contain
    that entry. The rows the chain covers are checked against it (:func:`check`).
    """
    return check(db, head).entries


def check(db: Database, head: str | None = None) -> AuditCheck:
    """:func:`verify`, with what it found: entries, rows checked, rows only counted.

    Example:
        >>> check(svc.db, svc.audit.head())  # doctest: +SKIP
        AuditCheck(entries=3, rows=4, unrecorded=0, head='sha256:…', seq=3, anchor='sha256:…')
    """
    prev = GENESIS
    expected_seq = 1
    count = 0
    seen_head = head is None
    actions: dict[str, int] = {}
    moves: dict[tuple[str | None, str | None], list[AuditEntry]] = {}
    audited = Audited({}, {})
    with db.read() as session:
        for e in session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))):
            label = f"audit entry #{e.seq} ({e.action} {e.target or e.name or ''} by {e.actor})"
            if e.seq != expected_seq:
                raise AuditChainError(
                    f"audit entry #{expected_seq} is missing (the next one is #{e.seq}); "
                    "the log was edited")
            if e.prev_hash != prev:
                raise AuditChainError(f"{label} does not chain to the entry before it")
            actual = entry_hash(e.seq, e.at, e.actor, e.action, e.name, e.target, e.env,
                                e.detail, e.prev_hash)
            if actual != e.hash:
                raise AuditChainError(
                    f"{label} was altered: its content hashes to {actual}, not {e.hash}")
            prev = e.hash
            seen_head = seen_head or e.hash == head
            actions[e.action] = actions.get(e.action, 0) + 1
            if e.action in ("promote", "rollback", "import"):  # every slot move
                moves.setdefault((e.name, e.env), []).append(e)
            audited.record(e.seq, e.action, e.name, e.target, e.env, e.detail)
            expected_seq += 1
            count += 1
        if not seen_head:
            raise AuditChainError(
                f"the audit log does not contain head {head} (it has {count} entries); "
                "entries after it were removed or rewritten; restore the log from a backup "
                "that holds it")
        fewer = _check_counts(session, actions)
        _check_slot_history(session, moves)
        rows, unrecorded = check_rows(session, audited)
        if fewer is not None:  # rows deleted that no entry's rows named (an old registry)
            raise AuditChainError(fewer)
    return AuditCheck(entries=count, rows=rows, unrecorded=unrecorded,
                      head=prev if count else None, seq=count, anchor=head)


def _check_slot_history(session: Session,
                        moves: dict[tuple[str | None, str | None], list[AuditEntry]]) -> None:
    """Each slot-history row equals the audited move it records, so an edit to the history
    (who moved production, when, to what) is named even though the rows are not chained:
    the n-th move of a slot must match the n-th ``promote``/``rollback`` entry for it."""
    from llmreg.db.models import BundleName, SlotEvent

    seen: dict[tuple[str, str], int] = {}
    rows = session.exec(select(SlotEvent, BundleName).join(BundleName)
                        .order_by(col(SlotEvent.id))).all()
    for ev, row in rows:
        key = (row.name, ev.env)
        n = seen.get(key, 0)
        seen[key] = n + 1
        logged = moves.get(key, [])
        label = (f"slot history row #{ev.id} ({row.name}/{ev.env} {ev.action} to "
                 f"@{ev.to_version} by {ev.actor})")
        if n >= len(logged):
            raise AuditChainError(f"{label} has no audit entry; the slot history was edited")
        e = logged[n]
        d = e.detail
        expected: dict[str, Any] = {
            "action": e.action, "to_version": (e.target or "").rpartition("@")[2],
            "from_version": d.get("from_version"), "to_digest": d.get("digest"),
            "actor": e.actor, "reason": d.get("reason"), "policy_digest": d.get("policy"),
            "gates": d.get("gates"),
        }
        actual: dict[str, Any] = {
            "action": ev.action, "to_version": str(ev.to_version),
            "from_version": ev.from_version, "to_digest": ev.to_digest, "actor": ev.actor,
            "reason": ev.reason, "policy_digest": ev.policy_digest,
            "gates": [g.get("gate") for g in ev.gates],
        }
        if "event_id" in d:  # recorded with the move's own time and row id
            expected["at"], actual["at"] = e.at, ev.at
            expected["id"], actual["id"] = d["event_id"], ev.id
        changed = sorted(k for k in expected if expected[k] != actual[k])
        if changed:
            raise AuditChainError(
                f"{label} was altered: {', '.join(changed)} differ from audit entry "
                f"#{e.seq}; the slot history was edited")


def _check_counts(session: Session, actions: dict[str, int]) -> str | None:
    """Each state change the tables hold has its entry: none was cut from the log. Raise
    for more rows than entries; return the message for fewer (rows deleted), which the
    rows check names more precisely when their entries recorded them."""
    from llmreg.db.models import Approval, Evidence, PolicyRecord, SlotEvent, Token, Version

    expected = [
        (("register",), Version, "versions"),
        (("evidence",), Evidence, "pieces of evidence"),
        (("approval",), Approval, "approvals"),
        (("promote", "rollback", "import"), SlotEvent, "slot moves"),
        (("token-create",), Token, "tokens"),
        (("policy",), PolicyRecord, "enforced policies"),
    ]
    fewer: str | None = None
    for names, model, what in expected:
        rows = session.exec(select(sa.func.count()).select_from(model)).one()
        logged = sum(actions.get(n, 0) for n in names)
        if logged < rows:
            raise AuditChainError(
                f"the audit log records {logged} {'/'.join(names)} entries but the registry "
                f"holds {rows} {what}; entries were removed from the log (or rows added "
                "around it)")
        if logged > rows and fewer is None:
            fewer = (f"the audit log records {logged} {'/'.join(names)} entries but the "
                    f"registry holds {rows} {what}; rows were deleted outside the registry; "
                    "restore them from a backup")
    return fewer


def head(db: Database) -> str | None:
    """The newest entry's hash: note it, and ``verify(head=…)`` proves nothing was cut."""
    with db.read() as session:
        return session.exec(select(AuditEntry.hash).order_by(col(AuditEntry.seq).desc())
                            .limit(1)).first()


def tail_in(session: Session) -> tuple[int, str] | None:
    """The newest entry's ``(seq, hash)`` as ``session`` sees it (None for an empty log):
    what a webhook event and the signed mirror publish as the head.

    Example:
        >>> with svc.db.read() as s:  # doctest: +SKIP
        ...     tail_in(s)
        (3, 'sha256:…')
    """
    last = session.execute(_TAIL).first()
    return (int(last[0]), str(last[1])) if last else None


class AuditLog:
    """The audit log of one registry, read: its entries, the chain verified, its head.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from llmreg.bundle.schema import Bundle
        >>> from llmreg.service import RegistryService
        >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
        >>> b = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
        ...                       "template": {"source": "Hi"}})
        >>> _ = svc.versions.register(b, name="chat", message="first", author="ana")
        >>> [(e.seq, e.action, e.target) for e in svc.audit.entries("chat")]
        [(1, 'register', 'chat@1')]
        >>> svc.audit.verify(svc.audit.head())
        1
        >>> svc.close()
    """

    def __init__(self, db: Database, policy: Policy) -> None:
        self.db = db
        self.policy = policy

    def entries(self, name: str | None = None, limit: int | None = None,
                env: str | None = None) -> list[AuditInfo]:
        """Audit entries, oldest first (of one name; of one environment, across names;
        ``limit``: only the last N)."""
        canonical = self.policy.canonical_env(env) if env is not None else None
        return entries(self.db, name, limit, env=canonical)

    def verify(self, head: str | None = None) -> int:
        """Recompute the hash chain: the entry count, or ``AuditChainError`` naming the
        break (a missing ``head``, entries fewer than the state changes they record)."""
        return verify(self.db, head)

    def check(self, head: str | None = None) -> AuditCheck:
        """:meth:`verify`, with what it found (rows checked, rows only counted, the anchor)."""
        return check(self.db, head)

    def head(self) -> str | None:
        """The newest audit entry's hash (None for an empty log)."""
        return head(self.db)

    def tail(self) -> tuple[int, str] | None:
        """The newest audit entry's ``(seq, hash)`` (None for an empty log)."""
        with self.db.read() as session:
            return tail_in(session)
