"""The audit log's hash chain, pinned: a fixed sequence of entries and the exact hashes.

If a test here fails after a change to ``entry_hash`` (field names, timestamp format,
canonical JSON), every existing registry's log would stop verifying: such a change
needs a migration of the log, not new pinned values.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from llmreg.db.engine import Database
from llmreg.db.models import AuditEntry
from llmreg.errors import AuditChainError, InvalidRefError
from llmreg.service import audit
from llmreg.service.audit import (
    GENESIS,
    append,
    append_many,
    entries,
    entry_hash,
    to_info,
    verify,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64
POLICY = "sha256:" + "b" * 64

# (actor, action, name, target, env, detail): what a small registry's log records.
KNOWN: list[tuple[str, str, str | None, str | None, str | None, dict[str, Any]]] = [
    ("ana", "register", "chat", "chat@1", None, {"digest": DIGEST, "message": "first"}),
    ("ana", "policy", None, POLICY, None, {"from": None, "to": POLICY}),
    ("bo", "approval", "chat", "chat@1", "production",
     {"roles": ["approver"], "comment": "looks right"}),
    ("ana", "promote", "chat", "chat@1", "production",
     {"from": "staging", "metrics": {"accuracy": 0.93, "n": 500}, "note": "déployé"}),
]
# The hash of each entry above, the last one being the head of the chain. Pinned.
KNOWN_HASHES = [
    "sha256:d177bdef80f3bb7f2e2f17f07f517a7e005e05a633e0abe14ed4267f76d6c0f6",
    "sha256:b96d7ae7c35a449ed92cb9f46e0bfbc0bc3e826d7d220c99c33d131ce7b052a9",
    "sha256:660a0f96c815bdcd502a33b49c411499f7dd7ae36ef4e365477452c51aa88e26",
    "sha256:2b1b770824e95c0196f3f8f52e9c26e7d80ac41c3994dd67f69ed789c1fc0e34",
]
KNOWN_HEAD = "sha256:2b1b770824e95c0196f3f8f52e9c26e7d80ac41c3994dd67f69ed789c1fc0e34"


def at(seq: int) -> datetime:
    return T0 + timedelta(seconds=seq, microseconds=seq)


def known_chain() -> list[str]:
    hashes, prev = [], GENESIS
    for seq, (actor, action, name, target, env, detail) in enumerate(KNOWN, start=1):
        prev = entry_hash(seq, at(seq), actor, action, name, target, env, detail, prev)
        hashes.append(prev)
    return hashes


def test_genesis_is_all_zeros() -> None:
    assert GENESIS == "sha256:" + "0" * 64


def test_the_known_chain_produces_the_pinned_hashes() -> None:
    assert known_chain() == KNOWN_HASHES
    assert known_chain()[-1] == KNOWN_HEAD


def test_one_entry_hash_is_the_digest_of_its_canonical_json() -> None:
    # The exact bytes hashed, spelled out: a change of field name, timestamp format or
    # canonicalisation shows up here first.
    from llmreg.bundle.digest import digest_bytes

    payload = (b'{"action":"register","actor":"ana","at":"2026-01-02T03:04:06.000007Z",'
               b'"detail":{"digest":"' + DIGEST.encode() + b'","message":"first"},'
               b'"env":null,"name":"chat","prev":"' + GENESIS.encode() + b'","seq":1,'
               b'"target":"chat@1"}')
    assert entry_hash(1, at(1), *KNOWN[0], GENESIS) == digest_bytes(payload)


def test_every_field_is_covered_by_the_hash() -> None:
    base = (1, at(1), "ana", "register", "chat", "chat@1", "production", {"k": 1}, GENESIS)
    changed = [
        (2, *base[1:]),
        (base[0], at(1) + timedelta(microseconds=1), *base[2:]),
        (*base[:2], "bo", *base[3:]),
        (*base[:3], "promote", *base[4:]),
        (*base[:4], "chat2", *base[5:]),
        (*base[:5], "chat@2", *base[6:]),
        (*base[:6], "staging", *base[7:]),
        (*base[:7], {"k": 2}, base[8]),
        (*base[:8], "sha256:" + "1" * 64),
        (*base[:4], None, *base[5:]),
        (*base[:5], None, *base[6:]),
        (*base[:6], None, *base[7:]),
    ]
    hashes = {entry_hash(*base)} | {entry_hash(*c) for c in changed}  # type: ignore[arg-type]
    assert len(hashes) == len(changed) + 1


# --- the same chain through a real database ------------------------------------------


@pytest.fixture(autouse=True)
def chain_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests write log entries without the registry rows they would record, so
    ``verify`` checks the chain alone here; its cross-check of entries against those
    rows (and ``head=``) is tested in test_audit_anchor.py and test_audit_rows.py."""
    monkeypatch.setattr(audit, "_check_counts", lambda session, actions: None)
    monkeypatch.setattr(audit, "check_rows", lambda session, audited: (0, 0))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A registry database on SQLite (the chain test below also runs on PostgreSQL)."""
    database = Database.open(f"sqlite:///{tmp_path / 'registry.db'}")
    yield database
    database.dispose()


@pytest.fixture
def any_db(tmp_path: Path, database_url: str | None) -> Iterator[Database]:
    """A registry database on each backend: the timestamps must round-trip exactly."""
    database = Database.open(database_url or f"sqlite:///{tmp_path / 'registry.db'}")
    yield database
    database.dispose()


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """``append`` stamps entries at at(1), at(2), ... so the chain is reproducible."""
    ticks = iter(range(1, 1000))
    monkeypatch.setattr(audit, "utcnow", lambda: at(next(ticks)))


def append_known(db: Database) -> list[AuditEntry]:
    out = []
    for actor, action, name, target, env, detail in KNOWN:
        with db.write() as s:
            out.append(append(s, actor=actor, action=action, name=name, target=target,
                              env=env, detail=detail))
    return out


def test_append_builds_the_pinned_chain_and_it_verifies(any_db: Database,
                                                        frozen_clock: None) -> None:
    db = any_db
    rows = append_known(db)
    assert [(r.seq, r.prev_hash, r.hash) for r in rows] == [
        (i + 1, ([GENESIS] + KNOWN_HASHES)[i], KNOWN_HASHES[i]) for i in range(len(KNOWN))]
    assert verify(db) == len(KNOWN)
    log = entries(db)
    assert log[-1].hash == KNOWN_HEAD
    assert [(e.seq, e.at, e.actor, e.action, e.name, e.target, e.env, e.detail)
            for e in log] == [(i + 1, at(i + 1), *k) for i, k in enumerate(KNOWN)]


def test_verify_reads_in_sequence_order_whatever_the_storage_order(any_db: Database,
                                                                   frozen_clock: None) -> None:
    append_known(any_db)
    # A no-op update moves the row to the end of the table's storage on PostgreSQL.
    edit(any_db, "UPDATE audit_log SET actor = actor WHERE seq = 1")
    assert verify(any_db) == len(KNOWN)
    assert [e.seq for e in entries(any_db)] == [1, 2, 3, 4]


def test_a_rolled_back_append_leaves_no_gap(any_db: Database, frozen_clock: None) -> None:
    with pytest.raises(RuntimeError), any_db.write() as s:
        append(s, actor="ana", action="register", name="chat")
        raise RuntimeError("the state change failed")
    with any_db.write() as s:
        entry = append(s, actor="ana", action="register", name="chat")
    assert entry.seq == 1
    assert verify(any_db) == 1


def test_append_defaults(db: Database, frozen_clock: None) -> None:
    with db.write() as s:
        entry = append(s, actor="ana", action="token-create")
    assert (entry.seq, entry.name, entry.target, entry.env, entry.detail) == (
        1, None, None, None, {})
    assert entry.hash == entry_hash(1, at(1), "ana", "token-create", None, None, None, {},
                                    GENESIS)
    assert verify(db) == 1


def test_to_info_copies_every_field(db: Database, frozen_clock: None) -> None:
    (row, *_) = append_known(db)
    info = to_info(row)
    assert info.model_dump() == {
        "seq": 1, "at": at(1), "actor": "ana", "action": "register", "name": "chat",
        "target": "chat@1", "env": None, "detail": KNOWN[0][5], "prev_hash": GENESIS,
        "hash": KNOWN_HASHES[0]}


# --- reading -----------------------------------------------------------------------


def test_entries_filter_by_name_and_limit_to_the_last(db: Database, frozen_clock: None) -> None:
    append_known(db)
    with db.write() as s:
        append(s, actor="cy", action="register", name="other", target="other@1")
    assert [e.seq for e in entries(db)] == [1, 2, 3, 4, 5]
    assert [e.seq for e in entries(db, limit=2)] == [4, 5]
    assert [e.seq for e in entries(db, limit=0)] == []
    assert [e.seq for e in entries(db, limit=50)] == [1, 2, 3, 4, 5]
    assert [e.seq for e in entries(db, "chat")] == [1, 3, 4]
    assert [e.seq for e in entries(db, "chat", limit=2)] == [3, 4]
    assert [e.seq for e in entries(db, name="other", limit=1)] == [5]
    assert entries(db, "nobody") == []
    assert [e.seq for e in entries(db, env="production")] == [3, 4]
    assert [e.seq for e in entries(db, "chat", env="production", limit=1)] == [4]
    assert entries(db, "other", env="production") == entries(db, env="staging") == []


def test_a_negative_limit_is_refused(db: Database) -> None:
    with pytest.raises(InvalidRefError) as info:
        entries(db, limit=-1)
    assert str(info.value) == ("limit -1 is negative; give 0 or more (or no limit for the "
                               "whole log)")


def test_an_empty_log_verifies_as_zero_entries(db: Database) -> None:
    assert verify(db) == 0
    assert entries(db) == []


# --- tampering -----------------------------------------------------------------------


def edit(db: Database, sql: str) -> None:
    with db.write_engine.begin() as conn:
        conn.execute(text(sql))


def test_an_altered_entry_is_named_with_both_hashes(db: Database, frozen_clock: None) -> None:
    append_known(db)
    edit(db, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    forged = entry_hash(3, at(3), "mallory", *KNOWN[2][1:], KNOWN_HASHES[1])
    with pytest.raises(AuditChainError) as info:
        verify(db)
    assert str(info.value) == (
        f"audit entry #3 (approval chat@1 by mallory) was altered: its content hashes to "
        f"{forged}, not {KNOWN_HASHES[2]}")


def test_a_rehashed_entry_no_longer_chains(db: Database, frozen_clock: None) -> None:
    append_known(db)
    # An editor who recomputes the edited entry's hash still breaks the next link.
    forged = entry_hash(2, at(2), "mallory", *KNOWN[1][1:], KNOWN_HASHES[0])
    edit(db, f"UPDATE audit_log SET actor = 'mallory', hash = '{forged}' WHERE seq = 2")
    with pytest.raises(AuditChainError) as info:
        verify(db)
    assert str(info.value) == (
        "audit entry #3 (approval chat@1 by bo) does not chain to the entry before it")


def test_the_label_falls_back_to_the_name_then_to_nothing(db: Database,
                                                          frozen_clock: None) -> None:
    with db.write() as s:
        append(s, actor="ana", action="gc", name="chat")
        append(s, actor="ana", action="gc")
    edit(db, "UPDATE audit_log SET detail = '{\"x\": 1}' WHERE seq = 1")
    with pytest.raises(AuditChainError, match=r"^audit entry #1 \(gc chat by ana\) was altered"):
        verify(db)
    edit(db, "UPDATE audit_log SET detail = '{}' WHERE seq = 1")
    assert verify(db) == 2
    edit(db, "UPDATE audit_log SET env = 'qa' WHERE seq = 2")
    with pytest.raises(AuditChainError, match=r"^audit entry #2 \(gc  by ana\) was altered"):
        verify(db)


@pytest.mark.parametrize(("deleted", "missing", "next_"), [(1, 1, 2), (2, 2, 3), (3, 3, 4)])
def test_a_deleted_entry_is_named(db: Database, frozen_clock: None, deleted: int,
                                  missing: int, next_: int) -> None:
    append_known(db)
    edit(db, f"DELETE FROM audit_log WHERE seq = {deleted}")
    with pytest.raises(AuditChainError) as info:
        verify(db)
    assert str(info.value) == (f"audit entry #{missing} is missing (the next one is "
                               f"#{next_}); the log was edited")


def test_append_many_chains_its_entries_in_one_statement(db: Database,
                                                         frozen_clock: None) -> None:
    append_known(db)  # at(1) .. at(4); the batch is stamped once, at(5)
    batch = [{"name": "chat", "target": f"chat@{n}", "detail": {"digest": DIGEST}}
             for n in (2, 3)]
    with db.write() as s:
        assert append_many(s, actor="cy", action="register", entries=[]) is None
        head = append_many(s, actor="cy", action="register", entries=batch)
    fifth = entry_hash(5, at(5), "cy", "register", "chat", "chat@2", None, batch[0]["detail"],
                       KNOWN_HEAD)
    sixth = entry_hash(6, at(5), "cy", "register", "chat", "chat@3", None, batch[1]["detail"],
                       fifth)
    assert head == audit.head(db) == sixth
    assert [(e.seq, e.target, e.env, e.prev_hash, e.hash) for e in entries(db)[4:]] == [
        (5, "chat@2", None, KNOWN_HEAD, fifth), (6, "chat@3", None, fifth, sixth)]
    assert verify(db) == 6


def test_a_new_entry_chains_onto_the_current_tail(db: Database, frozen_clock: None) -> None:
    append_known(db)
    with db.write() as s:
        entry = append(s, actor="ana", action="gc")
    assert (entry.seq, entry.prev_hash) == (5, KNOWN_HEAD)
    assert verify(db) == 5


@pytest.mark.postgres
@pytest.mark.parametrize("batch", [False, True], ids=["append", "append_many"])
def test_concurrent_appenders_on_postgresql_queue_instead_of_forking(tmp_path: Path,
                                                                    batch: bool) -> None:
    """Two transactions appending at once: the second waits for the first's commit (an
    advisory lock, taken by ``append`` and ``append_many`` alike), then chains onto it;
    without the lock it would read the same tail and fail on the duplicate sequence
    number."""
    from tests.pg import fresh_database

    gen = fresh_database()
    url = next(gen)
    database = Database.open(url)
    appended = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with database.write() as s:
                if batch:
                    append_many(s, actor="ana", action="first",
                                entries=[{"name": None, "target": None, "detail": {}}])
                else:
                    append(s, actor="ana", action="first")
                appended.set()
                time.sleep(0.5)  # still uncommitted while the second one appends
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            appended.set()

    try:
        thread = threading.Thread(target=first)
        thread.start()
        assert appended.wait(10)
        with database.write() as s:
            second = append(s, actor="bo", action="second")
        thread.join(10)
        assert errors == []
        assert second.seq == 2
        assert [(e.seq, e.action) for e in entries(database)] == [(1, "first"), (2, "second")]
        assert verify(database) == 2
    finally:
        database.dispose()
        gen.close()


@pytest.mark.parametrize(("action", "names", "what"), [
    ("register", "register", "versions"),
    ("evidence", "evidence", "pieces of evidence"),
    ("approval", "approval", "approvals"),
    ("promote", "promote/rollback/import", "slot moves"),
    ("rollback", "promote/rollback/import", "slot moves"),
    ("token-create", "token-create", "tokens"),
    ("policy", "policy", "enforced policies"),
])
def test_an_entry_without_the_row_it_records_is_named(db: Database,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      action: str, names: str,
                                                      what: str) -> None:
    monkeypatch.undo()  # the real cross-check of entries against registry rows
    with db.write() as s:
        append(s, actor="ana", action=action)
        append(s, actor="ana", action="token-revoke")  # records no row: never counted
    with pytest.raises(AuditChainError) as info:
        verify(db)
    assert str(info.value) == (
        f"the audit log records 1 {names} entries but the registry holds 0 {what}; rows "
        "were deleted outside the registry; restore them from a backup")


def test_a_head_noted_earlier_must_still_be_in_the_chain(db: Database,
                                                         frozen_clock: None) -> None:
    append_known(db)
    assert audit.head(db) == KNOWN_HEAD
    assert verify(db, head=KNOWN_HASHES[1]) == verify(db, head=KNOWN_HEAD) == 4
    edit(db, "DELETE FROM audit_log WHERE seq = 4")
    with pytest.raises(AuditChainError) as info:
        verify(db, head=KNOWN_HEAD)
    assert str(info.value) == (f"the audit log does not contain head {KNOWN_HEAD} (it has 3 "
                               "entries); entries after it were removed or rewritten; restore "
                               "the log from a backup that holds it")
