"""Bounds that only a real server shows: memory before authentication, and slow bodies
that must not starve everyone else."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmreg.bundle.digest import digest_bytes
from tests.e2e.test_serve import Served, local_cli

pytestmark = pytest.mark.slow
MIB = 1024 * 1024


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[tuple[Served, dict[str, str]]]:
    """A server whose pace rule bites after one second (the defaults are 10 s, 8 KiB/s)."""
    home = tmp_path / "srv" / ".llmreg"
    s = Served(home, tmp_path)
    local_cli(home, "init")
    tokens = {}
    for subject, role in [("app", "reader"), ("ci", "publisher")]:
        import json

        tokens[subject] = json.loads(local_cli(home, "token", "create", "--subject", subject,
                                               "--role", role, "--json"))["token"]
    s.env.update(LLMREG_BODY_GRACE="1", LLMREG_BODY_IDLE_TIMEOUT="3",
                 LLMREG_BODY_MIN_RATE="4096")
    s.start()
    yield s, tokens
    s.stop()


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def raw_request(port: int, head: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head.encode("latin-1"))
    return sock


def status_of(sock: socket.socket, timeout: float) -> int:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        more = sock.recv(4096)
        if not more:
            break
        data += more
    return int(data.split(b" ", 2)[1])


def send_chunked(sock: socket.socket, total: int) -> int:
    """Send ``total`` bytes as 1 MiB chunks; how many went out before the server hung up."""
    sent, chunk = 0, b" " * MIB
    try:
        while sent < total:
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += len(chunk)
        sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


@pytest.mark.parametrize("who", [None, "ci"], ids=["no token", "publisher"])
def test_a_150mib_chunked_body_is_answered_in_bounded_memory(
        strict: tuple[Served, dict[str, str]], who: str | None) -> None:
    s, tokens = strict
    assert s.proc is not None
    before = rss(s.proc.pid)
    auth = f"Authorization: Bearer {tokens[who]}\r\n" if who else ""
    sock = raw_request(s.port, f"POST /v1/names/chat/versions HTTP/1.1\r\nHost: x\r\n{auth}"
                               "Content-Type: application/json\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n")
    with sock:
        if who is None:
            # Answered before the body: one chunk out, the 401 is already there.
            sock.sendall(b"%x\r\n" % MIB + b" " * MIB + b"\r\n")
            assert status_of(sock, timeout=5) == 401
            send_chunked(sock, 149 * MIB)
        else:
            sent = send_chunked(sock, 150 * MIB)
            assert status_of(sock, timeout=10) == 413
            assert sent >= 16 * MIB  # it read up to the limit, then said no
    time.sleep(0.5)
    assert rss(s.proc.pid) - before < 100 * MIB, (before, rss(s.proc.pid))
    # The server is still well.
    assert httpx.get(f"{s.url}/v1/whoami", headers={"Authorization": f"Bearer {tokens['app']}"},
                     timeout=5).status_code == 200


def test_slow_uploads_time_out_and_reads_keep_answering(
        strict: tuple[Served, dict[str, str]]) -> None:
    s, tokens = strict
    digest = digest_bytes(b"x" * 1000)
    statuses: list[int] = []
    lock = threading.Lock()

    def slow_put() -> None:
        sock = raw_request(s.port, f"PUT /v1/blobs/{digest} HTTP/1.1\r\nHost: x\r\n"
                                   f"Authorization: Bearer {tokens['ci']}\r\n"
                                   "Content-Length: 1000\r\n\r\n")
        with sock:
            try:
                for _ in range(20):  # one byte a second, far under the minimum rate
                    sock.sendall(b"x")
                    if select.select([sock], [], [], 1.0)[0]:
                        break  # the server has answered
            except OSError:
                pass
            try:
                code = status_of(sock, timeout=5)
            except OSError:
                code = 0
        with lock:
            statuses.append(code)

    workers = [threading.Thread(target=slow_put) for _ in range(45)]
    for w in workers:
        w.start()
    slowest = 0.0
    reader = {"Authorization": f"Bearer {tokens['app']}"}
    with httpx.Client(base_url=s.url, headers=reader, timeout=5) as http:
        for _ in range(10):  # while 45 uploads crawl, everyone else is served
            started = time.monotonic()
            assert http.get("/v1/names").status_code == 200
            assert http.get(f"/v1/blobs/{digest}").status_code == 404
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.2)
    for w in workers:
        w.join(timeout=30)
    assert slowest < 1.0, slowest
    assert statuses == [408] * 45
