"""Owners, served traffic, alerts, deprecation, jobs, environments and drift over HTTP,
through the remote client (the same Client methods as the embedded backend)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from llmreg.bundle.schema import Bundle
from llmreg.db.models import utcnow
from llmreg.errors import InvalidRefError, PermissionDeniedError, RefNotFoundError
from llmreg.types import Actor
from tests.conftest import minimal
from tests.server.conftest import Server


def setup_registry(server: Server) -> None:
    svc = server.service
    for i in range(12):
        svc.versions.register(Bundle.from_dict(minimal(system_prompt=f"v{i}")), name="chat",
                              message=f"v{i}", author="pat")
    svc.lifecycle.promote("chat@12", "staging", actor=Actor("pat"), reason="x")


def test_owner_served_alerts_over_http(server: Server) -> None:
    setup_registry(server)
    pat, rita = server.client("pat"), server.client("rita")
    assert rita.owner("chat") is None
    info = pat.set_owner("chat", team="search", contacts=["search@example.com"])
    assert info.team == "search" and rita.owner("chat") == info
    assert [o.name for o in rita.owners()] == ["chat"]
    assert rita.status("chat")[0].owner == "search"
    with pytest.raises(InvalidRefError, match="--contact 'nope'"):
        pat.set_owner("chat", team="search", contacts=["nope"])
    with pytest.raises(RefNotFoundError):
        rita.owner("ghost")
    with pytest.raises(PermissionDeniedError):
        rita.set_owner("chat", team="x", contacts=["x@example.com"])
    digest = rita.info("chat@12").digest
    server.service.traffic.record([{"name": "chat", "env": "staging", "digest": digest,
                                    "count": 4}])
    [row] = rita.served("chat", env="pre-prod")
    assert (row.version, row.day, row.week, row.in_slot) == (12, 4, 4, True)
    assert rita.served() == [row]
    # An alert, raised by the job at day 31, acknowledged over HTTP.
    server.service.evidence.attach("chat@12", type="eval", suite="regression",
                                   metrics={"accuracy": 0.95}, actor=Actor("pat"))
    for who in ("ann", "abe"):
        server.service.approvals.approve("chat@12", "production", actor=Actor(who))
    server.service.lifecycle.promote("chat@12", "production", actor=Actor("pat"),
                                     reason="ship")
    server.service.alerts.check(now=utcnow() + timedelta(days=31))
    [alert] = rita.alerts()
    assert alert.state == "open" and alert.team == "search"
    acked = pat.ack_alert(alert.id, reason="holiday season")
    assert acked.state == "acked"
    assert rita.alerts(include_closed=True)[0].ack_reason == "holiday season"
    with pytest.raises(RefNotFoundError):
        pat.ack_alert(999, reason="x")
    prod = rita.audit(env="production")
    assert [e.action for e in prod if e.action == "promote"] == ["promote"]


def test_deprecation_jobs_envs_and_drift_over_http(server: Server) -> None:
    setup_registry(server)
    rita, ada = server.client("rita"), server.client("ada")
    plan = rita.deprecation_plan()
    assert [a.version for a in plan.actions] == [1, 2] and not plan.applied  # keep_last 10
    with pytest.raises(PermissionDeniedError):
        rita.deprecation_run()
    done = ada.deprecation_run()
    assert done.applied and len(done.actions) == 2
    assert ada.deprecation_run().actions == []
    assert rita.info("chat@1").retire_rule == "keep_last"
    runs = ada.run_jobs(["deprecation", "alerts"])
    assert {r.job for r in runs} == {"deprecation", "alerts"}
    assert ada.run_jobs(["deprecation"]) == []  # once per period
    with pytest.raises(InvalidRefError, match="not a job"):
        ada.run_jobs(["cleanup"])
    envs = {e.env: e.names for e in rita.environments()}
    assert envs == {"staging": 1, "shadow": 0, "production": 0}
    [item] = rita.drift("staging", "production")
    assert item.state == "only_a" and item.a_version == 12


def test_a_heartbeat_over_the_cap_is_refused_over_http_and_writes_nothing(
        server: Server) -> None:
    setup_registry(server)
    digest = server.service.versions.resolve("chat@12").digest
    beat = {"name": "chat", "env": "staging", "digest": digest}
    over = server.http.post("/v1/heartbeats", headers=server.headers("rita"),
                            json={"beats": [{**beat, "count": 1_000_001}]})
    assert over.status_code == 400
    assert over.json()["errors"][0]["code"] == "REF_INVALID"
    assert over.json()["errors"][0]["message"] == (
        "beats[0].count is 1000001; one beat reports at most 1000000 requests; split it "
        "into several beats or flush more often; nothing was recorded")
    zero = server.http.post("/v1/heartbeats", headers=server.headers("rita"),
                            json={"beats": [{**beat, "count": 0}]})
    assert (zero.status_code, zero.json()) == (202, {"accepted": 1})
    assert server.service.traffic.heartbeats("chat") == []
    schema = server.http.get("/openapi.json").json()["components"]["schemas"]["Beat"]
    assert schema["properties"]["count"]["maximum"] == 1_000_000
