"""Core benchmark: register throughput (one by one and in batches), get latency by ref,
whole-process startup, and fsck afterwards.

Run:  python -m bench.bench_core            (about 5 minutes; --versions N to change size)

Writes the "Core registry" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import llmreg
from bench.common import machine, median, pct, write_section

NAMES = 20


def make_bundle(i: int) -> llmreg.Bundle:
    return llmreg.Bundle.from_dict({
        "model": {"provider": "openai", "id": "gpt-4o-2024-08-06",
                  "parameters": {"temperature": 0.2, "max_tokens": 400}},
        "system_prompt": f"You are support assistant number {i}.\n" + "Be precise. " * 40,
        "template": {"source": "Question: {{ q }}\nContext: {{ ctx }}",
                     "variables": ["q", "ctx"]},
        "few_shot": [{"input": {"q": f"q{k}", "ctx": "c"}, "output": f"a{k}"} for k in range(3)],
    })


def bench_register(home: Path, versions: int, single: int,
                   batch: int) -> tuple[dict[str, float], dict[str, str]]:
    """Fill the registry to ``versions`` with the batch API, then time ``single``
    ``log_bundle`` calls and ``batch`` bundles through ``log_bundles``, each on a registry
    that already holds ``versions`` versions; fsck must be clean afterwards."""
    per_name = versions // NAMES
    bundles = [make_bundle(i) for i in range(versions + single + batch)]
    refs: dict[str, str] = {}
    rates: dict[str, float] = {}
    with llmreg.connect(home, create=True) as reg:
        start = time.perf_counter()
        for n in range(NAMES):
            for k in range(0, per_name, 1000):
                reg.log_bundles(bundles[n * per_name + k:n * per_name + min(k + 1000, per_name)],
                                name=f"bot-{n:02d}", message=f"import {k}")
        rates["fill"] = versions / (time.perf_counter() - start)
        done = reg.get(f"bot-00@{per_name // 2}")
        refs = {"name@N": f"{done.name}@{done.version}",
                "name@sha256:<full>": f"{done.name}@{done.digest}",
                "name@<short>": f"{done.name}@{done.short_digest}",
                "name (latest)": str(done.name)}
        start = time.perf_counter()
        for i in range(single):
            reg.log_bundle(bundles[versions + i], name=f"bot-{i % NAMES:02d}", message=f"v{i}")
        rates["single"] = single / (time.perf_counter() - start)
        rest = bundles[versions + single:]
        start = time.perf_counter()
        for k in range(0, batch, 1000):
            reg.log_bundles(rest[k:k + 1000], name=f"bot-{k // 1000 % NAMES:02d}",
                            message="batch")
        rates["batch"] = batch / (time.perf_counter() - start)
        start = time.perf_counter()
        blobs, problems = reg.fsck()
        rates["fsck_s"] = time.perf_counter() - start
        rates["fsck_blobs"] = blobs
        assert problems == [], f"fsck found problems: {problems[:5]}"
        rates["audit_entries"] = reg.verify_audit()
    return rates, refs


def bench_get(home: Path, refs: dict[str, str], rounds: int) -> dict[str, tuple[float, float]]:
    out = {}
    with llmreg.connect(home) as reg:
        for label, ref in refs.items():
            reg.get(ref)  # warm
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                reg.get(ref)
                times.append((time.perf_counter() - t) * 1000)
            out[label] = (median(times), pct(times, 95))
    return out


def bench_process(home: Path, ref: str, runs: int) -> dict[str, float]:
    env = {**os.environ, "LLMREG_HOME": str(home)}
    commands = {
        "python -c pass": "pass",
        "python -c 'import llmreg'": "import llmreg",
        f"python -c \"import llmreg; llmreg.connect().get('{ref}')\"":
            f"import llmreg; llmreg.connect().get({ref!r})",
    }
    out = {}
    for label, code in commands.items():
        subprocess.run([sys.executable, "-c", code], env=env, check=True)  # warm the OS cache
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            times.append((time.perf_counter() - t) * 1000)
        out[label] = median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--single", type=int, default=1000,
                        help="log_bundle calls timed after the fill")
    parser.add_argument("--batch", type=int, default=2000,
                        help="bundles registered through log_bundles after the fill")
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="llmreg-bench-"))
    try:
        home = work / ".llmreg"
        rates, refs = bench_register(home, args.versions, args.single, args.batch)
        gets = bench_get(home, refs, args.rounds)
        procs = bench_process(home, refs["name@N"], args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    single, batch = f"{rates['single']:.0f}", f"{rates['batch']:.0f}"
    rows = "\n".join(f"| `{label}` | {p50:.2f} | {p95:.2f} |"
                     for label, (p50, p95) in gets.items())
    proc_rows = "\n".join(f"| `{label}` | {ms:.0f} |" for label, ms in procs.items())
    body = f"""
Command: `python -m bench.bench_core` (defaults: {args.versions} versions over {NAMES} names,
{args.rounds} gets per ref, {args.runs} process runs). Machine: {machine()}.
Embedded registry: SQLite (WAL) + local blob folder, in a temp folder.

**Register throughput** with {args.versions} versions already in the registry (filled
with the batch API over {NAMES} names at {rates['fill']:.0f} bundles/s), each version
keeping every durability step: provenance capture (the benchmark runs in a git
checkout; `git status` is asked again whenever the refs or the index change, and at
least once a second), every blob written to a temporary file and synced before it is
renamed (a single registration fsyncs its two blobs in parallel; a batch syncs each
chunk of 256 with one `syncfs`), the folder synced before the transaction; the semantic
diff against the previous version stored as a blob; one audit entry per version, in
the write transaction:

| path | bundles/s |
|---|---|
| `Client.log_bundle(Bundle)`, {args.single} calls, one transaction each | **{single}** |
| `Client.log_bundles(bundles, name=…)`, {args.batch} bundles, 1,000 a batch | **{batch}** |

Afterwards `fsck` read {rates['fsck_blobs']:,.0f} blobs in {rates['fsck_s']:.1f} s and found
nothing wrong, and `verify_audit` checked {rates['audit_entries']:,.0f} chained entries.
Load average when the run ended: {os.getloadavg()[0]:.1f} (2 cores).

**`get` latency** with {args.versions} versions in the registry (resolve the ref, read
the manifest blob, verify its digest, parse and validate the bundle):

| ref form | p50 ms | p95 ms |
|---|---|---|
{rows}

**Whole-process time** (median of {args.runs} runs, fresh interpreter each):

| command | ms |
|---|---|
{proc_rows}
"""
    write_section("Core registry", body)
    print(body)


if __name__ == "__main__":
    main()
