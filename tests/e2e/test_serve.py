"""The real server: `llmreg serve` in a subprocess on a free loopback port, driven by the
CLI and by fresh Python processes — killed mid-run and restarted."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES, free_port, stop_process, until_ready

pytestmark = pytest.mark.slow
LLMREG = [sys.executable, "-m", "llmreg_cli"]


class Served:
    def __init__(self, home: Path, tmp: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LLMREG_")}
        self.env["LLMREG_CACHE"] = str(tmp / "client-cache")
        self.proc: subprocess.Popen[bytes] | None = None
        tmp.mkdir(parents=True, exist_ok=True)
        self.log = tmp / "server.log"

    def cli(self, *args: str, token: str | None = None, check: bool = True,
            local: bool = False) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, LLMREG_USER="cli-user")
        if token:
            env["LLMREG_TOKEN"] = token
        where = str(self.home) if local else self.url
        result = subprocess.run([*LLMREG, "--registry", where, *args], env=env, text=True,
                                capture_output=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"llmreg {args} failed: {result.stderr}")
        return result

    def start(self, workers: int = 1) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*LLMREG, "--registry", str(self.home), "serve", "--port", str(self.port),
                 "--workers", str(workers)], env=self.env, stdout=log, stderr=log)
        if not until_ready(self.url):
            raise AssertionError(f"server did not start: {self.log.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def local_cli(home: Path, *args: str) -> str:
    """The CLI in this process, on the server's registry folder: setup that needs no
    subprocess of its own (the server and the clients under test are subprocesses)."""
    from typer.testing import CliRunner

    from llmreg_cli.main import app

    result = CliRunner().invoke(app, ["--registry", str(home), *args], prog_name="llmreg")
    assert result.exit_code == 0, result.output
    return result.stdout


def no_owner_rule(home: Path) -> None:
    """These tests are about serving, not owners: drop init's ``require_owner``."""
    policy = home.parent / "llmreg-policy.yaml"
    policy.write_text(policy.read_text().replace("require_owner: true", "require_owner: false"))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Served, dict[str, str]]]:
    home = tmp_path / "srv" / ".llmreg"
    s = Served(home, tmp_path)
    local_cli(home, "init")
    no_owner_rule(home)
    tokens = {}
    for subject, role in [("app", "reader"), ("ci", "publisher"), ("ann", "approver"),
                          ("abe", "approver")]:
        out = local_cli(home, "token", "create", "--subject", subject, "--role", role,
                        "--json")
        tokens[subject] = json.loads(out)["token"]
    s.start()
    yield s, tokens
    s.stop()


RESOLVE = """
import logging, sys, llmreg
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
reg = llmreg.connect("{url}", token="{token}")
try:
    b = reg.resolve("support-rag", env="production", strict={strict})
    print(b.digest, b.version, b.served_from_cache)
except llmreg.LLMRegError as exc:
    print(type(exc).__name__, exc)
    sys.exit(3)
"""


def resolve_in_fresh_process(s: Served, token: str, strict: bool = False
                             ) -> subprocess.CompletedProcess[str]:
    code = RESOLVE.format(url=s.url, token=token, strict=strict)
    return subprocess.run([sys.executable, "-c", code], env=s.env, text=True,
                          capture_output=True, timeout=60)


def test_cli_flow_kill_fallback_restart(served: tuple[Served, dict[str, str]]) -> None:
    s, t = served
    s.cli("register", str(EXAMPLES / "support-rag"), "-m", "first", token=t["ci"])
    s.cli("promote", "support-rag@1", "--to", "staging", "--reason", "try", token=t["ci"])
    refused = s.cli("promote", "support-rag@1", "--to", "production", "--reason", "go",
                    token=t["ci"], check=False)
    assert refused.returncode == 1 and "0 of 2 approvals" in refused.stderr
    metrics = s.home.parent / "m.json"
    metrics.write_text('{"accuracy": 0.95}')
    s.cli("eval", "attach", "support-rag@1", "--suite", "regression", "--metrics",
          str(metrics), token=t["ci"])
    s.cli("approve", "support-rag@1", "--to", "production", token=t["ann"])
    s.cli("approve", "support-rag@1", "--to", "production", token=t["abe"])
    no_token = s.cli("promote", "support-rag@1", "--to", "production", "--reason", "go",
                     check=False)
    assert no_token.returncode == 1 and "needs a token" in no_token.stderr
    s.cli("promote", "support-rag@1", "--to", "production", "--reason", "go", token=t["ci"])
    status = json.loads(s.cli("status", "--json", token=t["app"]).stdout)
    prod = next(r for r in status if r["env"] == "production")
    audit = json.loads(s.cli("audit", "support-rag", "--json", token=t["app"]).stdout)
    assert {e["actor"] for e in audit} >= {"ci", "ann", "abe"}

    live = resolve_in_fresh_process(s, t["app"])
    assert live.returncode == 0, live.stderr
    assert live.stdout.split() == [prod["digest"], "1", "False"]

    s.kill()  # SIGKILL: no goodbye
    cached = resolve_in_fresh_process(s, t["app"])
    assert cached.returncode == 0, cached.stderr
    assert cached.stdout.split() == [prod["digest"], "1", "True"]
    assert "serving the cached support-rag@production" in cached.stderr
    assert "llmreg: llmreg:" not in cached.stderr and "llmreg:llmreg:" not in cached.stderr
    assert "resolved" in cached.stderr and "s ago" in cached.stderr
    strict = resolve_in_fresh_process(s, t["app"], strict=True)
    assert strict.returncode == 3 and "RegistryUnavailableError" in strict.stdout

    s.start()
    again = resolve_in_fresh_process(s, t["app"])
    assert again.stdout.split() == [prod["digest"], "1", "False"]


def test_two_workers_and_etag(served: tuple[Served, dict[str, str]]) -> None:
    s, t = served
    s.cli("register", str(EXAMPLES / "ticket-classifier"), "-m", "first", token=t["ci"])
    s.cli("promote", "ticket-classifier@1", "--to", "staging", "--reason", "x", token=t["ci"])
    s.stop()
    s.start(workers=2)
    headers = {"Authorization": f"Bearer {t['app']}"}
    first = httpx.get(f"{s.url}/v1/resolve/ticket-classifier/pre-prod", headers=headers)
    assert first.status_code == 200
    assert s.proc is not None
    workers = _descendants(s.proc.pid)
    served_by: set[int] = set()
    conns = []
    try:
        # Fresh connections until both worker processes have answered one: each kept-open
        # connection's server end belongs to the process that accepted it.
        for _ in range(200):
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
            conns.append(conn)
            conn.request("GET", "/v1/resolve/ticket-classifier/staging",
                         headers={**headers, "If-None-Match": first.headers["ETag"]})
            again = conn.getresponse()
            again.read()
            # whichever worker answers, the answer is the same
            assert again.status == 304 and again.getheader("ETag") == first.headers["ETag"]
            served_by.add(_socket_owner(s.port, conn.sock.getsockname()[1], workers))
            if len(served_by) == 2:
                break
    finally:
        for conn in conns:
            conn.close()
    assert len(served_by) == 2 and served_by <= workers and s.proc.pid not in served_by


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    parent_of = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent_of[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parent_of.items() if parent in frontier}
        found |= frontier
    return found


def _socket_owner(server_port: int, client_port: int, pids: set[int]) -> int:
    """The process holding the server end of the loopback connection from ``client_port``."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if (int(local.split(":")[1], 16) == server_port
                and int(remote.split(":")[1], 16) == client_port):
            inode = fields[9]
    assert inode is not None, f"no server socket for client port {client_port}"
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no worker holds the server socket {inode}")


@pytest.mark.postgres
@pytest.mark.s3
def test_two_servers_over_postgres_and_s3(tmp_path: Path, weed: object,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing authoritative lives in a server's memory: two replicas, one truth."""
    from tests.pg import fresh_database
    from tests.s3 import BUCKET, aws_env, new_prefix

    aws_env(weed, monkeypatch)  # type: ignore[arg-type]
    db = fresh_database()
    url = next(db)
    try:
        home = tmp_path / "replicas" / ".llmreg"
        a, b = Served(home, tmp_path / "a"), Served(home, tmp_path / "b")
        for s in (a, b):
            s.env.update(LLMREG_DATABASE_URL=url, LLMREG_STORE=f"s3://{BUCKET}/{new_prefix()}"
                         if s is a else a.env["LLMREG_STORE"],
                         **{k: v for k, v in os.environ.items() if k.startswith("AWS_")})
        a.cli("init", str(home.parent), local=True)
        no_owner_rule(home)
        ci = json.loads(a.cli("token", "create", "--subject", "ci", "--role", "publisher",
                              "--json", local=True).stdout)["token"]
        a.start()
        b.start()
        try:
            a.cli("register", str(EXAMPLES / "ticket-classifier"), "-m", "via a", token=ci)
            b.cli("promote", "ticket-classifier@1", "--to", "staging", "--reason", "via b",
                  token=ci)
            headers = {"Authorization": f"Bearer {ci}"}
            ra = httpx.get(f"{a.url}/v1/resolve/ticket-classifier/staging", headers=headers)
            rb = httpx.get(f"{b.url}/v1/resolve/ticket-classifier/staging", headers=headers)
            assert ra.status_code == rb.status_code == 200
            assert ra.headers["ETag"] == rb.headers["ETag"] and ra.content == rb.content
            audit = json.loads(b.cli("audit", "--json", token=ci).stdout)
            assert [e["action"] for e in audit][-2:] == ["policy", "promote"]
        finally:
            a.stop()
            b.stop()
    finally:
        next(db, None)
