"""The rows the audit chain covers: what each audited write records, and how ``audit
verify`` checks the tables against it.

Every row that decides what runs or who may act — versions (digest, status, archive
tag), slots, tokens (role, secret, revocation), evidence, approvals, owners and the
enforced policies — is written together with an audit entry whose ``detail["rows"]``
holds the row's fields after the write, keyed ``table/key``::

    "rows": {"slots/chat/production": {"version": 3, "digest": "sha256:…", …}}

The entry's hash binds those fields, so ``verify`` rebuilds the newest audited state of
every key from the chain and compares each table with it: a row whose field differs, a
row no entry recorded, and a recorded row that is gone are named, one at a time
(:func:`check_rows`). Long values (a provenance, a changelog) are recorded as the
``sha256:`` of their canonical JSON, and a token's secret hash only as its hash.

Entries written before this (a registry upgraded from 0.x) carry no ``rows``. For them
the chain is still read for what it recorded (:func:`legacy_rows`): a slot's version
and digest from its moves, a token's subject, role and revocation, evidence's suite and
metrics, an owner's team and contacts, a version's digest. A row of such a registry
that no entry recorded at all is left to the per-action counts, and ``verify`` says how
many there were. A token recorded before tokens could expire (no ``expires_at`` in its
fields) is read as recorded with no expiry, which is what it had then.

Example:
    >>> from llmreg.db.models import Owner
    >>> from datetime import UTC, datetime
    >>> o = Owner(name_id=1, team="search", contacts=["s@example.com"],
    ...           updated_at=datetime(2026, 1, 2, tzinfo=UTC), updated_by="ana")
    >>> key, fields = owner_row("chat", o)
    >>> key, fields["team"], fields["updated_at"]
    ('owners/chat', 'search', '2026-01-02T00:00:00.000000Z')
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from llmreg.bundle.digest import canonical_json, digest_bytes
from llmreg.db.models import (
    Approval,
    BundleName,
    Evidence,
    Owner,
    PolicyRecord,
    Slot,
    Token,
    Version,
)
from llmreg.errors import AuditChainError, shown

Fields = dict[str, Any]
Row = tuple[str, Fields]
LONG = 200  # a JSON value longer than this is recorded by its digest
# The actions whose entries record rows; one of these without ``rows`` is from before.
RECORDING = frozenset({"register", "evidence", "approval", "promote", "rollback", "import",
                       "token-create", "token-revoke", "owner", "policy", "deprecate",
                       "archive", "restore"})


class _Set:
    """A legacy revocation: the entry says the token was revoked, not the exact time."""

    def __eq__(self, other: object) -> bool:
        return other is not None

    def __hash__(self) -> int:  # pragma: no cover - never hashed, kept hashable
        return 0

    def __repr__(self) -> str:
        return "a revocation time"


REVOKED = _Set()


def value(v: Any) -> Any:
    """A field as an audit entry records it: times as UTC ISO text, long JSON by digest.

    Example:
        >>> value(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)), value(3), value("x" * 300)[:7]
        ('2026-01-02T03:04:05.000000Z', 3, 'sha256:')
    """
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(v, (dict, list, str)) and len(canonical_json(v)) > LONG:
        return digest_bytes(canonical_json(v))
    return v


def _fields(obj: Any, names: tuple[str, ...]) -> Fields:
    get = obj.get if isinstance(obj, Mapping) else lambda n: getattr(obj, n)
    return {n: value(get(n)) for n in names}


_VERSION = ("digest", "author", "created_at", "message", "parent_digest", "provenance",
            "changes", "diff_digest", "status", "retired_at", "retire_rule", "retire_policy")


def version_row(name: str, v: Version | Mapping[str, Any]) -> Row:
    """``versions/NAME@N``: what the version is, and its status and archive tag."""
    number = v["number"] if isinstance(v, Mapping) else v.number
    return f"versions/{name}@{number}", _fields(v, _VERSION)


def slot_row(name: str, env: str, version: int, digest: str, at: datetime, by: str) -> Row:
    """``slots/NAME/ENV``: the version and digest the slot points to, since when, by whom."""
    return f"slots/{name}/{env}", {"version": version, "digest": digest,
                                   "updated_at": value(at), "updated_by": by}


def token_row(t: Token) -> Row:
    """``tokens/ID``: subject, role, revocation, expiry, and the secret's hash (hashed
    again)."""
    fields = _fields(t, ("subject", "role", "created_at", "created_by", "revoked_at",
                         "expires_at"))
    fields["secret"] = digest_bytes(t.secret_hash.encode())
    fields["teams"] = t.teams  # None: unscoped (as every row recorded before teams)
    return f"tokens/{t.token_id}", fields


def evidence_row(e: Evidence) -> Row:
    """``evidence/ID``: the digest it is bound to, suite, metrics, verdict, report."""
    return f"evidence/{e.id}", _fields(e, ("digest", "type", "suite", "metrics", "passed",
                                           "report_digest", "links", "created_by",
                                           "created_at"))


def approval_row(name: str, a: Approval) -> Row:
    """``approvals/ID``: who approved which digest of which name for which environment."""
    fields = _fields(a, ("digest", "env", "approver", "roles", "comment", "created_at"))
    fields["teams"] = a.teams  # None: embedded, or recorded before teams
    return f"approvals/{a.id}", {"name": name, **fields}


def owner_row(name: str, o: Owner) -> Row:
    """``owners/NAME``: the owning team and its contacts."""
    return f"owners/{name}", _fields(o, ("team", "contacts", "updated_at", "updated_by"))


def policy_row(p: PolicyRecord) -> Row:
    """``policies/ID``: a policy digest the registry enforced, when and for whom."""
    return f"policies/{p.id}", _fields(p, ("digest", "seen_at", "seen_by"))


def table_rows(s: Session) -> Iterator[Row]:
    """Every covered row as it is in the database now, in the same form as recorded."""
    names = dict(s.exec(select(BundleName.id, BundleName.name)).all())
    for v in s.exec(select(Version).order_by(col(Version.id))):
        yield version_row(names.get(v.name_id, f"#{v.name_id}"), v)
    for sl in s.exec(select(Slot).order_by(col(Slot.id))):
        yield slot_row(names.get(sl.name_id, f"#{sl.name_id}"), sl.env, sl.version, sl.digest,
                       sl.updated_at, sl.updated_by)
    for t in s.exec(select(Token).order_by(col(Token.id))):
        yield token_row(t)
    for e in s.exec(select(Evidence).order_by(col(Evidence.id))):
        yield evidence_row(e)
    for a in s.exec(select(Approval).order_by(col(Approval.id))):
        yield approval_row(names.get(a.name_id, f"#{a.name_id}"), a)
    for o in s.exec(select(Owner).order_by(col(Owner.name_id))):
        yield owner_row(names.get(o.name_id, f"#{o.name_id}"), o)
    for p in s.exec(select(PolicyRecord).order_by(col(PolicyRecord.id))):
        yield policy_row(p)


def legacy_rows(action: str, name: str | None, target: str | None, env: str | None,
                detail: dict[str, Any]) -> list[Row]:
    """What an entry written without ``rows`` still says about the rows it changed (only
    the fields it recorded; the rest of such a row is checked by counts).

    Example:
        >>> legacy_rows("token-revoke", None, "a1b2", None, {"subject": "ci"})
        [('tokens/a1b2', {'revoked_at': a revocation time})]
    """
    d = detail
    if target is None:  # names no row (not written by llmreg)
        return []
    if action in ("promote", "rollback", "import"):
        number = target.rpartition("@")[2]
        if not number.isdigit():
            return []
        return [(f"slots/{name}/{env}", {"version": int(number), "digest": d.get("digest")})]
    if action == "register":
        return [(f"versions/{target}", {"digest": d.get("digest")})]
    if action == "token-create":
        return [(f"tokens/{target}", {"subject": d.get("subject"), "role": d.get("role"),
                                      "revoked_at": None, "expires_at": None})]
    if action == "token-revoke":
        return [(f"tokens/{target}", {"revoked_at": REVOKED})]
    if action == "evidence" and "evidence_id" in d:
        return [(f"evidence/{d['evidence_id']}",
                 {"digest": d.get("digest"), "type": d.get("type"), "suite": d.get("suite"),
                  "metrics": value(d.get("metrics")), "passed": d.get("passed"),
                  "report_digest": d.get("report")})]
    if action == "owner" and isinstance(d.get("to"), dict):
        return [(f"owners/{target}", {"team": d["to"].get("team"),
                                      "contacts": value(d["to"].get("contacts"))})]
    return []


@dataclass
class Audited:
    """The newest recorded fields of each key, and the entry that recorded them."""

    fields: dict[str, Fields]
    seq: dict[str, int]
    legacy: bool = False  # some entry that changed a covered row recorded none of it

    def record(self, seq: int, action: str, name: str | None, target: str | None,
               env: str | None, detail: dict[str, Any]) -> None:
        """Read one verified entry (in order)."""
        rows = detail.get("rows")
        if rows is None:
            if action in RECORDING:
                self.legacy = True
                for key, fields in legacy_rows(action, name, target, env, detail):
                    self.fields[key] = {**self.fields.get(key, {}), **fields}
                    self.seq[key] = seq
            return
        if not isinstance(rows, dict):
            raise AuditChainError(f"audit entry #{seq} records rows as {shown(rows)}, not an "
                                  "object of rows; it was not written by llmreg")
        for key, fields in rows.items():
            self.fields[key] = dict(fields)
            if key.startswith("tokens/") and isinstance(fields, dict):
                # Recorded before tokens could expire (0009): such a token never expires;
                # before teams (0010): it is unscoped.
                self.fields[key].setdefault("expires_at", None)
                self.fields[key].setdefault("teams", None)
            if key.startswith("approvals/") and isinstance(fields, dict):
                self.fields[key].setdefault("teams", None)  # recorded before teams
            self.seq[key] = seq


def check_rows(s: Session, audited: Audited) -> tuple[int, int]:
    """Compare every covered row with its newest audited fields; return (rows that
    matched, rows of an upgraded registry that no entry recorded), or raise naming the
    first row that disagrees: the table, the key, the field, both values and the fix.
    """
    seen: set[str] = set()
    matched = unrecorded = 0
    for key, fields in table_rows(s):
        seen.add(key)
        table, _, ident = key.partition("/")
        want = audited.fields.get(key)
        if want is None:
            if audited.legacy:
                unrecorded += 1
                continue
            raise AuditChainError(
                f"{table} row {ident} has no audit entry: it was written outside the "
                "registry; delete it (or restore the entries that recorded it)")
        for field in sorted(want):
            if fields.get(field) != want[field]:
                raise AuditChainError(
                    f"{table} row {ident}: {field} is {shown(fields.get(field), 80)} but "
                    f"audit entry #{audited.seq[key]} recorded {shown(want[field], 80)}; "
                    "the row was edited outside the registry; set it back to the audited "
                    "value")
        matched += 1
    for key in audited.fields:
        if key not in seen:
            table, _, ident = key.partition("/")
            raise AuditChainError(
                f"{table} row {ident} is gone, but audit entry #{audited.seq[key]} recorded "
                "it: it was deleted outside the registry; restore it from that entry's rows")
    return matched, unrecorded
