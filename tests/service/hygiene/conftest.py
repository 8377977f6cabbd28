"""A registry whose history the hygiene rules can get wrong: several names, three
environments, versions that leave an environment more than once, old versions held by
staging and shadow, and slot moves spread over days (a test clock drives the moves).

The fleet, day by day (``Fleet.at(day)``; keep_last 3, so chat keeps @8-@10, search
@4-@6, triage @2-@4)::

    day  0  chat@2 and search@1 through staging into production
    day  1  chat@4 and search@2 into staging
    day  2  chat@5 into staging, then shadow        chat@4 leaves staging (first time)
    day  3  staging rolled back to chat@4           chat@5 still holds shadow
    day  5  search@3 into staging                   search@2 leaves (its only time)
    day 10  chat@6 into staging                     chat@4 leaves staging (last time)
            triage@1 through staging into production
    day 12  chat@3 into staging                     chat@6 leaves

    held at the end: chat@2 production, chat@3 staging, chat@5 shadow;
                     search@1 production, search@3 staging;
                     triage@1 staging and production
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from llmreg.bundle.schema import Bundle
from llmreg.db.models import utcnow
from llmreg.policy import DEFAULT_POLICY_YAML, parse_policy
from llmreg.service import RegistryService
from llmreg.service.lifecycle import lifecycle as lifecycle_module
from llmreg.types import Actor
from tests.conftest import minimal

ANA, BO, CY = Actor("ana"), Actor("bo"), Actor("cy")
# keep_last 3 with the default rollback rules (keep_rollback 2, archive_grace_days 14),
# and KEEP3: keep_last 3 alone, so that each rule is pinned on its own.
ROLLBACK_SAFE = DEFAULT_POLICY_YAML.replace("keep_last: 10", "keep_last: 3")
KEEP3 = ROLLBACK_SAFE.replace("keep_rollback: 2", "keep_rollback: 0").replace(
    "archive_grace_days: 14", "archive_grace_days: 0")
DEPRECATE14 = KEEP3.replace("  remind_every_days: 7",
                            "  remind_every_days: 7\n  deprecate_after_days: 14")
VERSIONS = {"chat": 10, "search": 6, "triage": 4}


@dataclass
class Fleet:
    home: Path
    url: str | None
    t0: datetime
    now: datetime
    services: list[RegistryService] = field(default_factory=list)

    def at(self, day: float) -> datetime:
        """The test clock ``day`` days after the fleet's first move."""
        return self.t0 + timedelta(days=day)

    def open(self, policy_text: str = DEPRECATE14) -> RegistryService:
        """Another service over the same registry (closed after the test)."""
        svc = RegistryService.open_home(self.home, database_url=self.url,
                                        policy=parse_policy(policy_text, source="fleet.yaml"))
        self.services.append(svc)
        return svc

    @property
    def svc(self) -> RegistryService:
        return self.services[0]

    def digest(self, ref: str) -> str:
        return self.svc.versions.resolve(ref).digest


def _register(svc: RegistryService, name: str, i: int) -> None:
    bundle = Bundle.from_dict(minimal(system_prompt=f"You are {name} bot {i}."))
    svc.versions.register(bundle, name=name, message=f"v{i}", author="ana")


def _staging(svc: RegistryService, ref: str) -> None:
    svc.lifecycle.promote(ref, "staging", actor=ANA, reason="candidate")


def _production(svc: RegistryService, ref: str) -> None:
    svc.evidence.attach(ref, type="eval", suite="regression",
                                  metrics={"accuracy": 0.95}, actor=ANA)
    svc.approvals.approve(ref, "production", actor=BO)
    svc.approvals.approve(ref, "production", actor=CY)
    svc.lifecycle.promote(ref, "production", actor=ANA, reason="ship")


def build(fleet: Fleet, set_day: Callable[[float], None]) -> None:
    svc = fleet.svc
    for name, count in VERSIONS.items():
        for i in range(1, count + 1):
            _register(svc, name, i)
        svc.owners.set(name, team=f"{name}-team", contacts=[f"{name}@example.com"], actor=ANA)
    set_day(0)
    for ref in ("chat@2", "search@1"):
        _staging(svc, ref)
        _production(svc, ref)
    set_day(1)
    _staging(svc, "chat@4")
    _staging(svc, "search@2")
    set_day(2)
    _staging(svc, "chat@5")
    svc.approvals.approve("chat@5", "shadow", actor=BO)
    svc.lifecycle.promote("chat@5", "shadow", actor=ANA, reason="shadow it")
    set_day(3)
    svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="back to @4")
    set_day(5)
    _staging(svc, "search@3")
    set_day(10)
    _staging(svc, "chat@6")
    _staging(svc, "triage@1")
    _production(svc, "triage@1")
    set_day(12)
    _staging(svc, "chat@3")


@pytest.fixture
def fleet(tmp_path: Path, database_url: str | None,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    """The fleet above, on each metadata backend; ``fleet.svc`` has DEPRECATE14."""
    t0 = utcnow().replace(second=0, microsecond=0)
    f = Fleet(tmp_path / "reg", database_url, t0, t0)

    def set_day(day: float) -> None:
        f.now = f.at(day)

    monkeypatch.setattr(lifecycle_module, "utcnow", lambda: f.now)
    f.open()
    try:
        build(f, set_day)
        yield f
    finally:
        for svc in f.services:
            svc.close()
