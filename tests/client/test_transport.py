"""The default resolve transport (``StdlibHTTP``) against a real uvicorn on loopback.

The server runs in a thread of the test process (fast: no subprocess, no CLI), serving
the real app over a socket bound to 127.0.0.1 only. Its keep-alive timeout is short, so
the test can wait for the server to close an idle kept-alive connection and show the
client's one retry on a fresh connection.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from llmreg.client.limits import Deadline
from llmreg.client.remote import RemoteClient
from llmreg.client.transport import StdlibHTTP
from llmreg.server.app import create_app
from llmreg.service import RegistryService
from llmreg.settings import Settings
from tests.conftest import EXAMPLES

KEEP_ALIVE = 0.5  # seconds the server keeps an idle connection open


def bounds() -> dict[str, Any]:
    """A 1 MiB cap and a fresh 30 s deadline, for each call that is about neither."""
    return {"limit": 1 << 20, "deadline": Deadline(30)}


@dataclass
class Live:
    url: str
    port: int
    token: str
    service: RegistryService
    client_ports: list[int] = field(default_factory=list)  # one per request served

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    service = RegistryService.open_home(tmp_path / "srv" / ".llmreg")
    token, _ = service.access.create_token("ci", "publisher", created_by="setup")
    app = create_app(Settings(read_auth="token", resolve_ttl=0), service=service)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    state = Live(f"http://127.0.0.1:{port}", port, token, service)

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            state.client_ports.append(scope["client"][1])
        await app(scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(
        recording, lifespan="off", ws="none", log_level="warning", access_log=False,
        timeout_keep_alive=KEEP_ALIVE))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
        service.close()


def closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    """True once the server has closed its end of ``conn`` (EOF is readable)."""
    assert conn.sock is not None
    readable, _, _ = select.select([conn.sock], [], [], 0)
    return bool(readable) and conn.sock.recv(1, socket.MSG_PEEK) == b""


def test_requests_share_one_kept_alive_connection(live: Live) -> None:
    transport = StdlibHTTP(live.url, live.auth())
    status, headers, body = transport.get("/healthz", {}, **bounds())
    assert (status, body) == (200, b'{"status":"ok"}')
    assert headers["content-type"] == "application/json"  # header names are lower-cased
    status, _, _ = transport.get("/readyz", {"X-Extra": "1"}, **bounds())
    assert status == 200
    assert len(live.client_ports) == 2 and live.client_ports[0] == live.client_ports[1]
    transport.close()
    transport.close()  # closing twice is harmless


def test_one_retry_when_the_server_closed_the_kept_alive_connection(live: Live) -> None:
    transport = StdlibHTTP(live.url, live.auth())
    assert transport.get("/healthz", {}, **bounds())[0] == 200
    stale = transport._conn
    assert stale is not None
    deadline = time.monotonic() + 10
    while not closed_by_peer(stale):  # the server drops the idle connection
        assert time.monotonic() < deadline, "the server never closed the idle connection"
        time.sleep(0.05)
    status, _, body = transport.get("/healthz", {}, **bounds())
    assert (status, body) == (200, b'{"status":"ok"}')
    assert transport._conn is not stale  # the retry opened a fresh connection
    assert len(live.client_ports) == 2 and live.client_ports[0] != live.client_ports[1]
    transport.close()


def test_without_the_retry_the_stale_connection_fails(live: Live) -> None:
    """What the retry is for: plain http.client on the same stale connection breaks."""
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=5)
    conn.request("GET", "/healthz")
    assert conn.getresponse().read() == b'{"status":"ok"}'
    deadline = time.monotonic() + 10
    while not closed_by_peer(conn):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        conn.request("GET", "/healthz")
        conn.getresponse()
    conn.close()


def test_a_path_prefix_and_default_headers_are_sent(live: Live) -> None:
    under_prefix = StdlibHTTP(f"{live.url}/base/", live.auth())
    status, _, body = under_prefix.get("/healthz", {}, **bounds())
    assert status == 404 and b'"code":"NOT_FOUND"' in body  # it asked for /base/healthz
    anonymous = StdlibHTTP(live.url, {})
    status, headers, body = anonymous.get("/v1/names", {}, **bounds())
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    authed = StdlibHTTP(live.url, live.auth())
    assert authed.get("/v1/names", {}, **bounds())[0] == 200
    assert anonymous.get("/v1/names", live.auth(), **bounds())[0] == 200  # headers merge in
    for transport in (under_prefix, anonymous, authed):
        transport.close()


def test_nothing_listening_raises_after_the_second_attempt() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens once the socket closes
    transport = StdlibHTTP(f"http://127.0.0.1:{port}", {}, timeout=2)
    with pytest.raises(ConnectionRefusedError):
        transport.get("/healthz", {}, **bounds())
    assert transport._conn is None  # no half-open connection is kept


def test_remote_resolve_over_the_default_transport(live: Live, tmp_path: Path) -> None:
    with RemoteClient(live.url, token=live.token, cache=tmp_path / "cache") as reg:
        bundle = reg.log_bundle(EXAMPLES / "ticket-classifier", message="first")
        reg.promote("ticket-classifier@1", to="staging", reason="try it")
        before = len(live.client_ports)
        first = reg.resolve("ticket-classifier", env="pre-prod")  # an alias
        assert (first.digest, first.version, first.env) == (bundle.digest, 1, "staging")
        assert first.served_from_cache is False
        again = reg.resolve("ticket-classifier", env="pre-prod")  # a 304 from the ETag
        assert again.digest == bundle.digest and again.served_from_cache is False
        resolve_ports = live.client_ports[before:]
        assert len(resolve_ports) == 2 and len(set(resolve_ports)) == 1  # one connection
    live.service.close()


def test_default_cache_follows_the_platform(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    import sys

    from llmreg.client.transport import default_cache

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache() == tmp_path / "xdg" / "llmreg"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache() == tmp_path / ".cache" / "llmreg"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert default_cache() == tmp_path / "Library" / "Caches" / "llmreg"
