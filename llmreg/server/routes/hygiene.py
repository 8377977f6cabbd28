"""Routes of registry hygiene: owners, served traffic, alerts, the deprecation policy,
scheduled jobs, environments and drift.

Example:
    >>> sorted(r.path for r in router.routes)[:3]
    ['/v1/alerts', '/v1/alerts/{alert_id}/ack', '/v1/deprecation/plan']
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from llmreg.contract.models import AckBody, JobsBody, OwnerBody, OwnerResponse
from llmreg.server.deps import Service, require
from llmreg.server.routes import RowId, endpoint
from llmreg.types import (
    Actor,
    AlertInfo,
    DeprecationReport,
    DriftItem,
    EnvironmentInfo,
    JobRunInfo,
    OwnerInfo,
    ServedInfo,
)

router = APIRouter()
Publisher = Annotated[Actor, require("publisher")]
Admin = Annotated[Actor, require("admin")]


@endpoint(router, "GET", "/v1/owners", "reader")
def owners(s: Service) -> list[OwnerInfo]:
    """Every name's owner, by name."""
    return s.owners.list()


@endpoint(router, "GET", "/v1/names/{name}/owner", "reader")
def owner(s: Service, name: str) -> OwnerResponse:
    """The owner of a name (``owner`` is null when it has none)."""
    return OwnerResponse(owner=s.owners.get(name))


@endpoint(router, "POST", "/v1/names/{name}/owner", "publisher")
def set_owner(s: Service, name: str, body: OwnerBody, actor: Publisher) -> OwnerInfo:
    """Set the owning team and contacts of a registered name (audited)."""
    return s.owners.set(name, team=body.team, contacts=body.contacts, actor=actor)


@endpoint(router, "GET", "/v1/served", "reader", filters=True)
def served(s: Service, name: str | None = None, env: str | None = None) -> list[ServedInfo]:
    """Per slot and version: when it last served, requests in the last day and week."""
    return s.traffic.served(name, env)


@endpoint(router, "GET", "/v1/alerts", "reader")
def alerts(s: Service, all: bool = False) -> list[AlertInfo]:
    """Open and acknowledged alerts, newest first (``all=true``: closed ones too)."""
    return s.alerts.list(include_closed=all)


@endpoint(router, "POST", "/v1/alerts/{alert_id}/ack", "publisher", errors=[404])
def ack_alert(s: Service, alert_id: RowId, body: AckBody, actor: Publisher) -> AlertInfo:
    """Acknowledge an open alert with a reason (audited): it is not reminded again."""
    return s.alerts.ack(alert_id, reason=body.reason, actor=actor)


@endpoint(router, "GET", "/v1/deprecation/plan", "reader")
def deprecation_plan(s: Service) -> DeprecationReport:
    """What the deprecation policy would do now, and why (changes nothing)."""
    return s.deprecation.plan()


@endpoint(router, "POST", "/v1/deprecation/run", "admin")
def deprecation_run(s: Service) -> DeprecationReport:
    """Apply the deprecation policy now (under its lock; a second run does nothing)."""
    return s.deprecation.run()


@endpoint(router, "POST", "/v1/jobs/run", "admin")
def run_jobs(s: Service, body: JobsBody) -> list[JobRunInfo]:
    """Run every scheduled job whose period has not run yet (or only ``jobs``)."""
    return s.jobs.run_due(only=body.jobs)


@endpoint(router, "GET", "/v1/environments", "reader")
def environments(s: Service) -> list[EnvironmentInfo]:
    """Each environment of the policy, its aliases and how many names it holds."""
    return s.environments.list()


@endpoint(router, "GET", "/v1/drift", "reader")
def drift(s: Service, a: str, b: str) -> list[DriftItem]:
    """For every name, what environments ``a`` and ``b`` hold and how they differ."""
    return s.environments.drift(a, b)
