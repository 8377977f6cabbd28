"""Scale curve: one registry grown to 1k, 10k, 100k and 1M versions, on SQLite and on
PostgreSQL, with the batch API (``Client.log_bundles``).

Run:  python -m bench.bench_scale                      (both databases, up to 1M)
      python -m bench.bench_scale --db sqlite --max 100000
      python -m bench.bench_scale --report             (only rewrite docs/benchmarks.md)

At each size it records resolve latency (p50, p99) of a production-style slot lookup
through a fresh client, ``status`` latency, the size of the database and of the blob
store, and the rate the registry grew at. Each checkpoint is appended to
``bench/.work/scale-<db>.jsonl`` as it is reached, so a run stopped early still reports
the sizes it got to; ``--report`` turns those files into the "Scale curve" section of
docs/benchmarks.md. PostgreSQL: the server at 127.0.0.1:5432 (``LLMREG_TEST_PG``, the
tests' admin DSN); the run creates its own database and drops it at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import llmreg
from bench.common import ROOT, machine, pct, write_section
from llmreg.settings import Settings

SIZES = (1_000, 10_000, 100_000, 1_000_000)
NAMES = 100  # versions spread over this many names (10,000 each at 1M)
BATCH = 1_000
SLOTS = 10  # names with a staging slot, moved to their latest version at each size
WORK = ROOT / "bench" / ".work"
ADMIN_DSN = os.environ.get("LLMREG_TEST_PG", "host=127.0.0.1 port=5432 dbname=test")


_BASE: list[llmreg.Bundle] = []


def bundle(name: int, i: int) -> llmreg.Bundle:
    """A distinct small bundle. Validated once, then copied with a new system prompt
    (what ``from_dict`` would give, without validating the same model a million times:
    on this shared machine that alone would take longer than registering)."""
    if not _BASE:
        _BASE.append(llmreg.Bundle.from_dict({
            "model": {"provider": "openai", "id": "gpt-4o-2024-08-06",
                      "parameters": {"temperature": 0.2}},
            "system_prompt": "-",
            "template": {"source": "Q: {{ q }}", "variables": ["q"]},
        }))
    copy = _BASE[0].model_copy(
        update={"system_prompt": f"You are assistant {name}, revision {i}.\nAnswer briefly."})
    copy._canonical = copy._digest = None  # computed again from the new content
    return copy


def folder_size(path: Path) -> tuple[int, int]:
    """(bytes, files) under ``path``."""
    total = files = 0
    stack = [path]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
                    files += 1
    return total, files


def pg_database() -> tuple[str, str]:
    import psycopg

    name = f"llmreg_scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        params = dict(p.split("=", 1) for p in ADMIN_DSN.split())
        user = params.get("user") or admin.info.user
    return name, f"postgresql+psycopg://{user}@{params.get('host', '127.0.0.1')}:" \
                 f"{params.get('port', '5432')}/{name}"


def pg_size(name: str) -> int:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        row = admin.execute("SELECT pg_database_size(%s)", (name,)).fetchone()
    return int(row[0]) if row else 0


def pg_drop(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(home: Path, settings: Settings, rounds: int) -> dict[str, float]:
    """Resolve and status latency through a fresh client, as an application sees it."""
    with llmreg.connect(home, settings=settings) as reg:
        names = [f"bot-{n:03d}" for n in range(SLOTS)]
        for name in names:  # warm: connection, caches, the OS file cache
            reg.resolve(name, env="staging")
        times = []
        for k in range(rounds):
            t = time.perf_counter()
            reg.resolve(names[k % SLOTS], env="staging").render(q="hi")
            times.append((time.perf_counter() - t) * 1000)
        status = []
        for _ in range(max(20, rounds // 50)):
            t = time.perf_counter()
            reg.status()
            status.append((time.perf_counter() - t) * 1000)
    return {"resolve_p50_ms": pct(times, 50), "resolve_p99_ms": pct(times, 99),
            "status_p50_ms": pct(status, 50), "status_p99_ms": pct(status, 99)}


def run(db: str, top: int, rounds: int) -> None:
    sizes = [s for s in SIZES if s <= top] or [top]
    work = WORK / f"scale-{db}-{os.getpid()}"
    home = work / ".llmreg"
    out = WORK / f"scale-{db}.jsonl"
    out.unlink(missing_ok=True)
    pg_name = None
    if db == "postgresql":
        pg_name, url = pg_database()
        settings = Settings(database_url=url, store=str(work / "store"))
        blobs = work / "store"
    else:
        settings = Settings()
        blobs = home / "blobs"
    counts = [0] * NAMES
    total = batches = 0
    try:
        with llmreg.connect(home, settings=settings, create=True) as reg:
            for size in sizes:
                start, grown = time.perf_counter(), total
                while total < size:
                    # Small sizes are spread over every name too: batches of at
                    # least 10, at most BATCH, names in turn.
                    take = min(BATCH, max(10, (size - grown) // NAMES), size - total)
                    n = batches % NAMES
                    batches += 1
                    batch = [bundle(n, counts[n] + k) for k in range(take)]
                    reg.log_bundles(batch, name=f"bot-{n:03d}", message="scale")
                    counts[n] += take
                    total += take
                rate = (total - grown) / (time.perf_counter() - start)
                for n in range(SLOTS):
                    if counts[n]:
                        reg.promote(f"bot-{n:03d}@{counts[n]}", to="staging", reason="scale")
                point = {"db": db, "versions": total, "grow_rate": rate,
                         **measure(home, settings, rounds)}
                if pg_name is not None:
                    point["db_bytes"] = pg_size(pg_name)
                else:
                    point["db_bytes"] = sum(p.stat().st_size for p in home.glob("registry.db*"))
                point["blob_bytes"], point["blob_files"] = folder_size(blobs)
                point["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                point["load"] = os.getloadavg()[0]
                with out.open("a") as fh:
                    fh.write(json.dumps(point) + "\n")
                print(json.dumps(point), flush=True)
    finally:
        if pg_name is not None:
            pg_drop(pg_name)
        shutil.rmtree(work, ignore_errors=True)


def _mib(n: float) -> str:
    return f"{n / 1024 / 1024:,.1f}"


def _points(db: str) -> list[dict[str, Any]]:
    path = WORK / f"scale-{db}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] \
        if path.exists() else []


def report() -> None:
    rows = []
    flat = []
    for db in ("sqlite", "postgresql"):
        points = _points(db)
        for p in points:
            rows.append(f"| {db} | {p['versions']:,} | {p['resolve_p50_ms']:.2f} | "
                        f"{p['resolve_p99_ms']:.2f} | {p['status_p50_ms']:.2f} | "
                        f"{_mib(p['db_bytes'])} | {_mib(p['blob_bytes'])} "
                        f"({p['blob_files']:,} files) | {p['grow_rate']:,.0f} |")
        if len(points) > 1:
            first, last = points[0], points[-1]
            flat.append(f"{db}: resolve p50 {first['resolve_p50_ms']:.2f} ms at "
                        f"{first['versions']:,} → {last['resolve_p50_ms']:.2f} ms at "
                        f"{last['versions']:,} versions "
                        f"({last['resolve_p50_ms'] / first['resolve_p50_ms']:.2f}x)")
        elif not points:
            flat.append(f"{db}: not run")
        if points and points[-1]["versions"] < SIZES[-1]:
            flat.append(f"{db} stopped at {points[-1]['versions']:,} versions: "
                        f"{SIZES[-1]:,} was not reached in the time the run had")
    table = "\n".join(rows)
    summary = "; ".join(flat)
    loads = [p["load"] for db in ("sqlite", "postgresql")
             for p in _points(db) if "load" in p]
    load = (f"load average {min(loads):.1f} to {max(loads):.1f} on the 2 cores at the "
            "checkpoints" if loads else "load not recorded")
    body = f"""
Command: `python -m bench.bench_scale` (both databases; `--max N` to stop earlier;
`--report` rewrites this section from the checkpoints in `bench/.work/`). Machine:
{machine()}; {load}. Sizes not listed were not reached in the time the run had (it
appends each checkpoint as it reaches it).

One registry grown with `Client.log_bundles` (batches of {BATCH} versions, over {NAMES}
names), the embedded client on SQLite (WAL) and the same client over PostgreSQL 127.0.0.1
(`LLMREG_DATABASE_URL`), blobs in a local folder for both. At each size: {SLOTS} names get
their latest version promoted to staging; a fresh client then resolves those slots and
renders them (p50/p99 of the rounds), and asks `status()` (every slot). Database size:
the SQLite file with its WAL, or `pg_database_size`. Blob store: bytes of the blob files
(each version is a manifest and a stored diff). Growth: bundles/s while reaching that size.

| db | versions | resolve p50 ms | p99 ms | status p50 ms | db MiB | blobs MiB | grew at /s |
|---|---|---|---|---|---|---|---|
{table}

Flatness (target: within 2x from 1k to 1M): {summary}.
"""
    write_section("Scale curve", body)
    print(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--max", type=int, default=SIZES[-1], help="largest size to reach")
    parser.add_argument("--rounds", type=int, default=2000, help="resolves per size")
    parser.add_argument("--report", action="store_true", help="only write the docs section")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if not args.report:
        for db in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
            run(db, args.max, args.rounds)
    report()


if __name__ == "__main__":
    main()
