"""Blob read benchmark: peak memory and throughput of Range reads on a big blob, old vs new.

Run:  python -m bench.bench_blobs [--old /work/main] [--size-mib 400]   (about 2 minutes)

Starts ``llmreg serve`` (one worker, local folder store) over a registry holding one
sparse blob of zeros (no disk used), once from this tree and, with ``--old``, once from
another checkout (its ``llmreg`` package and CLI, whatever is installed). On each it measures:

- four concurrent ``Range: bytes=0-`` reads of the whole blob: wall time, aggregate
  throughput, and the server's peak RSS (``VmHWM``) over its whole life;
- 20 small ranges (4 KiB at random offsets) one after another: median latency — the
  cost of a part read once the blob has been verified.

Writes the "Blob Range reads (issue 26)" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.bench_server import free_port, wait_http
from bench.common import ROOT, clean_up, machine, median, write_section

MIB = 1024 * 1024


# The CLI from ``tree``: an editable install maps llmreg and llmreg_cli to this checkout
# whatever PYTHONPATH says, so the launcher points that mapping at ``tree`` first.
LAUNCH = """
import sys
from pathlib import Path
tree = Path(sys.argv.pop(1))
for finder in sys.meta_path:
    mapping = getattr(sys.modules.get(getattr(finder, "__module__", "")), "MAPPING", None)
    if isinstance(mapping, dict) and "llmreg" in mapping:
        mapping.update(llmreg=str(tree / "llmreg"), llmreg_cli=str(tree / "cli"))
sys.path.insert(0, str(tree))
import llmreg
assert Path(llmreg.__file__).parent == tree / "llmreg", llmreg.__file__
from llmreg_cli.main import main
sys.argv[0] = "llmreg"
main()
"""


def command(tree: Path, home: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", LAUNCH, str(tree), "--registry", str(home), *args]


def cli(tree: Path, home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMREG_")}
    out = subprocess.run(command(tree, home, *args), env=env, check=True,
                         capture_output=True, text=True)
    return out.stdout


def sparse_blob(home: Path, size: int) -> str:
    hasher, zeros, left = hashlib.sha256(), bytes(MIB), size
    while left:
        hasher.update(zeros[:min(left, MIB)])
        left -= min(left, MIB)
    hexd = hasher.hexdigest()
    folder = home / "blobs" / "sha256"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / hexd, "wb") as fh:
        fh.truncate(size)
    return f"sha256:{hexd}"


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def measure(tree: Path, work: Path, size: int) -> dict[str, float]:
    home = work / tree.name / ".llmreg"
    cli(tree, home, "init")
    token = json.loads(cli(tree, home, "token", "create", "--subject", "bench", "--role",
                           "reader", "--json"))["token"]
    digest = sparse_blob(home, size)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMREG_")}
    proc = subprocess.Popen(command(tree, home, "serve", "--port", str(port), "--workers",
                                    "1"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz")
        idle = peak_rss(proc.pid)
        auth = {"Authorization": f"Bearer {token}"}
        blob = f"{url}/v1/blobs/{digest}"
        sizes: list[int] = []

        def whole() -> None:
            with httpx.stream("GET", blob, headers={**auth, "Range": "bytes=0-"},
                              timeout=600) as answer:
                sizes.append(sum(len(c) for c in answer.iter_bytes(MIB)))

        began = time.perf_counter()
        threads = [threading.Thread(target=whole) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
        assert sizes == [size] * 4, sizes
        rng = random.Random(26)
        small = []
        with httpx.Client(headers=auth, timeout=600) as http:
            for _ in range(20):
                start = rng.randrange(0, size - 4096)
                t0 = time.perf_counter()
                answer = http.get(blob, headers={"Range": f"bytes={start}-{start + 4095}"})
                small.append(time.perf_counter() - t0)
                assert answer.status_code == 206 and len(answer.content) == 4096
        return {"idle": idle / MIB, "peak": peak_rss(proc.pid) / MIB, "wall": wall,
                "mbps": 4 * size / MIB / wall, "small_ms": median(small) * 1000}
    finally:
        clean_up([proc], work / "none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, help="another checkout to compare with")
    parser.add_argument("--size-mib", type=int, default=400)
    args = parser.parse_args()
    size = args.size_mib * MIB
    base = ROOT / "bench" / ".work"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="blobs-", dir=base))
    rows = []
    try:
        trees = [("before (main)", args.old)] if args.old else []
        for label, tree in [*trees, ("after (chunk tables, 4 MiB pieces)", ROOT)]:
            assert tree is not None
            r = measure(tree.resolve(), work, size)
            print(label, r, flush=True)
            rows.append(f"| {label} | {r['idle']:.0f} | {r['peak']:.0f} | {r['wall']:.1f} | "
                        f"{r['mbps']:.0f} | {r['small_ms']:.1f} |")
    finally:
        clean_up([], work)
    command = "python -m bench.bench_blobs" + (f" --old {args.old}" if args.old else "") \
        + (f" --size-mib {args.size_mib}" if args.size_mib != 400 else "")
    write_section("Blob Range reads (issue 26)", f"""
`{command}` on {machine()}. One `llmreg serve` worker, folder store, one sparse
{args.size_mib} MiB blob (zeros; no disk I/O, so hashing and copying are what is timed).
Four concurrent `Range: bytes=0-` reads of the whole blob, then 20 reads of 4 KiB at
random offsets one after another. Peak RSS is the server's `VmHWM` over its life.

| server | idle RSS MiB | peak RSS MiB | 4 × whole, s | MiB/s, all 4 | 4 KiB range, ms |
|---|---|---|---|---|---|
{chr(10).join(rows)}

Before, every Range read hashed the whole blob and then returned the range as one bytes
object. After, the first read hashes the blob once and records a SHA-256 per MiB
(`llmreg/store/chunks.py`); every read then streams 4 MiB pieces, each chunk checked
against its hash before it is sent.
""")


if __name__ == "__main__":
    main()
