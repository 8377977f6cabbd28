"""The rows the audit chain covers (llmreg.service.audited): someone with database access
edits, deletes or adds a row that decides what runs or who may act, and ``audit verify``
names it — the table, the key, the field, both values and the fix — on SQLite and on
PostgreSQL. Each kind of row is tampered with on several fields, and every column of
every covered table is changed in turn (the class, not the payloads listed here)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import text
from sqlmodel import SQLModel

from llmreg.db.models import (
    Approval,
    AuditEntry,
    BundleName,
    Evidence,
    Owner,
    PolicyRecord,
    Slot,
    Token,
    UTCDateTime,
    Version,
    table,
)
from llmreg.errors import AuditChainError
from llmreg.service import RegistryService, audit, audited
from llmreg.service.audited import REVOKED, Audited, legacy_rows, value
from tests.service.conftest import on_each_database
from tests.service.lifecycle.test_lifecycle import (
    ANA,
    ready_for_production,
    register,
    to_staging,
)

svc = pytest.fixture(on_each_database, name="svc")


def fleet(svc: RegistryService) -> dict[str, Any]:
    """One of every covered row: versions (one archived), slots in staging and production,
    evidence, approvals, an owner, a live token and a revoked one, the policy."""
    one, two, three = register(svc, 1), register(svc, 2), register(svc, 3)
    svc.owners.set("chat", team="search", contacts=["search@example.com"], actor=ANA)
    to_staging(svc, one)
    ready_for_production(svc, one)
    svc.lifecycle.promote(one, "production", actor=ANA, reason="passes")
    to_staging(svc, two)  # chat@1 leaves staging: it keeps production
    svc.lifecycle.archive(three, actor=ANA, reason="never used")
    _, live = svc.access.create_token("ci", "publisher", created_by="ana")
    _, gone = svc.access.create_token("old-ci", "admin", created_by="ana")
    svc.access.revoke_token(gone.token_id, actor="ana")
    _, scoped = svc.access.create_token("search-ci", teams={"search": "publisher"},
                                        created_by="ana")
    return {"live": live.token_id, "revoked": gone.token_id, "scoped": scoped.token_id}


def sql(svc: RegistryService, statements: str, **params: Any) -> None:
    with svc.db.write_engine.begin() as conn:  # someone with database access
        for statement in statements.split(";\n"):
            conn.execute(text(statement), params)


def broken(svc: RegistryService) -> str:
    with pytest.raises(AuditChainError) as info:
        svc.audit.verify()
    return str(info.value)


def test_an_untouched_registry_verifies_every_covered_row(svc: RegistryService) -> None:
    fleet(svc)
    found = svc.audit.check()
    # 3 versions, 2 slots, 1 evidence, 2 approvals, 1 owner, 3 tokens, 1 policy
    assert (found.rows, found.unrecorded) == (13, 0)
    assert (found.seq, found.head, found.anchor) == (found.entries, svc.audit.head(), None)
    assert svc.audit.check(svc.audit.head()).anchor == svc.audit.head()
    assert svc.audit.tail() == (found.entries, svc.audit.head())


# --- each kind of row, several fields, the exact message ---------------------------------

CHAT = "(SELECT id FROM bundle_names WHERE name = 'chat')"
# Another manifest to point a version at (the digest column is a foreign key).
MANIFEST = ("INSERT INTO manifests (digest, size, kind, created_at) SELECT 'sha256:" + "2" * 64
            + "', size, kind, created_at FROM manifests WHERE digest = (SELECT digest FROM "
            "versions WHERE number = 2);\n")


@pytest.mark.parametrize(("statement", "named"), [
    # the production pointer moved, to another version or another digest, or re-signed
    (f"UPDATE slots SET version = 2 WHERE env = 'production' AND name_id = {CHAT}",
     "slots row chat/production: version is 2 but audit entry #{seq} recorded 1"),
    ("UPDATE slots SET digest = (SELECT digest FROM versions WHERE number = 2) "
     "WHERE env = 'production'", "slots row chat/production: digest is 'sha256:"),
    ("UPDATE slots SET updated_by = 'mallory' WHERE env = 'production'",
     "slots row chat/production: updated_by is 'mallory' but audit entry #{seq} recorded "
     "'ana'"),
    # the archive tag and status: an archived version made promotable again
    ("UPDATE versions SET status = 'registered' WHERE number = 3",
     "versions row chat@3: status is 'registered' but audit entry #{seq} recorded "
     "'archived'"),
    ("UPDATE versions SET retire_rule = NULL, retired_at = NULL WHERE number = 3",
     "versions row chat@3: retire_rule is None but audit entry #{seq} recorded 'manual'"),
    (MANIFEST + "UPDATE versions SET digest = 'sha256:" + "2" * 64 + "' WHERE number = 1",
     "versions row chat@1: digest is 'sha256:2222"),
    ("UPDATE versions SET author = 'mallory' WHERE number = 1",
     "versions row chat@1: author is 'mallory' but audit entry #{seq} recorded 'ana'"),
    # tokens: role raised, revocation undone, secret replaced
    ("UPDATE tokens SET role = 'admin' WHERE subject = 'ci'",
     "tokens row {live}: role is 'admin' but audit entry #{seq} recorded 'publisher'"),
    ("UPDATE tokens SET revoked_at = NULL WHERE subject = 'old-ci'",
     "tokens row {revoked}: revoked_at is None but audit entry #{seq} recorded '20"),
    ("UPDATE tokens SET secret_hash = 'sha256:" + "0" * 64 + "' WHERE subject = 'ci'",
     "tokens row {live}: secret is 'sha256:"),
    ("UPDATE tokens SET subject = 'ana' WHERE subject = 'ci'",
     "tokens row {live}: subject is 'ana' but audit entry #{seq} recorded 'ci'"),
    # an expiry given to a token that had none (the revoked one: any later token too)
    ("UPDATE tokens SET expires_at = created_at WHERE subject = 'old-ci'",
     "tokens row {revoked}: expires_at is '20"),
    # evidence raised to pass a gate
    ("UPDATE evidence SET metrics = '{\"accuracy\": 0.99}'",
     "evidence row 1: metrics is {{'accuracy': 0.99}} but audit entry #{seq} recorded "
     "{{'accuracy': 0.93}}"),
    ("UPDATE evidence SET passed = TRUE", "evidence row 1: passed is True but audit entry "
                                          "#{seq} recorded None"),
    ("UPDATE evidence SET suite = 'other'",
     "evidence row 1: suite is 'other' but audit entry #{seq} recorded 'regression'"),
    # approvals: who approved, for which environment
    ("UPDATE approvals SET approver = 'mallory' WHERE approver = 'bo'",
     "approvals row {approval}: approver is 'mallory' but audit entry #{seq} recorded 'bo'"),
    ("UPDATE approvals SET env = 'shadow' WHERE approver = 'bo'",
     "approvals row {approval}: env is 'shadow' but audit entry #{seq} recorded "
     "'production'"),
    ("UPDATE approvals SET comment = 'lgtm' WHERE approver = 'bo'",
     "approvals row {approval}: comment is 'lgtm' but audit entry #{seq} recorded ''"),
    # owners: another team takes the name
    ("UPDATE owners SET team = 'mallory-team'",
     "owners row chat: team is 'mallory-team' but audit entry #{seq} recorded 'search'"),
    ("UPDATE owners SET contacts = '[\"evil@example.com\"]'",
     "owners row chat: contacts is ['evil@example.com'] but audit entry #{seq} recorded "
     "['search@example.com']"),
    # the policy in force
    ("UPDATE policies SET digest = 'sha256:" + "1" * 64 + "'",
     "policies row 1: digest is 'sha256:" + "1" * 64 + "' but audit entry #{seq} recorded"),
    ("UPDATE policies SET seen_by = 'mallory'",
     "policies row 1: seen_by is 'mallory' but audit entry #{seq} recorded 'ana'"),
])
def test_an_edited_row_is_named_with_its_field_and_both_values(
        svc: RegistryService, statement: str, named: str) -> None:
    tokens = fleet(svc)
    with svc.db.read() as s:
        approval = s.execute(sa.select(table(Approval).c.id).where(
            table(Approval).c.approver == "bo")).scalar_one()
    sql(svc, statement)
    message = broken(svc)
    prefix = named.split("#{seq}")[0].format(approval=approval, **tokens)
    assert message.startswith(prefix), message
    assert message.endswith("; the row was edited outside the registry; set it back to "
                            "the audited value")
    assert "\n" not in message
    seq = int(message.split("audit entry #")[1].split(" ")[0]) if "#" in message else 0
    assert 0 < seq <= len(svc.audit.entries())


@pytest.mark.parametrize(("statement", "named"), [
    ("DELETE FROM slots WHERE env = 'production'",
     "slots row chat/production is gone, but audit entry #"),
    ("DELETE FROM owners", "owners row chat is gone, but audit entry #"),
    ("DELETE FROM approvals WHERE approver = 'cy'", "approvals row "),
    ("DELETE FROM tokens WHERE subject = 'old-ci'", "tokens row "),
    ("DELETE FROM evidence", "evidence row 1 is gone"),
])
def test_a_deleted_row_is_named(svc: RegistryService, statement: str, named: str) -> None:
    fleet(svc)
    sql(svc, statement)
    message = broken(svc)
    assert message.startswith(named), message
    assert message.endswith("it was deleted outside the registry; restore it from that "
                            "entry's rows")


def test_a_row_added_outside_the_registry_is_named(svc: RegistryService) -> None:
    fleet(svc)
    sql(svc, f"INSERT INTO slots (name_id, env, version, digest, updated_at, updated_by) "
             f"SELECT {CHAT}, 'shadow', 2, digest, updated_at, 'mallory' FROM slots "
             "WHERE env = 'production'")
    assert broken(svc) == ("slots row chat/shadow has no audit entry: it was written outside "
                           "the registry; delete it (or restore the entries that recorded it)")


def test_a_renamed_name_is_caught_through_its_rows(svc: RegistryService) -> None:
    fleet(svc)
    sql(svc, "UPDATE bundle_names SET name = 'chat2' WHERE name = 'chat'")
    message = broken(svc)  # the slot history is checked first, then the rows
    assert "(chat2/staging promote to @1 by ana) has no audit entry" in message


def test_the_fix_the_message_names_makes_verify_pass_again(svc: RegistryService) -> None:
    tokens = fleet(svc)
    sql(svc, "UPDATE tokens SET revoked_at = NULL WHERE token_id = :t", t=tokens["revoked"])
    assert broken(svc).startswith(f"tokens row {tokens['revoked']}: revoked_at is None")
    assert svc.access.authenticate("x") is None
    svc.access.revoke_token(tokens["revoked"], actor="ana")  # the registry's own fix
    assert svc.audit.verify() == len(svc.audit.entries())


# --- every column of every covered table, changed in turn --------------------------------

# Surrogate ids that nothing refers to: a row is known by its name there (versions by
# name@number, slots by name/env, tokens by token id), so renumbering one changes nothing.
UNCHECKED = {("versions", "id"), ("slots", "id"), ("tokens", "id"),
             ("bundle_names", "id"), ("bundle_names", "created_at"),
             ("bundle_names", "latest_version")}
COVERED: list[type[SQLModel]] = [Version, Slot, Token, Evidence, Approval, Owner,
                                 PolicyRecord, BundleName]


def changed(v: Any, column: sa.Column[Any]) -> Any:
    """A different value of the same type (what one edit, or one flipped byte, does)."""
    if v is None:
        kind = column.type
        if isinstance(kind, UTCDateTime):
            return datetime(2026, 1, 1, tzinfo=UTC)
        if isinstance(kind, sa.Boolean):
            return True
        if isinstance(kind, sa.Integer):
            return 1
        return ["x"] if isinstance(kind, sa.JSON) else "x"
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 1
    if isinstance(v, datetime):
        return v + timedelta(seconds=1)
    if isinstance(v, str):
        return v[:-1] + ("0" if v[-1:] != "0" else "1") if v else "x"
    if isinstance(v, dict):
        return {**v, "x": 1}
    assert isinstance(v, list), v
    return [*v, "x"]


def test_every_field_of_every_covered_row_is_checked(svc: RegistryService) -> None:
    fleet(svc)
    tried = caught = 0
    for model in COVERED:
        t = table(model)
        keys = [c for c in t.primary_key.columns]
        with svc.db.read() as s:
            rows = s.execute(sa.select(t)).mappings().all()
        for row in rows:
            where = sa.and_(*(k == row[k.name] for k in keys))
            for column in t.columns:
                if (t.name, column.name) in UNCHECKED:
                    continue
                new = changed(row[column.name], column)
                try:
                    with svc.db.write_engine.begin() as conn:
                        conn.execute(sa.update(t).where(where).values({column.name: new}))
                except sa.exc.DBAPIError:  # the schema itself refuses it (a constraint)
                    continue
                tried += 1
                try:
                    svc.audit.verify()
                except AuditChainError:
                    caught += 1
                else:
                    pytest.fail(f"{t.name}.{column.name} = {new!r} was not caught")
                finally:
                    moved = {k.name: (new if k.name == column.name else row[k.name])
                             for k in keys}
                    with svc.db.write_engine.begin() as conn:
                        conn.execute(sa.update(t).where(sa.and_(
                            *(k == moved[k.name] for k in keys))).values(
                                {column.name: row[column.name]}))
    assert tried == caught and tried > 80
    assert svc.audit.verify() == len(svc.audit.entries())  # every edit undone


# --- a registry upgraded from before rows were recorded ----------------------------------

def rechain(svc: RegistryService, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Rewrite every entry's detail with ``edit`` and chain the log again, as an older
    llmreg would have written it."""
    with svc.db.write_engine.begin() as conn:
        found = conn.execute(sa.select(table(AuditEntry)).order_by(
            table(AuditEntry).c.seq)).mappings().all()
        prev = audit.GENESIS
        for e in found:
            detail = edit(dict(e["detail"]))
            h = audit.entry_hash(e["seq"], e["at"], e["actor"], e["action"], e["name"],
                                 e["target"], e["env"], detail, prev)
            conn.execute(sa.update(table(AuditEntry)).where(
                table(AuditEntry).c.seq == e["seq"]).values(
                    detail=detail, prev_hash=prev, hash=h))
            prev = h


def strip_rows(svc: RegistryService) -> None:
    """Rewrite the log as 0.x wrote it (no ``rows``), chained again: an older registry."""
    rechain(svc, lambda detail: {k: v for k, v in detail.items() if k != "rows"})


def test_an_old_log_checks_what_its_entries_recorded_and_counts_the_rest(
        svc: RegistryService) -> None:
    tokens = fleet(svc)
    strip_rows(svc)
    found = svc.audit.check()
    # versions (digest), slots, evidence, owner and tokens rebuilt from the old entries;
    # approvals and the policy row were not recorded then: counted only
    assert (found.rows, found.unrecorded) == (10, 3)
    for statement, named in [
        ("UPDATE slots SET version = 2 WHERE env = 'production'",
         "slots row chat/production: version is 2 but audit entry #"),
        ("UPDATE tokens SET revoked_at = NULL WHERE token_id = :revoked",
         f"tokens row {tokens['revoked']}: revoked_at is None but audit entry #"),
        ("UPDATE tokens SET role = 'admin' WHERE token_id = :live",
         f"tokens row {tokens['live']}: role is 'admin'"),
        ("UPDATE evidence SET metrics = '{\"accuracy\": 1.0}'",
         "evidence row 1: metrics is {'accuracy': 1.0}"),
        ("UPDATE owners SET team = 'x'", "owners row chat: team is 'x'"),
        (MANIFEST + "UPDATE versions SET digest = 'sha256:" + "2" * 64 + "' WHERE number = 1",
         "versions row chat@1: digest is 'sha256:2222"),
    ]:
        with svc.db.read() as s:
            before = {m: s.execute(sa.select(table(m))).mappings().all()
                      for m in (Slot, Token, Evidence, Owner, Version)}
        sql(svc, statement, **tokens)
        assert broken(svc).startswith(named)
        with svc.db.write_engine.begin() as conn:  # put it back
            for m, rows in before.items():
                t = table(m)
                for r in rows:
                    keys = list(t.primary_key.columns)
                    conn.execute(sa.update(t).where(sa.and_(*(k == r[k.name] for k in keys)))
                                 .values(dict(r)))
        assert svc.audit.verify() == found.entries
    # the next write records its rows in full: that row is fully covered from then on
    svc.owners.set("chat", team="search-2", contacts=["s@example.com"], actor=ANA)
    sql(svc, "UPDATE owners SET updated_by = 'x'")
    assert broken(svc).startswith("owners row chat: updated_by is 'x'")


def test_a_legacy_revocation_is_any_time_and_never_none() -> None:
    assert REVOKED == "2026-01-01T00:00:00.000000Z" and REVOKED != None  # noqa: E711
    assert repr(REVOKED) == "a revocation time"


@pytest.mark.parametrize(("entry", "rows"), [
    (("promote", "chat", "chat@3", "production", {"digest": "d"}),
     [("slots/chat/production", {"version": 3, "digest": "d"})]),
    (("import", "chat", "chat@x", "production", {"digest": "d"}), []),
    (("rollback", "chat", None, "production", {"digest": "d"}), []),
    (("register", "chat", "chat@2", None, {"digest": "d", "message": "m"}),
     [("versions/chat@2", {"digest": "d"})]),
    (("token-create", None, "t1", None, {"subject": "ci", "role": "reader"}),
     [("tokens/t1", {"subject": "ci", "role": "reader", "revoked_at": None,
                     "expires_at": None})]),
    (("evidence", "chat", "chat@1", None, {"suite": "s"}), []),
    (("evidence", "chat", "chat@1", None,
      {"evidence_id": 4, "type": "eval", "suite": "s", "metrics": {"a": 1}, "digest": "d",
       "passed": False, "report": None}),
     [("evidence/4", {"digest": "d", "type": "eval", "suite": "s", "metrics": {"a": 1},
                      "passed": False, "report_digest": None})]),
    (("owner", "chat", "chat", None, {"from": None, "to": {"team": "t", "contacts": ["c"]}}),
     [("owners/chat", {"team": "t", "contacts": ["c"]})]),
    (("owner", "chat", "chat", None, {"to": "nonsense"}), []),
    (("approval", "chat", "chat@1", "production", {"digest": "d"}), []),
])
def test_what_an_old_entry_still_says(entry: tuple[Any, ...], rows: list[Any]) -> None:
    assert legacy_rows(*entry) == rows


def test_only_entries_that_change_covered_rows_mark_an_old_log() -> None:
    seen = Audited({}, {})
    seen.record(1, "webhook-add", None, "webhook/1", None, {})
    seen.record(2, "alert-open", "chat", "chat", "production", {})
    assert not seen.legacy and seen.fields == {}
    seen.record(3, "approval", "chat", "chat@1", "production", {"digest": "d"})
    assert seen.legacy and seen.fields == {}
    seen.record(4, "token-create", None, "t1", None, {"subject": "a", "role": "reader"})
    seen.record(5, "token-revoke", None, "t1", None, {"subject": "a"})
    assert seen.fields["tokens/t1"] == {"subject": "a", "role": "reader", "revoked_at": REVOKED,
                                        "expires_at": None}
    assert seen.seq["tokens/t1"] == 5
    seen.record(6, "token-revoke", None, "t1", None, {"rows": {"tokens/t1": {"role": "x"}}})
    # recorded before tokens could expire (or have teams): read as no expiry, unscoped
    assert (seen.fields["tokens/t1"], seen.seq["tokens/t1"]) == ({"role": "x",
                                                                  "expires_at": None,
                                                                  "teams": None}, 6)
    with pytest.raises(AuditChainError, match=r"^audit entry #7 records rows as \['x'\], not "
                                              r"an object of rows; it was not written by "
                                              r"llmreg$"):
        seen.record(7, "owner", None, None, None, {"rows": ["x"]})


def test_long_values_are_recorded_by_digest_and_short_ones_as_they_are() -> None:
    from llmreg.bundle.digest import canonical_json, digest_bytes

    fits = "x" * (audited.LONG - 2)  # with its quotes: exactly LONG bytes of JSON
    assert value(fits) == fits
    assert value(fits + "x") == digest_bytes(canonical_json(fits + "x"))
    assert value({"k": "v"}) == {"k": "v"} and value([1]) == [1] and value(None) is None
    assert value(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "2026-01-02T03:04:05.000006Z"
    assert value(7) == 7 and value(1.5) == 1.5


def test_a_token_records_its_secret_only_as_a_hash(svc: RegistryService) -> None:
    secret, info = svc.access.create_token("ci", "reader", created_by="ana")
    entry = svc.audit.entries()[-1]
    recorded = entry.detail["rows"][f"tokens/{info.token_id}"]
    with svc.db.read() as s:
        stored = s.execute(sa.select(table(Token).c.secret_hash)).scalar_one()
    assert stored not in str(entry.detail) and secret not in str(entry.detail)
    assert recorded["secret"].startswith("sha256:") and recorded["revoked_at"] is None


# --- token expiry (0009) -------------------------------------------------------------------

def expiring(svc: RegistryService) -> dict[str, str]:
    """The fleet, plus a token expiring in 90 days and one rotated from it (12 hours)."""
    tokens = fleet(svc)
    _, first = svc.access.create_token("deploy", "publisher", created_by="ana", expires="90d")
    _, second = svc.access.rotate_token(first.token_id, actor="ana", expires="12h")
    return {**tokens, "rotated": first.token_id, "expiring": second.token_id}


@pytest.mark.parametrize(("statement", "named"), [
    # the expiry removed: the token would work for ever
    ("UPDATE tokens SET expires_at = NULL WHERE token_id = :expiring",
     "tokens row {expiring}: expires_at is None but audit entry #{seq} recorded '20"),
    # extended (to the time the other one was made: any other time does the same)
    ("UPDATE tokens SET expires_at = created_at WHERE token_id = :expiring",
     "tokens row {expiring}: expires_at is '20"),
    ("UPDATE tokens SET expires_at = NULL WHERE token_id = :rotated",
     "tokens row {rotated}: expires_at is None but audit entry #{seq} recorded '20"),
    # the rotation undone
    ("UPDATE tokens SET revoked_at = NULL WHERE token_id = :rotated",
     "tokens row {rotated}: revoked_at is None but audit entry #{seq} recorded '20"),
])
def test_an_edited_expiry_is_named(svc: RegistryService, statement: str, named: str) -> None:
    tokens = expiring(svc)
    assert svc.audit.verify() == len(svc.audit.entries())
    sql(svc, statement, **tokens)
    message = broken(svc)
    assert message.startswith(named.split("#{seq}")[0].format(**tokens)), message
    assert message.endswith("the row was edited outside the registry; set it back to the "
                            "audited value")


def forget_expiry(svc: RegistryService) -> None:
    """Rewrite the log as llmreg wrote it before 0009 (token rows without ``expires_at``),
    chained again."""
    def edit(detail: dict[str, Any]) -> dict[str, Any]:
        if "rows" in detail:
            detail["rows"] = {k: {f: v for f, v in fields.items() if f != "expires_at"}
                              for k, fields in detail["rows"].items()}
        return detail

    rechain(svc, edit)


def test_token_rows_recorded_before_expiry_existed_keep_verifying(
        svc: RegistryService) -> None:
    tokens = fleet(svc)
    forget_expiry(svc)
    found = svc.audit.check()
    assert (found.rows, found.unrecorded) == (13, 0)
    # such a token had no expiry: one given to it now is named
    sql(svc, "UPDATE tokens SET expires_at = created_at WHERE token_id = :live", **tokens)
    assert broken(svc).startswith(f"tokens row {tokens['live']}: expires_at is '20")
    sql(svc, "UPDATE tokens SET expires_at = NULL WHERE token_id = :live", **tokens)
    assert svc.audit.verify() == found.entries
    # and a token created after the upgrade records its expiry as usual
    _, new = svc.access.create_token("ci2", "reader", created_by="ana", expires="7d")
    sql(svc, "UPDATE tokens SET expires_at = NULL WHERE token_id = :t", t=new.token_id)
    assert broken(svc).startswith(f"tokens row {new.token_id}: expires_at is None")
