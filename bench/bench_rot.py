"""A rot simulation: two simulated years of a registry left to its own policy.

``python -m bench.bench_rot [--scale 1.0] [--days 730] [--seed 7]``

20 teams × 30 LLM features (``--scale`` multiplies the features), each retrained or
edited every ~9 days (about 50,000 versions at scale 1): registrations, evals, shadow
runs, promotions (sometimes through environment aliases), rollbacks, owners changing
team, and features abandoned while still holding production. Clients heartbeat daily.
The clock is injected (``llmreg.db.models.set_clock``) and the registry's scheduled jobs
(deprecation, alerts, deliveries) run once a simulated day through ``svc.jobs.run_due``.

The simulator keeps its own ground truth and checks, writing the figures into
docs/benchmarks.md:

1. "what runs in production" equals the ground truth for every name at every simulated
   month;
2. every production move carries an eval bound to the digest it moved to;
3. no environment name outside the policy is stored anywhere;
4. active (not archived) versions stay within the policy's bound (the last ``keep_last``
   plus those an environment holds);
5. each abandoned production feature gets exactly one stale-production alert, within a
   day of crossing ``stale_production_days`` (and no other feature gets one);
6. the wall time of a final deprecation run over the whole registry (SQLite).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlmodel import select

from bench.common import machine, write_section
from llmreg.bundle.schema import Bundle
from llmreg.db.models import Evidence, SlotEvent, set_clock
from llmreg.policy import DEFAULT_POLICY_YAML, parse_policy
from llmreg.service import RegistryService
from llmreg.types import Actor

TEAMS, FEATURES = 20, 30
KEEP_LAST, STALE_DAYS = 5, 30
POLICY = (DEFAULT_POLICY_YAML.replace("keep_last: 10", f"keep_last: {KEEP_LAST}")
          .replace("deprecation: 1h", "deprecation: 1d").replace("alerts: 1h", "alerts: 1d"))
START = datetime(2025, 1, 1, tzinfo=UTC)
EVAL = {"accuracy": 0.95}
ROWS = [
    ("production matches the ground truth, every name, every simulated month", "truth"),
    ("production moves carrying an eval bound to the digest moved to", "evidence"),
    ("unknown environment names stored (slots, history, audit, heartbeats)", "unknown"),
    ("months where every name's active versions are within the bound", "bound"),
    ("abandoned production features with exactly one alert, within a day of the threshold",
     "alerts"),
    ("alerts for features that were not abandoned", "false_alerts"),
    ("final `deprecation run` over the whole registry (SQLite)", "final"),
]


class Clock:
    """The simulation's time, read by every state change through ``set_clock``."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def at(self, day: int, seconds: float) -> datetime:
        self.now = START + timedelta(days=day, seconds=seconds)
        return self.now


def bundle(name: str, n: int) -> Bundle:
    return Bundle.from_dict({
        "model": {"provider": "openai", "id": "gpt-4o-2024-08-06",
                  "parameters": {"temperature": round((n % 7) / 10, 1)}},
        "system_prompt": f"You are {name}'s assistant, revision {n}.",
        "template": {"source": "Q: {{ q }}", "variables": ["q"]},
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    features = max(1, round(FEATURES * args.scale))
    names = [f"t{t:02d}-feature-{f:02d}" for t in range(TEAMS) for f in range(features)]
    clock = Clock()
    set_clock(clock)
    # A RAM folder when there is one: the machine's shared disk is not what is measured.
    scratch = "/dev/shm" if Path("/dev/shm").is_dir() else None
    home = Path(tempfile.mkdtemp(prefix="llmreg-rot-", dir=scratch)) / ".llmreg"
    svc = RegistryService.open_home(home, policy=parse_policy(POLICY, source="rot-policy"))
    leads = [Actor("lead-a"), Actor("lead-b")]
    truth: dict[str, int | None] = {n: None for n in names}
    staged: dict[str, int] = {}
    shadowed: dict[str, int] = {}  # the version each name's shadow slot holds
    history: dict[str, list[int]] = defaultdict(list)  # production versions, in order
    latest: dict[str, int] = {}
    # A tenth of the features are abandoned on some day while holding production.
    late = max(args.days // 4 + 1, args.days - STALE_DAYS - 5)  # alerts must fall in the run
    abandoned = {n: rng.randrange(args.days // 4, late)
                 for n in rng.sample(names, max(1, len(names) // 10))}
    last_beat: dict[str, datetime] = {}
    months: list[tuple[int, float, bool]] = []
    started = time.perf_counter()
    for name in names:
        clock.at(0, 1)
        team = name.split("-")[0]
        svc.versions.register(bundle(name, 1), name=name, message="first", author=f"bot-{team}")
        latest[name] = 1
        svc.owners.set(name, team=team, contacts=[f"{team}@example.com"], actor=Actor("admin"))
    for day in range(args.days):
        beats = []
        for i, name in enumerate(names):
            clock.at(day, 60 + i)
            gone = name in abandoned and day >= abandoned[name] and truth[name] is not None
            if gone:
                continue
            author = Actor(f"bot-{name.split('-')[0]}")
            # New version (retrain or edit), evaluated and staged the same day.
            if rng.random() < 1 / 9 or (day == 0):
                if day > 0:
                    latest[name] += 1
                    svc.versions.register(bundle(name, latest[name]), name=name,
                                          message="retrain", author=author.name)
                ref = f"{name}@{latest[name]}"
                svc.evidence.attach(ref, type="eval", suite="regression",
                                    metrics=EVAL, actor=author)
                env = rng.choice(["staging", "pre-prod"])  # aliases resolve to one env
                svc.lifecycle.promote(ref, env, actor=author, reason="candidate")
                staged[name] = latest[name]
            # Weekly release of what is in staging, sometimes through shadow.
            if day % 7 == i % 7 and name in staged and staged[name] != truth[name]:
                ref = f"{name}@{staged[name]}"
                # Through shadow now and then (not again for a version shadow holds: a
                # release redone after a rollback).
                if rng.random() < 0.2 and shadowed.get(name) != staged[name]:
                    shadowed[name] = staged[name]
                    svc.approvals.approve(ref, "shadow", actor=leads[0])
                    svc.lifecycle.promote(ref, "shadow", actor=author, reason="shadow run")
                    svc.evidence.attach(ref, type="shadow-metrics", suite="shadow",
                                        metrics={"error_rate": 0.002}, actor=author)
                for lead in leads:
                    svc.approvals.approve(ref, "production", actor=lead)
                svc.lifecycle.promote(ref, rng.choice(["production", "prod"]), actor=author,
                                      reason="weekly release")
                truth[name] = staged[name]
                history[name].append(staged[name])
            elif truth[name] is not None and len(history[name]) > 1 and rng.random() < 0.004 \
                    and svc.versions.resolve(f"{name}@{history[name][-2]}").status != "archived":
                svc.lifecycle.rollback(name, "production", actor=author, reason="regression")
                history[name].append(history[name][-2])
                truth[name] = history[name][-1]
            if rng.random() < 0.0005:
                team = f"t{rng.randrange(TEAMS):02d}"
                svc.owners.set(name, team=team, contacts=[f"{team}@example.com"],
                               actor=Actor("admin"))
            if truth[name] is not None:
                digest = svc.versions.resolve(f"{name}@{truth[name]}").digest
                beats.append({"name": name, "env": "production", "digest": digest,
                              "count": rng.randrange(50, 5000)})
                last_beat[name] = clock.at(day, 12 * 3600)
        clock.at(day, 12 * 3600)
        for i in range(0, len(beats), 1000):
            svc.traffic.record(beats[i:i + 1000])
        svc.jobs.run_due(now=clock.at(day, 23 * 3600))
        if day % 30 == 29:
            prod = {r.name: r.version for r in svc.slots.status(env="production")}
            expected = {n: v for n, v in truth.items() if v is not None}
            bounded = _within_bound(svc)
            months.append((day, sum(prod.get(n) == v for n, v in expected.items())
                           / max(1, len(expected)) * 100 if prod.keys() == expected.keys()
                           else 0.0, bounded))
    sim_seconds = time.perf_counter() - started
    clock.at(args.days, 0)
    t0 = time.perf_counter()
    final = svc.deprecation.run()
    final_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    svc.deprecation.plan()
    plan_s = time.perf_counter() - t0
    figures = _figures(svc, abandoned, last_beat, months)
    with svc.db.read() as s:
        versions = s.execute(text("SELECT count(*) FROM versions")).scalar_one()
        archived = s.execute(text("SELECT count(*) FROM versions WHERE status = 'archived'")
                             ).scalar_one()
    set_clock(None)
    figures["final"] = (f"**{final_s:.2f} s** ({len(final.actions)} actions; `plan` "
                        f"{plan_s:.2f} s)")
    figures["bound"] += f" (last {KEEP_LAST} versions + those an environment holds)"
    table = "| check | result |\n|---|---|\n" + "\n".join(
        f"| {label} | {figures[key]} |" for label, key in ROWS)
    body = f"""
Command: `python -m bench.bench_rot --scale {args.scale:g} --days {args.days}` (seed
{args.seed}). Machine: {machine()}; load average {os.getloadavg()[0]:.1f} on 2 cores
when it ended. Embedded registry: SQLite (WAL) + local blob folder, in a RAM folder
(`/dev/shm`).

{TEAMS} teams × {features} features = {len(names)} names over {args.days} simulated days:
**{versions:,} versions** registered ({archived:,} archived by the policy), with evals,
shadow runs, weekly releases through `staging`/`pre-prod` and `production`/`prod`,
rollbacks, owner changes and {len(abandoned)} features abandoned while holding
production. Policy: `keep_last: {KEEP_LAST}`, `stale_production_days: {STALE_DAYS}`, jobs
daily (`deprecation: 1d`, `alerts: 1d`), run by `svc.jobs.run_due` with the injected
clock. Simulation wall time: {sim_seconds:.0f} s.

{table}
"""
    if not args.no_write:
        write_section("Rot simulation (issue 10)", body)
    print(body)
    svc.close()


def _within_bound(svc: RegistryService) -> bool:
    """Every non-archived version is among its name's last keep_last or held by a slot
    (versions registered since the day's deprecation run are among the last ones)."""
    with svc.db.read() as s:
        rows = s.execute(text(
            "SELECT count(*) FROM versions v JOIN bundle_names n ON n.id = v.name_id "
            "WHERE v.status != 'archived' AND v.number <= n.latest_version - :k "
            "AND NOT EXISTS (SELECT 1 FROM slots s WHERE s.name_id = v.name_id "
            "AND s.version = v.number)"), {"k": KEEP_LAST}).scalar_one()
    return bool(rows == 0)


def _figures(svc: RegistryService, abandoned: dict[str, int], last_beat: dict[str, datetime],
             months: list[tuple[int, float, bool]]) -> dict[str, str]:
    envs = set(svc.policy.environments)
    with svc.db.read() as s:
        moves = s.exec(select(SlotEvent.to_digest).where(SlotEvent.env == "production")).all()
        evals = {d for d in s.exec(select(Evidence.digest).where(Evidence.type == "eval"))}
        used: set[str | None] = set()
        for table, column in (("slots", "env"), ("slot_events", "env"), ("audit_log", "env"),
                              ("heartbeats", "env"), ("approvals", "env")):
            used |= {r[0] for r in s.execute(text(f"SELECT DISTINCT {column} FROM {table}"))}
    alerts = [(a.name, a.opened_at) for a in svc.alerts.list(include_closed=True)]
    with_eval = sum(1 for digest in moves if digest in evals)
    unknown = sorted(e for e in used if e is not None and e not in envs)
    by_name = defaultdict(list)
    for name, opened in alerts:
        by_name[name].append(opened)
    good = 0
    for name in abandoned:
        opened = by_name.get(name, [])
        due = last_beat[name] + timedelta(days=STALE_DAYS) if name in last_beat else None
        if len(opened) == 1 and due is not None and timedelta(0) <= opened[0] - due \
                <= timedelta(days=1):
            good += 1
    false_alerts = sum(1 for n in by_name if n not in abandoned)
    truth_ok = all(m[1] == 100.0 for m in months)
    return {
        "truth": f"**{100.0 if truth_ok else min(m[1] for m in months):.0f}%** "
                 f"({len(months)} months checked)" if months else "n/a",
        "evidence": f"**{with_eval / max(1, len(moves)) * 100:.0f}%** ({len(moves):,} moves)",
        "unknown": f"**{len(unknown)}**" + (f" ({', '.join(unknown)})" if unknown else ""),
        "bound": f"**{sum(m[2] for m in months)} of {len(months)}**",
        "alerts": f"**{good} of {len(abandoned)}**",
        "false_alerts": f"**{false_alerts}**",
    }


if __name__ == "__main__":
    main()
