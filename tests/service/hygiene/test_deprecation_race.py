"""A deprecation run racing a rollback and a promotion, started together from two
services (two connection pools) in threads, round after round.

Each round, with keep_last 2: ``race``'s staging goes @a -> @b, two more versions are
registered, so the run plans to archive @a (the slot's rollback target) while a rollback
moves staging back to it; and a new name's @1 (also planned for archiving) is promoted
into its empty staging slot. Whatever the order, no slot may end up holding a retired
version: either the move wins (the run skips the version, saying why) or the run wins
(the move is refused because the version is archived).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llmreg.bundle.schema import Bundle
from llmreg.errors import TransitionError
from llmreg.policy import DEFAULT_POLICY_YAML, parse_policy
from llmreg.service import RegistryService
from llmreg.types import Actor
from tests.conftest import minimal

ROUNDS = 16
ANA = Actor("ana")
# keep_last alone: the rollback rules (keep_rollback, archive_grace_days) keep versions
# a slot held, which this race is not about; test_deprecation.py pins them.
KEEP2 = DEFAULT_POLICY_YAML.replace("keep_last: 10", "keep_last: 2").replace(
    "keep_rollback: 2", "keep_rollback: 0").replace("archive_grace_days: 14",
                                                     "archive_grace_days: 0")


@pytest.fixture
def two(tmp_path: Path, database_url: str | None) -> Iterator[tuple[RegistryService, ...]]:
    policy = parse_policy(KEEP2, source="race.yaml")
    services = tuple(RegistryService.open_home(tmp_path / "reg", database_url=database_url,
                                               policy=policy) for _ in range(2))
    try:
        yield services
    finally:
        for svc in services:
            svc.close()


def _register(svc: RegistryService, name: str, tag: str) -> int:
    info = svc.versions.register(Bundle.from_dict(minimal(system_prompt=f"{name} {tag}")),
                                 name=name, message=tag, author="ana")
    return info.version.version


def _together(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` in threads released by one barrier; each result or its exception."""
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            out[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - judged by the test below
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


def _archived_refusal(result: Any) -> bool:
    return isinstance(result, TransitionError) and "archived" in str(result)


def test_deprecation_never_retires_what_a_concurrent_move_puts_in_a_slot(
        two: tuple[RegistryService, RegistryService]) -> None:
    svc, other = two
    _register(svc, "race", "first")
    svc.owners.set("race", team="race-team", contacts=["race@example.com"], actor=ANA)
    outcomes = {"rollback won": 0, "run won the rollback": 0,
                "promotion won": 0, "run won the promotion": 0}
    for r in range(ROUNDS):
        a, b = _register(svc, "race", f"a{r}"), _register(svc, "race", f"b{r}")
        svc.lifecycle.promote(f"race@{a}", "staging", actor=ANA, reason="a")
        svc.lifecycle.promote(f"race@{b}", "staging", actor=ANA, reason="b")
        _register(svc, "race", f"c{r}")
        _register(svc, "race", f"d{r}")
        fresh = f"fresh-{r}"
        for i in range(3):
            _register(svc, fresh, str(i))
        svc.owners.set(fresh, team="race-team", contacts=["race@example.com"], actor=ANA)
        planned = {(x.name, x.version) for x in svc.deprecation.plan().actions}
        assert {("race", a), (fresh, 1)} <= planned

        report, back, promoted = _together(
            svc.deprecation.run,
            lambda: other.lifecycle.rollback("race", "staging", actor=ANA, reason="undo"),
            functools.partial(other.lifecycle.promote, f"{fresh}@1", "staging", actor=ANA,
                              reason="old one"))

        assert not isinstance(report, Exception), report
        done = {(x.name, x.version) for x in report.actions}
        skipped = {(x.name, x.version): x.reason for x in report.skipped}
        a_status = svc.versions.resolve(f"race@{a}").status
        if _archived_refusal(back):
            outcomes["run won the rollback"] += 1
            assert ("race", a) in done and a_status == "archived"
            assert svc.slots.status("race", "staging")[0].version == b
        else:
            assert not isinstance(back, Exception), back
            outcomes["rollback won"] += 1
            assert ("race", a) not in done and a_status == "staging"
            assert svc.slots.status("race", "staging")[0].version == a
            if ("race", a) in skipped:
                assert skipped[("race", a)] == ("skipped: staging holds it now (moved there "
                                                "after the plan was read)")
        fresh_status = svc.versions.resolve(f"{fresh}@1").status
        if _archived_refusal(promoted):
            outcomes["run won the promotion"] += 1
            assert (fresh, 1) in done and fresh_status == "archived"
            assert svc.slots.status(fresh) == []
        else:
            assert not isinstance(promoted, Exception), promoted
            outcomes["promotion won"] += 1
            assert (fresh, 1) not in done and fresh_status == "staging"

        # The invariant, over the whole registry: no slot holds a retired version.
        for slot in svc.slots.status():
            status = svc.versions.resolve(f"{slot.name}@{slot.version}").status
            assert status not in ("archived", "deprecated"), (r, slot, status)

    assert sum(outcomes.values()) == 2 * ROUNDS, outcomes
    print(outcomes)
