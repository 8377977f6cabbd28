"""The transactional outbox: each notified change writes its event in its own
transaction, so the two commit together or not at all (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from llmreg.bundle.schema import Bundle
from llmreg.db.models import Delivery, OutboxEvent, Slot
from llmreg.errors import GateFailedError
from llmreg.policy import Policy, Webhooks
from llmreg.service import RegistryService
from llmreg.service.notifications import outbox
from llmreg.service.notifications.outbox import EVENTS, cloudevent, emit, slack_message
from llmreg.types import Actor
from tests.conftest import minimal

ANA, BO, CY = Actor("ana"), Actor("bo"), Actor("cy")
LOCAL = Policy.default().model_copy(update={"webhooks": Webhooks(allow_hosts=["127.0.0.1"])})


@pytest.fixture
def svc(tmp_path: Path, database_url: str | None) -> Iterator[RegistryService]:
    service = RegistryService.open_home(tmp_path / "reg", database_url=database_url,
                                        policy=LOCAL)
    yield service
    service.close()


def raw_events(svc: RegistryService) -> list[tuple[str, str | None, dict[str, object]]]:
    with svc.db.read() as s:
        rows = s.exec(select(OutboxEvent).order_by(col(OutboxEvent.id))).all()
        return [(e.type, e.name, e.data) for e in rows]


def events(svc: RegistryService) -> list[tuple[str, str | None, dict[str, object]]]:
    """The events, each without the audit head every one carries (pinned on its own)."""
    return [(t, n, {k: v for k, v in d.items() if k != "audit"})
            for t, n, d in raw_events(svc)]


def register(svc: RegistryService, i: int) -> str:
    bundle = Bundle.from_dict(minimal(system_prompt=f"variant {i}"))
    return svc.versions.register(bundle, name="chat", message=f"v{i}",
                                 author="ana").version.ref


def test_the_interface_i10a_builds_on() -> None:
    assert EVENTS == ("registration", "promotion", "rollback", "gate_failed", "approval",
                      "archive", "owner_change", "stale_production")


def test_every_lifecycle_change_writes_its_event(svc: RegistryService) -> None:
    v1, v2 = register(svc, 1), register(svc, 2)
    register(svc, 2)  # identical content: no new version, no event
    svc.lifecycle.promote(v1, "staging", actor=ANA, reason="try")
    svc.lifecycle.promote(v2, "staging", actor=ANA, reason="try 2")
    svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="v2 is worse")
    svc.approvals.approve(v1, "production", actor=BO, comment="fine")
    svc.approvals.approve(v1, "production", actor=BO)  # again: not new, no event
    got = events(svc)
    assert [(t, n) for t, n, _ in got] == [
        ("registration", "chat"), ("registration", "chat"), ("promotion", "chat"),
        ("promotion", "chat"), ("rollback", "chat"), ("approval", "chat")]
    digest = svc.versions.resolve(v1).digest
    assert got[0][2] == {"name": "chat", "version": 1, "digest": digest, "author": "ana",
                         "message": "v1", "changes": []}
    assert got[3][2]["from_version"] == 1 and got[3][2]["version"] == 2
    assert got[4][2] == {"name": "chat", "env": "staging", "version": 1, "digest": digest,
                         "from_version": 2, "actor": "ana", "reason": "v2 is worse",
                         "policy_digest": LOCAL.digest}
    assert got[5][2]["approver"] == "bo" and got[5][2]["comment"] == "fine"


def test_archive_owner_and_stale_events_carry_the_name_first(svc: RegistryService) -> None:
    """Their payloads, pinned to the key: the name first, then the change's own fields."""
    v1, v2 = register(svc, 1), register(svc, 2)
    d1, d2 = svc.versions.resolve(v1).digest, svc.versions.resolve(v2).digest
    svc.owners.set("chat", team="search", contacts=["search@example.com"], actor=ANA)
    svc.lifecycle.archive(v2, actor=CY, reason="old")
    svc.lifecycle.promote(v1, "staging", actor=ANA, reason="try")
    svc.evidence.attach(v1, type="eval", suite="regression", metrics={"accuracy": 0.95},
                        actor=ANA)
    svc.approvals.approve(v1, "production", actor=BO)
    svc.approvals.approve(v1, "production", actor=CY)
    svc.lifecycle.promote(v1, "production", actor=ANA, reason="ship")
    start = datetime.now(UTC) + timedelta(days=31)
    assert svc.alerts.check(now=start)["opened"] == 1
    assert svc.alerts.check(now=start + timedelta(days=8))["reminded"] == 1
    got = {t: [d for k, _, d in events(svc) if k == t]
           for t in ("owner_change", "archive", "stale_production")}
    assert [list(d.items()) for d in got["owner_change"]] == [[
        ("name", "chat"), ("from", None),
        ("to", {"team": "search", "contacts": ["search@example.com"]}), ("by", "ana")]]
    assert [list(d.items()) for d in got["archive"]] == [[
        ("name", "chat"), ("version", 2), ("digest", d2), ("from", "registered"),
        ("reason", "old"), ("rule", "manual"), ("policy", LOCAL.digest), ("by", "cy")]]
    opened, reminded = got["stale_production"]
    assert list(opened) == list(reminded) == [
        "name", "alert", "env", "version", "digest", "team", "contacts", "message",
        "opened_at", "reminder"]
    assert (opened["name"], opened["env"], opened["version"], opened["digest"],
            opened["team"], opened["reminder"], reminded["reminder"]) == (
        "chat", "production", 1, d1, "search", 0, 1)


def test_a_refused_promotion_changes_nothing_but_emits_gate_failed(
        svc: RegistryService) -> None:
    ref = register(svc, 1)
    svc.lifecycle.promote(ref, "staging", actor=ANA, reason="try")
    audit_before = len(svc.audit.entries())
    with pytest.raises(GateFailedError):
        svc.lifecycle.promote(ref, "production", actor=ANA, reason="ship it")
    assert len(svc.audit.entries()) == audit_before  # the promotion rolled back
    assert [s.env for s in svc.slots.status("chat")] == ["staging"]
    kind, name, data = events(svc)[-1]
    assert (kind, name) == ("gate_failed", "chat")
    assert data["env"] == "production" and data["actor"] == "ana"
    assert {u["gate"] for u in data["unmet"]} >= {"eval:regression", "approvals"}  # type: ignore[union-attr]


def test_no_event_without_its_change_and_no_change_without_its_event(
        svc: RegistryService, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = register(svc, 1)
    before = events(svc)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the outbox write failed")

    monkeypatch.setattr(outbox, "emit", broken)
    with pytest.raises(RuntimeError):
        svc.lifecycle.promote(ref, "staging", actor=ANA, reason="try")
    with svc.db.read() as s:
        assert s.exec(select(Slot)).all() == []  # the move rolled back with its event
    monkeypatch.undo()
    with pytest.raises(RuntimeError), svc.db.write() as s:
        emit(s, event="promotion", name="chat", data={}, at=datetime.now(UTC))
        raise RuntimeError("crash before commit")
    assert events(svc) == before


def test_subscriptions_pick_the_deliveries(svc: RegistryService) -> None:
    promo = svc.notify.add("http://127.0.0.1:9/a", ["promotion"], actor=ANA)
    both = svc.notify.add("http://127.0.0.1:9/b", ["promotion", "registration"], actor=ANA,
                          format="slack")
    gone = svc.notify.add("http://127.0.0.1:9/c", ["registration"], actor=ANA)
    svc.notify.remove(gone.id, actor=ANA)
    ref = register(svc, 1)
    svc.lifecycle.promote(ref, "staging", actor=ANA, reason="try")
    with svc.db.read() as s:
        rows = s.exec(select(Delivery, OutboxEvent).join(OutboxEvent)
                      .order_by(col(Delivery.id))).all()
        got = [(d.webhook_id, e.type, d.status, d.message_id) for d, e in rows]
        ids = {e.type: e.event_id for _, e in rows}
    assert [g[:3] for g in got] == [(both.id, "registration", "pending"),
                                    (promo.id, "promotion", "pending"),
                                    (both.id, "promotion", "pending")]
    assert got[1][3] == f"msg_{ids['promotion']}_{promo.id}"


def test_bad_events_are_programming_errors(svc: RegistryService) -> None:
    with pytest.raises(ValueError, match="'promoted' is not one of registration"), \
            svc.db.write() as s:
        emit(s, event="promoted", name=None, data={}, at=datetime.now(UTC))
    with pytest.raises(ValueError, match="limit is 65536"), svc.db.write() as s:
        emit(s, event="promotion", name=None, data={"x": "y" * 70_000}, at=datetime.now(UTC))
    assert events(svc) == []


def test_payload_formats() -> None:
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    e = OutboxEvent(event_id="ab" * 16, type="gate_failed", name="chat", at=at,
                    data={"env": "production", "version": 3, "unmet": [{"gate": "approvals"}],
                          "comment": "", "long": "x" * 300})
    assert cloudevent(e) == {
        "specversion": "1.0", "id": "ab" * 16, "source": "/llmreg",
        "type": "dev.llmreg.gate_failed", "subject": "chat", "time": "2026-03-04T05:06:07Z",
        "datacontenttype": "application/json", "data": e.data}
    text = slack_message(e)["text"]
    assert text.startswith(':no_entry: *chat*: gate failed — env: production, version: 3, '
                           'unmet: [{"gate": "approvals"}], long: xxx')
    assert "comment" not in text and text.endswith("…")
    bare = OutboxEvent(event_id="1", type="test", name=None, data={}, at=at)
    assert slack_message(bare) == {"text": ":bell: test"}
    assert "subject" not in cloudevent(bare)


def test_a_batch_registration_is_one_event_naming_its_versions(svc: RegistryService) -> None:
    bundles = [Bundle.from_dict(minimal(system_prompt=f"v{i}")) for i in range(3)]
    svc.versions.register_many(bundles, name="batch", message="import", author="ana")
    with svc.db.read() as s:
        rows = s.exec(select(OutboxEvent).where(OutboxEvent.name == "batch")).all()
    assert [(r.type, r.data["count"], r.data["first_version"], r.data["version"])
            for r in rows] == [("registration", 3, 1, 3)]
    assert rows[0].data["digest"] == bundles[-1].digest


def test_every_event_carries_the_audit_head_of_its_own_change(svc: RegistryService) -> None:
    v1 = register(svc, 1)
    svc.owners.set("chat", team="search", contacts=["s@example.com"], actor=ANA)
    svc.lifecycle.promote(v1, "staging", actor=ANA, reason="try")
    svc.approvals.approve(v1, "production", actor=BO)
    with pytest.raises(GateFailedError):
        svc.lifecycle.promote(v1, "production", actor=ANA, reason="too soon")
    log = {e.hash: e for e in svc.audit.entries()}
    got = raw_events(svc)
    assert [kind for kind, _, _ in got] == ["registration", "owner_change", "promotion",
                                            "approval", "gate_failed"]
    for kind, _, data in got:
        anchor = data["audit"]
        assert isinstance(anchor, dict) and sorted(anchor) == ["head", "seq"]
        entry = log[anchor["head"]]  # a head the log holds, at the seq the event says
        assert entry.seq == anchor["seq"]
        if kind != "gate_failed":  # the entry of the event's own change is the head
            assert entry.action == {"registration": "register", "owner_change": "owner",
                                    "promotion": "promote", "approval": "approval"}[kind]
        assert svc.audit.verify(anchor["head"]) == len(log)


def test_an_event_on_an_empty_log_says_so_and_slack_leaves_the_head_out(
        svc: RegistryService) -> None:
    with svc.db.write() as s:
        emit(s, event="promotion", name="chat", data={"env": "production"},
             at=datetime.now(UTC))
    [(_, _, data)] = raw_events(svc)
    assert data == {"env": "production", "audit": None}
    e = OutboxEvent(event_id="ab" * 16, type="promotion", name="chat",
                    at=datetime(2026, 1, 1, tzinfo=UTC),
                    data={"env": "production", "audit": {"seq": 1, "head": "sha256:ab"}})
    assert slack_message(e) == {"text": ":rocket: *chat*: promotion — env: production"}
    assert cloudevent(e)["data"]["audit"] == {"seq": 1, "head": "sha256:ab"}


# --- the shapes at their edges (outbox's mutation survivors) --------------------------


def test_short_keeps_120_characters_and_cuts_longer_values_to_120() -> None:
    assert outbox._short("x" * 120) == "x" * 120
    assert outbox._short("x" * 121) == "x" * 119 + "…"
    assert len(outbox._short("y" * 5000)) == 120
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert outbox._short({"at": at}) == '{"at": "2026-01-02 03:04:05+00:00"}'


def test_event_data_may_hold_times_and_is_bounded_to_the_byte(svc: RegistryService) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with svc.db.write() as s:
        emit(s, event="promotion", name="chat", data={"when": at}, at=at)
    [(_, _, data)] = raw_events(svc)
    assert data["when"] == "2026-01-02 03:04:05+00:00"
    with svc.db.write() as s:
        # The stored JSON is the data plus the audit anchor ({"audit": null} here):
        # pad it to exactly the limit, then one byte over.
        base = len(outbox.json.dumps({"pad": "", "audit": None}))
        emit(s, event="promotion", name="chat",
             data={"pad": "p" * (outbox.MAX_DATA_BYTES - base)}, at=at)
    with pytest.raises(ValueError, match=r"event data is 65537 bytes; the limit is 65536"):
        with svc.db.write() as s:
            emit(s, event="promotion", name="chat",
                 data={"pad": "p" * (outbox.MAX_DATA_BYTES - base + 1)}, at=at)
    assert len(raw_events(svc)) == 2
