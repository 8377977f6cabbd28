"""Server-side render time of every web page on a registry of 200 names and 10,000
versions (``python -m bench.bench_web``).

The registry is filled in bulk through the ORM models (one transaction per name: versions,
slots, slot moves and their hash-chained audit entries, built with the service's own
``audit.entry_hash``), with 50 distinct manifests stored through the service's blob part,
because registering 10,000 versions one by one takes far longer than the measurement on a
shared 2-core machine. ``svc.audit.verify`` then checks that the fill is a registry the
service itself could have written, and a few real service calls (register, evidence,
approvals, promotion, heartbeats) go on top.

Each page is requested through the ASGI app in-process (Starlette's TestClient, with an
admin's session cookie, so the version page renders its forms too): 5 warm-ups, then
``N`` timed requests; p50 and p95 in milliseconds, wall and CPU. The audit page's chain
verification runs on the first audit page, then in the background (``VERIFY_TTL``); its
cold figure is given separately.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import machine, pct, write_section

NAMES = 200
VERSIONS = 50  # per name: 10,000 in all
TARGET_MS = 50.0


def fill(home: Path) -> object:
    """The registry: NAMES x VERSIONS versions, staging @last, production @last-2."""
    from sqlmodel import select

    from llmreg.bundle.schema import Bundle
    from llmreg.db.models import (
        AuditEntry,
        BundleName,
        Manifest,
        Slot,
        SlotEvent,
        Version,
    )
    from llmreg.service import RegistryService, audit
    from llmreg.types import Actor

    svc = RegistryService.open_home(home)
    digests = []
    for i in range(VERSIONS):
        prompt = "\n".join(["You are the support assistant.", f"Rule set {i}.",
                            *(f"- rule {k}" for k in range(i % 7 + 3)), "Be brief."])
        b = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06",
                                        "parameters": {"temperature": 0.1 + i % 5 / 10}},
                              "system_prompt": prompt,
                              "template": {"source": "Q: {{ q }}", "variables": ["q"]},
                              "few_shot": [{"input": f"q{k}", "output": f"a{k}"}
                                           for k in range(i % 4 + 1)]})
        svc.blobs.put_bytes(b.canonical_bytes())
        digests.append((b.digest, len(b.canonical_bytes())))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with svc.db.write() as s:
        for digest, size in digests:
            s.add(Manifest(digest=digest, size=size, kind="llm", created_at=t0))
        s.flush()
        last = s.exec(select(AuditEntry).order_by(AuditEntry.seq.desc())  # type: ignore[union-attr]
                      .limit(1)).first()
        seq, prev = (last.seq or 0, last.hash) if last else (0, audit.GENESIS)

        def log(at: datetime, actor: str, action: str, name: str, target: str,
                env: str | None, detail: dict[str, object]) -> None:
            nonlocal seq, prev
            seq += 1
            h = audit.entry_hash(seq, at, actor, action, name, target, env, detail, prev)
            s.add(AuditEntry(seq=seq, at=at, actor=actor, action=action, name=name,
                             target=target, env=env, detail=detail, prev_hash=prev, hash=h))
            prev = h

        for n in range(NAMES):
            name = f"app-{n:03d}"
            row = BundleName(name=name, created_at=t0, latest_version=VERSIONS)
            s.add(row)
            s.flush()
            parent = None
            for v in range(1, VERSIONS + 1):
                at = t0 + timedelta(minutes=n * VERSIONS + v)
                digest = digests[v - 1][0]
                msg = f"change {v} of {name}"
                changes = [] if parent is None else ["system_prompt: +1 -1 lines"]
                status = "registered"
                if v == VERSIONS:
                    status = "staging"
                elif v == VERSIONS - 2:
                    status = "production"
                s.add(Version(name_id=row.id, number=v, digest=digest, author="ana",
                              created_at=at, message=msg, parent_digest=parent,
                              provenance={"git": {"commit": "a" * 40, "dirty": False}},
                              changes=changes, status=status))
                log(at, "ana", "register", name, f"{name}@{v}", None,
                    {"digest": digest, "message": msg, "changes": changes})
                parent = digest
            for env, v in (("staging", VERSIONS), ("production", VERSIONS - 2)):
                at = t0 + timedelta(minutes=n * VERSIONS + VERSIONS, seconds=1)
                digest = digests[v - 1][0]
                s.add(Slot(name_id=row.id, env=env, version=v, digest=digest, updated_at=at,
                           updated_by="bo"))
                s.add(SlotEvent(name_id=row.id, env=env, action="promote", from_version=None,
                                to_version=v, to_digest=digest, actor="bo", reason="bench",
                                policy_digest=svc.policy.digest, gates=[], at=at))
                log(at, "bo", "promote", name, f"{name}@{v}", env,
                    {"from_version": None, "digest": digest, "reason": "bench",
                     "policy": svc.policy.digest, "gates": []})
    # Real service calls on top of the bulk fill.
    svc.evidence.attach(f"app-000@{VERSIONS}", type="eval", suite="regression",
                        metrics={"accuracy": 0.95}, actor=Actor("ci"))
    for who in ("cy", "dee"):
        svc.approvals.approve(f"app-000@{VERSIONS}", "production", actor=Actor(who))
    svc.access.record_heartbeats([{"name": f"app-{n:03d}", "env": "production",
                                   "digest": digests[VERSIONS - 3][0], "count": 10}
                                  for n in range(NAMES)])
    return svc


def run(n: int) -> dict[str, tuple[float, float, float, float]]:
    from fastapi.testclient import TestClient

    from llmreg.server.app import create_app
    from llmreg.settings import Settings

    home = Path(tempfile.mkdtemp()) / ".llmreg"
    started = time.perf_counter()
    svc = fill(home)
    fill_s = time.perf_counter() - started
    verified = svc.audit.verify()  # type: ignore[attr-defined]
    token, _ = svc.access.create_token("lee", "admin", created_by="bench")  # type: ignore[attr-defined]
    app = create_app(Settings(read_auth="token"), service=svc)  # type: ignore[arg-type]
    client = TestClient(app, base_url="http://bench.test")
    form = client.get("/signin").text
    csrf = re.search(r'name="csrf" value="([^"]*)"', form)
    assert csrf is not None
    r = client.post("/signin", data={"csrf": csrf.group(1), "token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    pages = {
        "board (first page of 50 names)": "/",
        "board (last page)": "/?offset=150",
        "name page (50 versions, slot history)": "/names/app-000",
        "version page (gates, evidence, forms)": f"/names/app-000/versions/{VERSIONS}",
        "diff page": f"/names/app-007/diff/{VERSIONS - 1}..{VERSIONS}",
        "audit timeline (all)": "/audit",
        "audit timeline (name + env)": "/audit?name=app-123&env=production",
        "audit timeline (actor, deep page)": "/audit?actor=ana&before=5000",
    }
    cold_started = time.perf_counter()
    assert client.get("/audit").status_code == 200
    cold_ms = (time.perf_counter() - cold_started) * 1000
    out: dict[str, tuple[float, float, float, float]] = {}
    for label, url in pages.items():
        for _ in range(5):
            assert client.get(url).status_code == 200, url
        wall, cpu = [], []
        for _ in range(n):
            t, c = time.perf_counter(), time.process_time()
            resp = client.get(url)
            cpu.append((time.process_time() - c) * 1000)
            wall.append((time.perf_counter() - t) * 1000)
            assert resp.status_code == 200
        out[label] = (pct(wall, 50), pct(wall, 95), pct(cpu, 50), pct(cpu, 95))
        print(f"{label:42s} wall p50 {out[label][0]:6.1f} p95 {out[label][1]:6.1f} ms; "
              f"cpu p50 {out[label][2]:6.1f} p95 {out[label][3]:6.1f} ms")
    print(f"fill {fill_s:.1f} s; audit entries verified {verified}; cold audit page "
          f"(verifies the chain) {cold_ms:.0f} ms")
    out["_cold_audit"] = (cold_ms, cold_ms, 0.0, 0.0)
    out["_fill"] = (fill_s, float(verified), 0.0, 0.0)
    svc.close()  # type: ignore[attr-defined]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="timed requests per page")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    with open("/proc/loadavg") as fh:
        load_before = fh.read().split()[0]
    results = run(args.n)
    with open("/proc/loadavg") as fh:
        load_after = fh.read().split()[0]
    cold_ms = results.pop("_cold_audit")[0]
    fill_s, verified = results.pop("_fill")[:2]
    worst = max(r[1] for r in results.values())
    worst_cpu = max(r[3] for r in results.values())
    rows = "\n".join(f"| {label} | {w50:.1f} | {w95:.1f} | {c50:.1f} | {c95:.1f} |"
                     for label, (w50, w95, c50, c95) in results.items())
    body = f"""
`python -m bench.bench_web` (n={args.n} requests per page after 5 warm-ups). Machine:
{machine()} (load average {load_before} before, {load_after} after, on 2 cores).

A registry of {NAMES} names × {VERSIONS} versions = {NAMES * VERSIONS:,} versions, each
name with a staging and a production slot and their audit entries ({int(verified):,}
entries; the chain verifies), filled in bulk in {fill_s:.0f} s. Each page is requested
through the ASGI app in-process with an admin's session (so the session lookup and the
version page's forms are included); times are the whole request, Starlette's TestClient
included, so they bound the server-side render from above. *Wall* is elapsed time, which
on a loaded machine includes waiting for a core; *CPU* is the process's CPU time per
request (client and server threads together), the work a request costs whatever the load.

| page | wall p50 ms | wall p95 ms | CPU p50 ms | CPU p95 ms |
|---|---|---|---|---|
{rows}

Target: every page under {TARGET_MS:.0f} ms p95. In CPU time: {'met' if worst_cpu < TARGET_MS
else 'NOT met'} (worst p95 {worst_cpu:.1f} ms). In wall time: {'met' if worst < TARGET_MS
else 'NOT met'} (worst p95 {worst:.1f} ms) at the load above. Lists are pages cut by the
database (50 rows); the board is
four queries whatever the registry's size. The audit page verifies the hash chain when it
is first shown (that request took {cold_ms:.0f} ms here: it re-hashes all
{int(verified):,} entries) and then re-checks it in the background at most once a minute,
showing the last answer and its time.
"""
    print(body)
    if not args.no_write:
        write_section("Web pages", body)


if __name__ == "__main__":
    main()
