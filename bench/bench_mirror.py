"""Mirror benchmark: the signed static mirror served by nginx, side by side with nginx
serving a plain file of the same size, and an application resolving through it.

Run:  python -m bench.bench_mirror            (about 2 minutes; needs wrk and nginx:
                                               apt-get install wrk nginx-light)

Measures, in one run:

- wrk (the settings of bench_server's resolve benchmark) against one nginx serving the
  published mirror folder: a slot's pointer (``targets/pointers/…/<hash>.production.json``),
  ``metadata/timestamp.json`` (what every client refresh reads) and the manifest, each
  beside a static file of exactly the same size in the same folder; two rounds,
  interleaved, best of each;
- a client resolving through the mirror end to end (TUF refresh — next root version,
  timestamp — then the pointer and the manifest from the verified cache): resolves/s
  and latency in one process; cold start of a fresh process (empty cache, warm cache);
- the import cost the mirror client adds at app start (``python -X importtime``),
  against the same app resolving from ``llmreg serve``.

Writes the "Signed static mirror" section of docs/benchmarks.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_server import WRK, free_port, setup_llmreg, time_process, wait_http, wrk
from bench.common import ROOT, clean_up, machine, pct, write_section

VARS = {"subject": "Refund", "body": "Where is my refund for order 5512?"}
RESOLVES = 2000
ROUNDS = 3  # wrk rounds, interleaved; the best of each (the machine is shared)


def importtime(code: str, env: dict[str, str]) -> dict[str, tuple[int, int]]:
    """module -> (self µs, cumulative µs) of one fresh process running ``code``."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env,
                         capture_output=True, text=True, check=True).stderr
    out = {}
    for line in err.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            out[parts[2].strip()] = (int(parts[0]), int(parts[1]))
    return out


def main() -> None:
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is missing: apt-get install wrk nginx-light")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    base = ROOT / "bench" / ".work"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mirror-", dir=base))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        from llmreg.service.mirror.keys import keygen
        from llmreg.service.mirror.publisher import publish
        from llmreg.service.registry import RegistryService

        home = work / "llmreg" / ".llmreg"
        token, body, digest = setup_llmreg(home)
        keys = keygen(work / "keys")
        svc = RegistryService.open_home(home)
        report = publish(svc, work / "mirror", keys)
        svc.close()
        mirror = work / "mirror"
        pointer = next(p for p in report.written if p.endswith(".production.json")
                       and "/ticket-classifier/" in p)
        files = {"pointer": pointer, "timestamp.json": "metadata/timestamp.json",
                 "manifest": next(p for p in report.written if p.startswith("targets/blobs/"))}
        sizes = {}
        for label, rel in files.items():
            size = (mirror / rel).stat().st_size
            sizes[label] = size
            # a plain file of the same size, same folder tree, same server
            (mirror / f"static-{label}.bin").write_bytes(b"x" * size)
        for folder in (work, *work.rglob("*")):
            os.chmod(folder, 0o755 if folder.is_dir() else 0o644)

        nport = free_port()
        conf = work / "nginx.conf"
        conf.write_text(f"""worker_processes 2; daemon off; pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; server {{ listen 127.0.0.1:{nport}; root {mirror};
  location / {{ default_type application/json; }} }} }}
""")
        procs.append(subprocess.Popen([nginx, "-c", str(conf), "-p", str(work)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
        nurl = f"http://127.0.0.1:{nport}"
        wait_http(f"{nurl}/metadata/timestamp.json")

        # -- wrk: mirror files against same-size static files, interleaved -------------
        load: dict[str, dict[str, float]] = {}
        load_avg = [os.getloadavg()[0]]
        for _ in range(ROUNDS):
            for label, rel in files.items():
                for name, path in ((f"mirror {label}", rel),
                                   (f"static file, {label} size", f"static-{label}.bin")):
                    result = wrk(f"{nurl}/{path}", {})
                    if name not in load or result["rps"] > load[name]["rps"]:
                        load[name] = result
        load_avg.append(os.getloadavg()[0])

        # -- the client, end to end ----------------------------------------------------
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMREG_")}
        root = str(keys / "root.json")
        import llmreg
        from llmreg.settings import Settings

        reg = llmreg.connect(nurl, trusted_root=root, settings=Settings(cache=work / "c1"))
        reg.resolve("ticket-classifier", env="production")  # warm: cache and TUF state
        lat = []
        start = time.perf_counter()
        for _ in range(RESOLVES):
            t0 = time.perf_counter()
            reg.resolve("ticket-classifier", env="production")
            lat.append((time.perf_counter() - t0) * 1000)
        in_process = RESOLVES / (time.perf_counter() - start)
        reg.close()

        app = ("import llmreg\n"
               f"reg = llmreg.connect({nurl!r}, trusted_root={root!r})\n"
               "b = reg.resolve('ticket-classifier', env='production')\n"
               f"b.render(**{VARS!r}).to_openai()\n")
        warm_env = {**env, "LLMREG_CACHE": str(work / "warm-cache")}
        subprocess.run([sys.executable, "-c", app], env=warm_env, check=True)
        cold = {
            "mirror, empty cache (first start on a machine)":
                time_process([sys.executable, "-c", app], env, work / "cold"),
            "mirror, warm cache (a restart)": time_process([sys.executable, "-c", app],
                                                           warm_env),
            "`python -c pass`": time_process([sys.executable, "-c", "pass"], env),
        }

        # -- import cost, against the same app on `llmreg serve` --------------------------
        lport = free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "llmreg_cli", "--registry", str(home), "serve",
             "--port", str(lport)], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True))
        lurl = f"http://127.0.0.1:{lport}"
        wait_http(f"{lurl}/readyz")
        http_app = app.replace(f"trusted_root={root!r}", f"token={token!r}").replace(
            repr(nurl), repr(lurl))
        cold["server client (`llmreg serve`), empty cache"] = time_process(
            [sys.executable, "-c", http_app], env, work / "cold-http")
        samples = []
        for i in range(5):
            over_http = importtime(http_app, {**env, "LLMREG_CACHE": str(work / f"ih{i}")})
            over_mirror = importtime(app, {**warm_env})
            added = {m: t for m, t in over_mirror.items() if m not in over_http}
            samples.append((sum(s for s, _ in added.values()), added,
                            sum(s for s, _ in over_http.values()),
                            sum(s for s, _ in over_mirror.values())))
        samples.sort(key=lambda x: x[0])
        added_us, added, http_total, mirror_total = samples[len(samples) // 2]
        top = sorted(((m, t) for m, t in added.items() if "." not in m),
                     key=lambda x: -x[1][1])[:6]
    finally:
        clean_up(procs, work)

    rows = []
    for label in files:
        ours, plain = load[f"mirror {label}"], load[f"static file, {label} size"]
        rows.append(f"| {label} ({sizes[label]} B) | {ours['rps']:,.0f} | {ours['p99']:.2f} | "
                    f"{plain['rps']:,.0f} | {plain['p99']:.2f} | "
                    f"**{ours['rps'] / plain['rps']:.0%}** |")
    table = "\n".join(rows)
    cold_rows = "\n".join(f"| {k} | {v:.0f} |" for k, v in cold.items())
    top_rows = "\n".join(f"    {m:<28} {t[1] / 1000:6.1f} ms cumulative" for m, t in top)
    ratio = load["mirror pointer"]["rps"] / load["static file, pointer size"]["rps"]
    body_md = f"""
Command: `python -m bench.bench_mirror`. Machine: {machine()}; load average
{os.getloadavg()[0]:.1f} on 2 cores when it ended.
One nginx (`worker_processes 2`, access log off) serves the folder `llmreg publish`
wrote (consistent-snapshot TUF layout) and, in the same folder, plain files of exactly
the same sizes; wrk uses the resolve benchmark's settings (`{' '.join(WRK)}`),
{ROUNDS} interleaved rounds, best of each. Load average (1 min) during the wrk rounds:
{load_avg[0]:.1f} at the start, {load_avg[1]:.1f} at the end, on 2 cores — other
engineers' benchmarks and test suites ran at the same time, so every figure here is
slower than on a quiet machine; the ratios compare runs made side by side.

**Pointer lookups: {ratio:.0%} of nginx's rate for a static file of the same size**
(target at least 80%):

| file | mirror req/s | p99 ms | same-size static req/s | p99 ms | ratio |
|---|---|---|---|---|---|
{table}

A mirror file is a static file: nginx serves it with `sendfile` like any other, so the
only difference left is noise. A client's refresh costs two such requests when nothing
changed (the next root version, absent, and `timestamp.json`) plus the pointer when its
slot moved.

**The client end to end** (`connect(nginx_url, trusted_root=…).resolve(...)`, TUF
refresh and verification each time, manifest from the verified cache):
{in_process:,.0f} resolves/s in one process, p50 {pct(lat, 50):.2f} ms, p99
{pct(lat, 99):.2f} ms ({RESOLVES} resolves, one thread).

**Cold start of an app** (median of 10 fresh processes: import, resolve production,
render):

| process | ms |
|---|---|
{cold_rows}

**Import cost** (`python -X importtime`, median of 5 pairs): the mirror client adds
**{added_us / 1000:.0f} ms** of imports (self time of the modules the server client does
not load: python-tuf, securesystemslib, pyca/cryptography, urllib3) to an app that
imports {http_total / 1000:.0f} ms resolving from `llmreg serve` ({mirror_total / 1000:.0f}
ms in all through the mirror; `python -c pass` took {cold['`python -c pass`']:.0f} ms in
the same run, a measure of how loaded the machine was). `import llmreg` itself adds
nothing: tuf is imported at the first resolve. securesystemslib imports every signer it
knows, and its AWS KMS signer imports boto3 (about 500 ms here); the client hides
boto3 and the other cloud SDKs while tuf is imported (it only verifies), unless the app
has loaded them already.
Largest added top-level imports:

{top_rows}
"""
    write_section("Signed static mirror", body_md)
    print(body_md)


if __name__ == "__main__":
    main()
