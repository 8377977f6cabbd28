"""The job runner on its own: a period claimed once across processes, the row it leaves,
continuous jobs, a failing job, and the recent runs (on SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llmreg.db.models import JobRun
from llmreg.errors import InvalidRefError
from llmreg.policy import DEFAULT_POLICY_YAML, parse_policy
from llmreg.service import RegistryService
from llmreg.service.hygiene.jobs import Jobs, runner_id

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)  # on a 10 s and a 60 s boundary
POLICY = parse_policy(DEFAULT_POLICY_YAML.replace("deprecation: 1h", "deprecation: 10s")
                      .replace("alerts: 1h", "alerts: 1m"), source="jobs-test.yaml")


@pytest.fixture
def svc(tmp_path: Path, database_url: str | None) -> Iterator[RegistryService]:
    service = RegistryService.open_home(tmp_path / "r", database_url=database_url,
                                        policy=POLICY)
    yield service
    service.close()


class Recorder:
    """Tasks that record the clock they were called with and return a count."""

    def __init__(self) -> None:
        self.calls: dict[str, list[datetime]] = {}

    def task(self, job: str) -> Any:
        def run(now: datetime) -> dict[str, Any]:
            self.calls.setdefault(job, []).append(now)
            return {"actions": len(self.calls[job])}
        return run


def jobs_of(svc: RegistryService, rec: Recorder, *names: str) -> Jobs:
    return Jobs(svc.db, POLICY, {n: rec.task(n) for n in names})


def test_runner_id_is_host_and_pid() -> None:
    assert runner_id() == f"{socket.gethostname()[:200]}:{os.getpid()}"


def test_periods_come_from_the_policy_for_the_jobs_it_has(svc: RegistryService) -> None:
    rec = Recorder()
    assert jobs_of(svc, rec, "alerts", "deliveries", "deprecation").periods() == {
        "deprecation": 10.0, "alerts": 60.0, "deliveries": 0.0}
    assert jobs_of(svc, rec, "alerts").periods() == {"alerts": 60.0}  # only tasks it has


def test_a_period_runs_once_and_leaves_its_row(svc: RegistryService) -> None:
    rec = Recorder()
    jobs = jobs_of(svc, rec, "deprecation", "alerts")
    first = jobs.run_due(now=T0)
    assert [(r.job, r.period, r.runner, r.started_at, r.result) for r in first] == [
        ("deprecation", int(T0.timestamp()) // 10, jobs.runner, T0,
         {"actions": 1}),
        ("alerts", int(T0.timestamp()) // 60, jobs.runner, T0,
         {"actions": 1})]
    assert all(r.finished_at is not None and r.finished_at >= r.started_at for r in first)
    # 9.9 s later: the same periods, nothing runs, here or in another process's runner
    assert jobs.run_due(now=T0 + timedelta(seconds=9.9)) == []
    other = jobs_of(svc, rec, "deprecation", "alerts")
    assert other.run_due(now=T0 + timedelta(seconds=5)) == []
    # 10 s: deprecation's next period (claimed by the other runner), not alerts'
    runs = other.run_due(now=T0 + timedelta(seconds=10))
    assert [(r.job, r.period, r.runner) for r in runs] == [
        ("deprecation", int(T0.timestamp()) // 10 + 1, other.runner)]
    assert jobs.run_due(now=T0 + timedelta(seconds=11)) == []
    assert rec.calls == {"deprecation": [T0, T0 + timedelta(seconds=10)], "alerts": [T0]}
    with svc.db.read() as s:
        row = s.get(JobRun, ("deprecation", int(T0.timestamp()) // 10 + 1))
        assert row is not None and row.result == {"actions": 2}


def test_a_claim_taken_elsewhere_is_not_run_and_not_asked_again(svc: RegistryService
                                                                ) -> None:
    rec = Recorder()
    mine, theirs = jobs_of(svc, rec, "deprecation"), jobs_of(svc, rec, "deprecation")
    assert len(theirs.run_due(now=T0)) == 1
    assert mine._claim("deprecation", int(T0.timestamp()) // 10, T0) is False
    assert mine._claimed == {"deprecation": int(T0.timestamp()) // 10}
    assert mine.run_due(now=T0) == [] and len(rec.calls["deprecation"]) == 1


def test_continuous_jobs_run_on_every_call_and_leave_no_row(svc: RegistryService) -> None:
    rec = Recorder()
    jobs = jobs_of(svc, rec, "deliveries")
    for i in range(3):
        [run] = jobs.run_due(now=T0)
        assert (run.job, run.period, run.runner, run.started_at, run.finished_at,
                run.result) == ("deliveries", 0, jobs.runner, T0, T0, {"actions": i + 1})
    assert jobs.recent() == []


def test_only_runs_the_jobs_named_and_refuses_others(svc: RegistryService) -> None:
    rec = Recorder()
    jobs = jobs_of(svc, rec, "deprecation", "alerts", "deliveries")
    assert [r.job for r in jobs.run_due(now=T0, only=["alerts"])] == ["alerts"]
    assert [r.job for r in jobs.run_due(now=T0, only=["alerts", "deprecation"])] == [
        "deprecation"]  # alerts ran this period already
    with pytest.raises(InvalidRefError) as info:
        jobs.run_due(now=T0, only=["zeta", "alerts", "nope"])
    assert str(info.value) == ("--job nope, zeta is not a job; use one of deprecation, "
                               "alerts, deliveries")
    assert jobs.run_due(now=T0, only=[]) == []


def test_a_failing_job_records_its_error_cut_short(svc: RegistryService) -> None:
    def boom(now: datetime) -> dict[str, Any]:
        raise ValueError("x" * 5000)

    jobs = Jobs(svc.db, POLICY, {"alerts": boom, "deprecation": Recorder().task("d")})
    runs = {r.job: r for r in jobs.run_due(now=T0)}
    error = runs["alerts"].result["error"]
    assert error.startswith("ValueError: xxx") and len(error) == 2000
    assert runs["deprecation"].result == {"actions": 1}
    assert {r.job: r.result for r in jobs.recent()}["alerts"] == {"error": error}


def test_recent_is_newest_first_and_limited(svc: RegistryService) -> None:
    rec = Recorder()
    jobs = jobs_of(svc, rec, "deprecation")
    for i in range(5):
        jobs.run_due(now=T0 + timedelta(seconds=10 * i))
    started = [r.started_at for r in jobs.recent()]
    assert started == sorted(started, reverse=True) and len(started) == 5
    assert [r.started_at for r in jobs.recent(limit=2)] == started[:2]
    assert all(re.fullmatch(r".+:\d+", r.runner) for r in jobs.recent())


def test_a_job_not_due_or_continuous_never_stops_the_jobs_after_it(svc: RegistryService
                                                                    ) -> None:
    """Each job is judged on its own: a continuous job first, a job already run this
    period first, and every job after them still runs, with the clock it was given."""
    rec = Recorder()
    policy = parse_policy(DEFAULT_POLICY_YAML.replace("deprecation: 1h", "deprecation: 10s")
                          .replace("alerts: 1h", "alerts: continuous")
                          .replace("deliveries: continuous", "deliveries: 1m"),
                          source="order.yaml")
    jobs = Jobs(svc.db, policy, {n: rec.task(n) for n in ("deprecation", "alerts",
                                                          "deliveries")})
    assert [r.job for r in jobs.run_due(now=T0)] == ["deprecation", "alerts", "deliveries"]
    # 20 s on: deprecation is due again, alerts is continuous, deliveries is not due.
    later = T0 + timedelta(seconds=20)
    assert [r.job for r in jobs.run_due(now=later)] == ["deprecation", "alerts"]
    # 70 s on, with deprecation's period run elsewhere first: alerts and deliveries run.
    other = Jobs(svc.db, policy, {"deprecation": rec.task("deprecation")})
    last = T0 + timedelta(seconds=70)
    assert [r.job for r in other.run_due(now=last)] == ["deprecation"]
    assert [r.job for r in jobs.run_due(now=last)] == ["alerts", "deliveries"]
    assert rec.calls == {"deprecation": [T0, later, last], "alerts": [T0, later, last],
                         "deliveries": [T0, last]}
