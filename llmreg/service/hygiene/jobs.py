"""Scheduled jobs: deprecation, alerts and webhook deliveries, each on its own period.

A job with a period of P seconds runs at most once per period ``floor(now / P)`` across
every process that shares the database: before running, a process claims the period by
inserting the row ``(job, period)`` into ``job_runs`` (the primary key), and only the
process whose insert took runs the job. The claim is committed before the job starts,
so a replica that dies mid-run costs that period, never a double run. A period of 0
("continuous") runs on every call; those jobs bring their own locking (the outbox
claims each delivery).

``llmreg serve`` calls :meth:`Jobs.run_due` every tick in a background thread;
``llmreg jobs run`` calls it once (the cron entry of an embedded registry).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from llmreg.db.engine import Database, insert_ignore
from llmreg.db.models import JobRun, utcnow
from llmreg.errors import InvalidRefError
from llmreg.policy import Policy
from llmreg.types import JobRunInfo

log = logging.getLogger("llmreg.jobs")
Task = Callable[[datetime], dict[str, Any]]


def runner_id() -> str:
    """``host:pid`` of this process, recorded with each run it makes.

    Example:
        >>> ":" in runner_id()
        True
    """
    return f"{socket.gethostname()[:200]}:{os.getpid()}"


def _info(r: JobRun) -> JobRunInfo:
    return JobRunInfo(job=r.job, period=r.period, runner=r.runner, started_at=r.started_at,
                      finished_at=r.finished_at, result=r.result)


class Jobs:
    """The scheduled jobs of one registry.

    Example:
        >>> [r.job for r in svc.jobs.run_due()]  # doctest: +SKIP
        ['deprecation', 'alerts', 'deliveries']
    """

    def __init__(self, db: Database, policy: Policy, tasks: dict[str, Task]) -> None:
        self.db = db
        self.policy = policy
        self.tasks = tasks
        self.runner = runner_id()
        self._claimed: dict[str, int] = {}  # the last period this process tried, per job

    def periods(self) -> dict[str, float]:
        """Each job's period in seconds from the policy (0 = continuous)."""
        return {job: secs for job, secs in self.policy.jobs.seconds().items()
                if job in self.tasks}

    def run_due(self, *, now: datetime | None = None,
                only: list[str] | None = None) -> list[JobRunInfo]:
        """Run every job whose period has not run yet (anywhere); return the runs made
        here. A job that fails is logged and recorded with its error; the others run."""
        now = now or utcnow()
        wanted = self.periods()
        if only is not None:
            unknown = sorted(set(only) - set(wanted))
            if unknown:
                raise InvalidRefError(f"--job {', '.join(unknown)} is not a job; use one of "
                                      f"{', '.join(wanted)}")
            wanted = {j: p for j, p in wanted.items() if j in only}
        out = []
        for job, secs in wanted.items():
            if secs == 0:
                out.append(JobRunInfo(job=job, period=0, runner=self.runner, started_at=now,
                                      finished_at=now, result=self._run(job, now)))
                continue
            period = int(now.timestamp() // secs)
            if self._claimed.get(job) == period or not self._claim(job, period, now):
                continue
            result = self._run(job, now)
            with self.db.write() as s:
                row = s.get(JobRun, (job, period))
                assert row is not None
                row.finished_at, row.result = utcnow(), result
                s.add(row)
                out.append(_info(row))
        return out

    def _claim(self, job: str, period: int, now: datetime) -> bool:
        self._claimed[job] = period
        with self.db.write() as s:
            # RETURNING, not rowcount: psycopg reports -1 for an INSERT … ON CONFLICT.
            taken = s.execute(insert_ignore(s, JobRun, job=job, period=period,
                                            runner=self.runner, started_at=now, result={})
                              .returning(col(JobRun.job))).first()
        return taken is not None

    def _run(self, job: str, now: datetime) -> dict[str, Any]:
        try:
            return self.tasks[job](now)
        except Exception as exc:  # one failing job must not stop the others
            log.exception("llmreg: job %s failed", job)
            return {"error": f"{type(exc).__name__}: {exc}"[:2000]}

    def recent(self, limit: int = 50) -> list[JobRunInfo]:
        """The last runs recorded (periodic jobs only), newest first."""
        with self.db.read() as s:
            rows = s.exec(select(JobRun).order_by(col(JobRun.started_at).desc())
                          .limit(limit)).all()
            return [_info(r) for r in rows]
