"""Owners, the deprecation policy, served traffic, stale-production alerts, jobs, env list,
drift and the tamper-evident slot history — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from llmreg.bundle.schema import Bundle
from llmreg.db.models import OutboxEvent, Webhook, utcnow
from llmreg.errors import (
    AuditChainError,
    GateFailedError,
    InvalidRefError,
    PolicyError,
    RefNotFoundError,
    TransitionError,
)
from llmreg.policy import DEFAULT_POLICY_YAML, parse_policy
from llmreg.service import RegistryService
from llmreg.service.hygiene.deprecation import ACTOR
from llmreg.service.hygiene.traffic import HeartbeatHour
from llmreg.types import Actor
from tests.conftest import minimal
from tests.service.hygiene.conftest import KEEP3  # keep_last 3, rollback rules off

ANA, BO, CY = Actor("ana"), Actor("bo"), Actor("cy")


def open_svc(home: Path, url: str | None, text_: str = KEEP3) -> RegistryService:
    return RegistryService.open_home(home, database_url=url,
                                     policy=parse_policy(text_, source="test-policy.yaml"))


@pytest.fixture
def svc(tmp_path: Path, database_url: str | None) -> Iterator[RegistryService]:
    service = open_svc(tmp_path / "r", database_url)
    yield service
    service.close()


def register(svc: RegistryService, name: str, i: int, model: str = "gpt-4o-2024-08-06") -> str:
    bundle = Bundle.from_dict(minimal(model={"provider": "openai", "id": model},
                                      system_prompt=f"You are bot {i}."))
    return svc.versions.register(bundle, name=name, message=f"v{i}", author="ana").version.ref


def to_production(svc: RegistryService, ref: str) -> None:
    svc.evidence.attach(ref, type="eval", suite="regression",
                        metrics={"accuracy": 0.95}, actor=ANA)
    svc.approvals.approve(ref, "production", actor=BO)
    svc.approvals.approve(ref, "production", actor=CY)
    svc.lifecycle.promote(ref, "production", actor=ANA, reason="ship")


def ten_versions(svc: RegistryService, name: str = "chat") -> None:
    for i in range(1, 11):
        register(svc, name, i)
    svc.owners.set(name, team="search", contacts=["search@example.com"], actor=ANA)
    svc.lifecycle.promote(f"{name}@2", "staging", actor=ANA, reason="candidate")
    to_production(svc, f"{name}@2")
    svc.lifecycle.promote(f"{name}@9", "staging", actor=ANA, reason="next")


# -- owners ---------------------------------------------------------------------------------


def test_require_owner_blocks_the_first_version_leaving_registered(svc: RegistryService
                                                                   ) -> None:
    register(svc, "chat", 1)
    with pytest.raises(GateFailedError, match="has no owner .*llmreg owner set chat"):
        svc.lifecycle.promote("chat@1", "staging", actor=ANA, reason="try")
    with svc.db.write() as s:  # webhook 12, as `llmreg webhook add` would leave it
        for i in range(12):
            s.add(Webhook(url=f"https://hooks.example.com/{i}", events=["promotion"],
                          format="cloudevents", secret="whsec_x", created_at=utcnow(),
                          created_by="ana"))
    info = svc.owners.set("chat", team="search", contacts=["search@example.com",
                                                           "https://chat.example.com/c/s",
                                                           "webhook:12"], actor=ANA)
    assert info.contacts == ["search@example.com", "https://chat.example.com/c/s", "webhook:12"]
    event = svc.lifecycle.promote("chat@1", "staging", actor=ANA, reason="try")[0]
    assert [g.gate for g in event.gates][:1] == ["owner"]
    assert svc.slots.status("chat")[0].owner == "search"
    # Setting the same owner again changes nothing; a change is audited with before/after.
    svc.owners.set("chat", team="search", contacts=["search@example.com",
                                                    "https://chat.example.com/c/s",
                                                    "webhook:12"], actor=ANA)
    svc.owners.set("chat", team="ranking", contacts=["ranking@example.com"], actor=BO)
    owners = [e for e in svc.audit.entries("chat") if e.action == "owner"]
    assert [(e.actor, e.detail["to"]["team"]) for e in owners] == [("ana", "search"),
                                                                   ("bo", "ranking")]
    assert owners[1].detail["from"]["team"] == "search"
    assert svc.owners.get("chat").team == "ranking"  # type: ignore[union-attr]
    assert [o.name for o in svc.owners.list()] == ["chat"]
    with svc.db.read() as s:
        events = s.exec(text("SELECT type FROM outbox_events WHERE type = 'owner_change'")
                        ).all()
    assert len(events) == 2


@pytest.mark.parametrize("contact", ["call bob", "ftp://x.example.com", "bob@", "", "http://",
                                     "http://[::1", "https://[not-ip]/hook",
                                     "https://chat.example.com:99999/c"])
def test_a_bad_contact_is_one_line_naming_the_field_and_nothing_changes(
        svc: RegistryService, contact: str) -> None:
    register(svc, "chat", 1)
    with pytest.raises(InvalidRefError, match=r"^--contact .* is not an email address, an "
                                              r"http\(s\) URL or a webhook endpoint"):
        svc.owners.set("chat", team="search", contacts=[contact], actor=ANA)
    assert svc.owners.get("chat") is None


def test_owner_inputs_are_checked(svc: RegistryService) -> None:
    with pytest.raises(RefNotFoundError):
        svc.owners.set("ghost", team="t", contacts=["a@example.com"], actor=ANA)
    register(svc, "chat", 1)
    with pytest.raises(InvalidRefError, match="--team"):
        svc.owners.set("chat", team="", contacts=["a@example.com"], actor=ANA)
    with pytest.raises(InvalidRefError, match="--contact is missing"):
        svc.owners.set("chat", team="t", contacts=[], actor=ANA)
    with pytest.raises(InvalidRefError, match="the limit is 10"):
        svc.owners.set("chat", team="t", contacts=[f"a{i}@example.com" for i in range(11)],
                       actor=ANA)


# -- deprecation ----------------------------------------------------------------------------


def test_keep_last_plan_run_idempotent_and_frozen(svc: RegistryService) -> None:
    ten_versions(svc)
    plan = svc.deprecation.plan()
    assert [(a.version, a.action, a.rule) for a in plan.actions] == [
        (n, "archive", "keep_last") for n in (1, 3, 4, 5, 6, 7)]
    assert all("not among the last 3 versions (@8-@10)" in a.reason for a in plan.actions)
    assert plan.policy_digest == svc.policy.digest and not plan.applied
    done = svc.deprecation.run()
    assert done.applied and [a.version for a in done.actions] == [1, 3, 4, 5, 6, 7]
    assert svc.deprecation.run().actions == []  # idempotent
    assert svc.deprecation.plan().actions == []
    info = svc.versions.resolve("chat@4")
    assert (info.status, info.retire_rule, info.retire_policy) == (
        "archived", "keep_last", svc.policy.digest)
    assert info.retired_at is not None
    # Frozen: no evidence, approvals or promotions; still readable, blobs kept by gc.
    with pytest.raises(TransitionError, match="archived"):
        svc.evidence.attach("chat@4", type="eval", suite="regression",
                            metrics={"accuracy": 1.0}, actor=ANA)
    with pytest.raises(TransitionError, match="archived"):
        svc.approvals.approve("chat@4", "production", actor=BO)
    with pytest.raises(TransitionError, match="archived"):
        svc.lifecycle.promote("chat@4", "staging", actor=ANA, reason="x")
    assert svc.versions.get("chat@4").digest == info.digest
    assert info.digest not in svc.integrity.gc(dry_run=True, grace=0)
    entries = [e for e in svc.audit.entries("chat") if e.action == "archive"]
    assert len(entries) == 6
    assert {e.actor for e in entries} == {ACTOR}
    assert {e.detail["policy"] for e in entries} == {svc.policy.digest}
    assert {e.detail["rule"] for e in entries} == {"keep_last"}
    with svc.db.read() as s:
        archived = s.exec(text("SELECT count(*) FROM outbox_events WHERE type = 'archive'")
                          ).one()[0]
    assert archived == 6
    assert svc.audit.verify() > 0


def test_deprecate_after_days_comes_first(tmp_path: Path, database_url: str | None) -> None:
    text_ = KEEP3.replace("  remind_every_days: 7", "  remind_every_days: 7\n"
                                                    "  deprecate_after_days: 14")
    svc = open_svc(tmp_path / "r", database_url, text_)
    ten_versions(svc)
    svc.lifecycle.promote("chat@3", "staging", actor=ANA, reason="a while")
    svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="back")  # @3 left staging
    now = utcnow()
    soon = svc.deprecation.plan(now=now + timedelta(days=13))
    assert 3 not in [a.version for a in soon.actions]  # left <14 days ago: untouched
    later = svc.deprecation.run(now=now + timedelta(days=15))
    by_version = {a.version: (a.action, a.rule) for a in later.actions}
    assert by_version[3] == ("deprecate", "deprecate_after_days")
    assert by_version[1] == ("archive", "keep_last")
    again = svc.deprecation.run(now=now + timedelta(days=16))
    assert [(a.version, a.action) for a in again.actions] == [(3, "archive")]
    assert svc.versions.resolve("chat@3").status == "archived"
    svc.close()


@pytest.mark.parametrize("value", ["0", "-2"])
def test_keep_last_below_one_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(PolicyError, match=r"p.yaml line \d+: deprecation.keep_last: keep_last "
                                          rf"{value} must be 1 or more"):
        parse_policy(DEFAULT_POLICY_YAML.replace("keep_last: 10", f"keep_last: {value}"),
                     source="p.yaml")


# -- served traffic and alerts ------------------------------------------------------------


def test_heartbeats_roll_up_per_hour_with_bounded_retention(svc: RegistryService) -> None:
    ten_versions(svc)
    digest = svc.versions.resolve("chat@2").digest
    now = utcnow()
    beat = [{"name": "chat", "env": "prod", "digest": digest, "count": 2}]
    for minutes in range(0, 600, 5):  # 120 batches over ten hours: ten hourly rows at most
        svc.traffic.record(beat, now=now - timedelta(minutes=minutes))
    with svc.db.read() as s:
        hours = s.exec(text("SELECT count(*) FROM heartbeat_hours")).one()[0]
        totals = s.exec(text("SELECT count(*) FROM heartbeats")).one()[0]
    assert hours <= 11 and totals == 1
    svc.traffic.record(beat, now=now - timedelta(days=3))
    rows = {(r.env, r.version): r for r in svc.traffic.served("chat")}
    prod = rows[("production", 2)]
    assert prod.in_slot and prod.day == 240 and prod.week == 242 and prod.total == 242
    assert prod.last_served is not None and abs(prod.last_served - now) < timedelta(seconds=1)
    assert rows[("staging", 9)].last_served is None  # a slot that never served is listed
    assert svc.traffic.prune(now=now + timedelta(days=20)) > 0
    with svc.db.read() as s:
        assert s.exec(text("SELECT count(*) FROM heartbeat_hours")).one()[0] == 0
    with pytest.raises(RefNotFoundError):
        svc.traffic.record([{"name": "chat", "env": "prod", "digest": "sha256:" + "0" * 64}])
    with pytest.raises(InvalidRefError, match="count"):
        svc.traffic.record([{**beat[0], "count": -1}])
    assert HeartbeatHour.__tablename__ == "heartbeat_hours"


def test_stale_production_alert_day_29_30_reminders_and_close(svc: RegistryService) -> None:
    ten_versions(svc)
    digest = svc.versions.resolve("chat@2").digest
    t0 = utcnow()
    svc.traffic.record([{"name": "chat", "env": "production", "digest": digest}], now=t0)
    assert svc.alerts.check(now=t0 + timedelta(days=29, hours=23))["opened"] == 0
    assert svc.alerts.list() == []
    assert svc.alerts.check(now=t0 + timedelta(days=30))["opened"] == 1
    [alert] = svc.alerts.list()
    assert (alert.name, alert.env, alert.version, alert.team, alert.contacts) == (
        "chat", "production", 2, "search", ["search@example.com"])
    # Daily runs: one reminder per 7-day interval, never one per run.
    reminded = sum(svc.alerts.check(now=t0 + timedelta(days=30 + d))["reminded"]
                   for d in range(1, 22))
    assert reminded == 3 and svc.alerts.list()[0].reminders == 3
    assert len(svc.alerts.list()) == 1
    with svc.db.read() as s:
        stale = s.exec(text("SELECT count(*) FROM outbox_events WHERE type = "
                            "'stale_production'")).one()[0]
    assert stale == 4  # raised once, reminded three times
    svc.traffic.record([{"name": "chat", "env": "production", "digest": digest}],
                       now=t0 + timedelta(days=52))
    assert svc.alerts.check(now=t0 + timedelta(days=52, hours=1))["closed"] == 1
    assert svc.alerts.list() == []
    closed = svc.alerts.list(include_closed=True)[0]
    assert closed.state == "closed" and "traffic resumed" in (closed.close_reason or "")


def test_alert_ack_and_close_when_the_slot_moves(svc: RegistryService) -> None:
    ten_versions(svc)
    t0 = utcnow()
    assert svc.alerts.check(now=t0 + timedelta(days=31))["opened"] == 1  # never served
    [alert] = svc.alerts.list()
    assert "never served since its promotion" in alert.message
    with pytest.raises(InvalidRefError, match="--reason is empty"):
        svc.alerts.ack(alert.id, reason=" ", actor=ANA)
    for unknown in (999, 0, 2**63):  # too wide for the driver still names nothing
        with pytest.raises(RefNotFoundError):
            svc.alerts.ack(unknown, reason="x", actor=ANA)
    acked = svc.alerts.ack(alert.id, reason="seasonal feature", actor=ANA)
    assert (acked.state, acked.acked_by) == ("acked", "ana")
    with pytest.raises(InvalidRefError, match="not open"):
        svc.alerts.ack(alert.id, reason="again", actor=ANA)
    assert svc.alerts.check(now=t0 + timedelta(days=45))["reminded"] == 0
    to_production(svc, "chat@9")
    assert svc.alerts.check(now=t0 + timedelta(days=2))["closed"] == 1
    closed = {a.id: a for a in svc.alerts.list(include_closed=True)}[alert.id]
    assert closed.state == "closed" and "moved to @9" in (closed.close_reason or "")
    assert svc.alerts.list() == []


# -- jobs -------------------------------------------------------------------------------------


def test_jobs_run_once_per_period_across_services(tmp_path: Path,
                                                  database_url: str | None) -> None:
    text_ = KEEP3.replace("deprecation: 1h", "deprecation: 10s").replace("alerts: 1h",
                                                                           "alerts: 10s")
    a, b = open_svc(tmp_path / "r", database_url, text_), open_svc(tmp_path / "r",
                                                                 database_url, text_)
    ten_versions(a)
    t0 = utcnow().replace(microsecond=0)
    runs = []
    for second in range(30):  # three periods, both replicas ticking every second
        for svc in (a, b):
            runs += [r for r in svc.jobs.run_due(now=t0 + timedelta(seconds=second))
                     if r.job != "deliveries"]
    per_job = {job: sorted(r.period for r in runs if r.job == job)
               for job in ("deprecation", "alerts")}
    for periods in per_job.values():
        assert len(periods) == len(set(periods)) and len(periods) in (3, 4)
    assert sum(r.result.get("actions", 0) for r in runs) == 6
    assert len(a.jobs.recent()) == len(runs)
    with pytest.raises(InvalidRefError, match="--job nope is not a job"):
        a.jobs.run_due(only=["nope"])
    a.close()
    b.close()


def test_a_failing_job_is_recorded_and_the_others_run(svc: RegistryService) -> None:
    def boom(now: object) -> dict[str, object]:
        raise RuntimeError("disk on fire")

    svc.jobs.tasks["alerts"] = boom
    runs = {r.job: r for r in svc.jobs.run_due()}
    assert runs["alerts"].result == {"error": "RuntimeError: disk on fire"}
    assert runs["deprecation"].result == {"actions": 0}


# -- environments, drift, audit --env, slot history ---------------------------------------


def test_env_list_drift_and_audit_by_env(svc: RegistryService) -> None:
    ten_versions(svc)
    for name, model in (("summary", "gpt-4o-2024-05-13"), ("triage", "gpt-4o-2024-08-06")):
        register(svc, name, 1, model=model)
        svc.owners.set(name, team="ops", contacts=["ops@example.com"], actor=ANA)
        svc.lifecycle.promote(f"{name}@1", "staging", actor=ANA, reason="x")
        to_production(svc, f"{name}@1")
    register(svc, "summary", 2, model="gpt-4o-2024-08-06")
    svc.lifecycle.promote("summary@2", "staging", actor=ANA, reason="new pin")
    register(svc, "lonely", 1)
    svc.owners.set("lonely", team="ops", contacts=["ops@example.com"], actor=ANA)
    svc.lifecycle.promote("lonely@1", "staging", actor=ANA, reason="x")
    envs = {e.env: e for e in svc.environments.list()}
    assert (envs["staging"].names, envs["production"].names, envs["shadow"].names) == (4, 3, 0)
    assert envs["staging"].aliases == ["pre-prod", "preprod"]
    drift = {d.name: d for d in svc.environments.drift("pre-prod", "prod")}
    assert drift["summary"].state == "differs"
    assert "model: pin gpt-4o-2024-05-13 -> gpt-4o-2024-08-06" in drift["summary"].summary
    assert drift["chat"].state == "differs" and "system_prompt" in drift["chat"].summary
    assert drift["triage"].state == "same"
    assert drift["lonely"].state == "only_a"
    entries = svc.audit.entries(env="prod")
    assert {e.action for e in entries} == {"promote", "approval"}
    prod = [e for e in entries if e.action == "promote"]
    assert len(prod) == 3
    assert {e.name for e in prod} == {"chat", "summary", "triage"}


@pytest.mark.parametrize("edit", [
    "UPDATE slot_events SET actor = 'mallory' WHERE id = 2",
    "UPDATE slot_events SET to_version = 5 WHERE id = 2",
    "UPDATE slot_events SET reason = 'approved by CTO' WHERE id = 2",
])
def test_an_edited_slot_history_row_is_named_by_verify(svc: RegistryService, edit: str) -> None:
    ten_versions(svc)
    assert svc.audit.verify() > 0
    with svc.db.write() as s:
        s.execute(text(edit))
    with pytest.raises(AuditChainError, match=r"slot history row #2 \(chat/production .*"
                                              r"was altered: .* differ from audit entry"):
        svc.audit.verify()


def test_a_forged_slot_history_row_is_named(svc: RegistryService) -> None:
    ten_versions(svc)
    with svc.db.write() as s:
        s.execute(text("UPDATE slot_events SET at = :t WHERE id = 1"),
                  {"t": utcnow() - timedelta(days=400)})
    with pytest.raises(AuditChainError, match=r"slot history row #1 .* at"):
        svc.audit.verify()
    assert OutboxEvent.__tablename__ == "outbox_events"
