"""Core benchmark: register throughput, get latency by ref, whole-process startup.

Run:  python -m bench.bench_core            (about 2 minutes; --versions N to change size)

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


def bench_register(home: Path, versions: int) -> tuple[float, dict[str, str]]:
    bundles = [make_bundle(i) for i in range(versions)]
    refs: dict[str, str] = {}
    with llmreg.connect(home, create=True) as reg:
        start = time.perf_counter()
        for i, b in enumerate(bundles):
            done = reg.log_bundle(b, name=f"bot-{i % NAMES:02d}", message=f"v{i}")
            if i == versions // 2:
                refs = {"name@N": f"{done.name}@{done.version}",
                        "name@sha256:<full>": f"{done.name}@{done.digest}",
                        "name@<short>": f"{done.name}@{done.short_digest}",
                        "name (latest)": str(done.name)}
        elapsed = time.perf_counter() - start
    return versions / elapsed, refs


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
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="llmreg-bench-"))
    try:
        home = work / ".llmreg"
        rate, refs = bench_register(home, args.versions)
        gets = bench_get(home, refs, args.rounds)
        procs = bench_process(home, refs["name@N"], args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = "\n".join(f"| `{label}` | {p50:.2f} | {p95:.2f} |"
                     for label, (p50, p95) in gets.items())
    proc_rows = "\n".join(f"| `{label}` | {ms:.0f} |" for label, ms in procs.items())
    body = f"""
Command: `python -m bench.bench_core` (defaults: {args.versions} versions over {NAMES} names,
{args.rounds} gets per ref, {args.runs} process runs). Machine: {machine()}.
Embedded registry: SQLite (WAL) + local blob folder, in a temp folder.

**Register throughput**, `Client.log_bundle(Bundle)` in one process, growing the registry
from 0 to {args.versions} versions (each: provenance capture, blob write with fsync, the
semantic diff against the previous version, one write transaction with its audit
entry): **{rate:.0f} bundles/s**.

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
