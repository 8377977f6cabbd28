"""Hostile connections against the real `llmreg serve` (raw sockets on loopback): request
heads that never end, too many header fields, heads and bodies sent slowly, bodies the
caller may not send, and many large bodies at once. Each is refused in the one JSON
error shape, within its bound, while everyone else is served."""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from llmreg.server.connection import LINGER
from tests.e2e.test_bounds import rss
from tests.e2e.test_serve import Served, local_cli

pytestmark = pytest.mark.slow
MIB = 1024 * 1024
HEADER_TIMEOUT = 2.0  # the server's LLMREG_HEADER_TIMEOUT here
BODY_TIMEOUT = 3.0  # its LLMREG_BODY_TIMEOUT
IDLE = 2.0  # its LLMREG_BODY_IDLE_TIMEOUT: also how long a large body waits for a slot


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("slow-clients")
    home = tmp / "srv" / ".llmreg"
    s = Served(home, tmp)
    local_cli(home, "init")
    tokens = {}
    for subject, role in [("app", "reader"), ("ci", "publisher"), ("boss", "admin")]:
        tokens[subject] = json.loads(local_cli(home, "token", "create", "--subject", subject,
                                               "--role", role, "--json"))["token"]
    s.env.update(LLMREG_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
                 LLMREG_BODY_TIMEOUT=str(BODY_TIMEOUT), LLMREG_BODY_IDLE_TIMEOUT=str(IDLE),
                 LLMREG_BODY_GRACE="100", LLMREG_BODY_MIN_RATE="1",
                 LLMREG_LARGE_BODY=str(64 * 1024), LLMREG_MAX_LARGE_BODIES="1")
    s.start()
    yield s, tokens
    s.stop()


def connect(s: Served) -> socket.socket:
    return socket.create_connection(("127.0.0.1", s.port), timeout=10)


def read_all(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything until the server closes (or ``timeout``)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while more := sock.recv(65536):
            data += more
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def one_answer(sock: socket.socket, timeout: float) -> bytes:
    """One whole answer (head, and a body of its Content-Length), even while the server
    keeps the connection open."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            return data
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length and (more := sock.recv(65536)):
        body += more
    return head + b"\r\n\r\n" + body


def error_of(answer: bytes) -> tuple[int, str, str]:
    """Status, error code and message of a raw HTTP answer in the one JSON shape."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head.lower(), head
    (error,) = json.loads(body)["errors"]
    return status, error["code"], error["message"]


def flood(sock: socket.socket, first: bytes, filler: bytes, most: int = 100 * MIB,
          seconds: float = 20) -> tuple[int, bytes, float]:
    """Send ``first``, then ``filler`` again and again until the server answers or hangs
    up (or ``most`` bytes, ``seconds``): bytes sent, the answer, seconds until it came."""
    started = time.monotonic()
    sock.sendall(first)
    sent, answer = len(first), b""
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sock.setblocking(False)
    try:
        while sent < most and time.monotonic() - started < seconds:
            if sel.select(timeout=0):
                break
            try:
                sent += sock.send(filler)
            except BlockingIOError:
                sel.select(timeout=0.05)
            except OSError:
                break
        took = time.monotonic() - started
        sock.setblocking(True)
        answer = read_all(sock, timeout=LINGER + 5)
    finally:
        sel.close()
    return sent, answer, took


class Watch:
    """``/healthz`` on its own connections every 0.1 s while something else happens: the
    slowest answer."""

    def __init__(self, s: Served) -> None:
        self.url, self.slowest, self.failures = s.url, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                httpx.get(f"{self.url}/healthz", timeout=5).raise_for_status()
            except httpx.HTTPError:
                self.failures += 1
            self.slowest = max(self.slowest, time.monotonic() - started)
            self._stop.wait(0.1)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# -- request heads that never end, or hold too many fields ------------------------------

ENDLESS = [  # (what is sent first, what is sent after it, again and again)
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: ", b"a" * 65536),  # a header value
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X" * 65536),  # a header name
    (b"GET /healthz?q=", b"q" * 65536),  # the request line
    (b"POST /v1/names/chat/versions HTTP/1.1\r\nHost: x\r\n",
     b"X-Many: 1234567890abcdef\r\n" * 2000),  # lines, each short, with no end
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n", b" continued\r\n" * 4000),
    (b"GET /healthz HTTP/1.1\r\nCookie: ", b"session=" + b"z" * 8000 + b"; "),
]


@pytest.mark.parametrize(("first", "filler"), ENDLESS, ids=range(len(ENDLESS)))
def test_an_endless_head_is_refused_at_its_bound_while_others_are_served(
        srv: tuple[Served, dict[str, str]], first: bytes, filler: bytes) -> None:
    s, _ = srv
    assert s.proc is not None
    before = rss(s.proc.pid)
    with Watch(s) as watch, connect(s) as sock:
        sent, answer, took = flood(sock, first, filler)
    assert answer, f"no answer after {sent} bytes"
    status, code, message = error_of(answer)
    if status == 400:  # folded lines are refused as malformed before they grow
        assert code == "REQUEST_INVALID"
    else:
        assert (status, code) == (431, "HEADERS_TOO_LARGE"), message
        # Whichever bound it meets first: 32 KiB, or 100 fields of short lines.
        assert ("limit is 32768 (LLMREG_MAX_HEADER_BYTES)" in message
                or "limit is 100 (LLMREG_MAX_HEADERS)" in message), message
    assert took < 5, took
    assert watch.failures == 0 and watch.slowest < 1.0, watch.slowest
    assert rss(s.proc.pid) - before < 50 * MIB


def head_with(fields: list[bytes], path: bytes = b"/healthz") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + b"".join(
        f + b"\r\n" for f in fields) + b"Connection: close\r\n\r\n"


TOO_MANY = [
    [b"X-%d: 1" % i for i in range(100)],  # 100 + Host + Connection
    [b"X-%d: 1" % i for i in range(5000)],
    [b"X-Same: 1"] * 150,
    [b"Cookie: c%d=1" % i for i in range(120)],
]


@pytest.mark.parametrize("fields", TOO_MANY, ids=range(len(TOO_MANY)))
def test_more_header_fields_than_the_limit_are_refused(
        srv: tuple[Served, dict[str, str]], fields: list[bytes]) -> None:
    s, _ = srv
    with connect(s) as sock:
        _, answer, _ = flood(sock, head_with(fields), b"", most=0)
    status, code, message = error_of(answer)
    assert (status, code) == (431, "HEADERS_TOO_LARGE")
    assert "more than 100 header fields" in message and "LLMREG_MAX_HEADERS" in message


def test_a_head_within_the_limits_is_served(srv: tuple[Served, dict[str, str]]) -> None:
    s, tokens = srv
    fields = [b"X-%d: %s" % (i, b"v" * 250) for i in range(97)]  # ~26 KiB, 100 fields
    fields.append(b"Authorization: Bearer " + tokens["app"].encode())
    with connect(s) as sock:
        sock.sendall(head_with(fields, b"/v1/whoami"))
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


# -- heads and bodies sent slowly ---------------------------------------------------------

BYTE_BY_BYTE = b"ET /healthz HTTP/1.1\r\nHost: " + b"x" * 100
SLOW_HEADS: list[tuple[bytes, Callable[[int], bytes]]] = [
    (b"GET /healthz HTTP/1.1\r\n", lambda i: b"X-%d: 1\r\n" % i),  # a line now and then
    (b"G", lambda i: BYTE_BY_BYTE[i:i + 1]),  # a byte now and then
    (b"POST /v1/heartbeats HTTP/1.1\r\nContent-Length: 2\r\n", lambda i: b"X: y\r\n"),
    (b"", lambda i: b""),  # connects, sends nothing
]


def test_slow_heads_are_cut_at_the_header_deadline(srv: tuple[Served, dict[str, str]]
                                                   ) -> None:
    """150 connections, each sending a piece of its head every 0.5 s (the old server kept
    1,000 such connections open for ever): every one is closed within the deadline, with
    408 when it had begun a request, while /healthz answers."""
    s, _ = srv
    sel = selectors.DefaultSelector()
    socks: dict[socket.socket, tuple[int, Callable[[int], bytes]]] = {}
    answers: dict[socket.socket, bytes] = {}
    closed_at: dict[socket.socket, float] = {}
    started = time.monotonic()
    with Watch(s) as watch:
        for n in range(150):
            first, then = SLOW_HEADS[n % len(SLOW_HEADS)]
            sock = connect(s)
            sock.sendall(first)
            sock.setblocking(False)
            socks[sock] = (n % len(SLOW_HEADS), then)
            answers[sock] = b""
            sel.register(sock, selectors.EVENT_READ)
        step, next_send = 0, time.monotonic() + 0.5
        while len(closed_at) < len(socks) and time.monotonic() - started < 15:
            for key, _ in sel.select(timeout=0.1):
                sock = key.fileobj  # type: ignore[assignment]
                try:
                    more = sock.recv(65536)
                except OSError:
                    more = b""
                answers[sock] += more
                if not more:
                    closed_at[sock] = time.monotonic() - started
                    sel.unregister(sock)
            if time.monotonic() >= next_send:
                for sock, (_, then) in socks.items():
                    if sock not in closed_at and (piece := then(step)):
                        try:
                            sock.send(piece)
                        except OSError:
                            pass
                step, next_send = step + 1, next_send + 0.5
    sel.close()
    for sock in socks:
        sock.close()
    assert len(closed_at) == 150, f"{150 - len(closed_at)} connections still open"
    assert max(closed_at.values()) < HEADER_TIMEOUT + LINGER + 2, max(closed_at.values())
    for sock, (kind, _) in socks.items():
        if SLOW_HEADS[kind][0]:
            status, code, message = error_of(answers[sock])
            assert (status, code) == (408, "REQUEST_TIMEOUT")
            assert "LLMREG_HEADER_TIMEOUT" in message
        else:
            assert answers[sock] == b""  # nothing asked, nothing answered
    assert watch.failures == 0 and watch.slowest < 1.0, watch.slowest


def post_head(path: str, token: str, length: int | None, method: str = "POST") -> bytes:
    framing = (f"Content-Length: {length}" if length is not None
               else "Transfer-Encoding: chunked")
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n\r\n").encode()


@pytest.mark.parametrize(("path", "length", "piece"), [
    ("/v1/heartbeats", 50_000, b" "),  # small body, one byte a tick
    ("/v1/names/chat/versions", 10_000, b"[" * 500),
    ("/v1/evidence", None, b"100\r\n" + b" " * 256 + b"\r\n"),  # chunked
])
def test_a_body_that_keeps_coming_meets_the_body_deadline(
        srv: tuple[Served, dict[str, str]], path: str, length: int | None,
        piece: bytes) -> None:
    s, tokens = srv
    with connect(s) as sock:
        sock.sendall(post_head(path, tokens["ci"], length))
        started, answer = time.monotonic(), b""
        while time.monotonic() - started < BODY_TIMEOUT + 5:
            try:
                sock.send(piece)
                answer = one_answer(sock, 0.3)
                if answer:
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        took = time.monotonic() - started
    status, code, message = error_of(answer)
    assert (status, code) == (408, "REQUEST_TIMEOUT")
    assert "LLMREG_BODY_TIMEOUT" in message and took < BODY_TIMEOUT + 1.5


@pytest.mark.parametrize(("head", "who"), [
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n", None),
    (b"POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n", "app"),
    (b"PUT /v1/blobs/sha256:" + b"c" * 64 + b" HTTP/1.1\r\nHost: x\r\n"
     b"Transfer-Encoding: chunked\r\n", "app"),
])
def test_the_rest_of_a_body_answered_early_is_dropped_then_the_connection_closes(
        srv: tuple[Served, dict[str, str]], head: bytes, who: str | None) -> None:
    s, tokens = srv
    if who is not None:
        head += b"Authorization: Bearer " + tokens[who].encode() + b"\r\n\r\n"
    with connect(s) as sock:
        sock.sendall(head)
        sock.settimeout(5)
        answer = sock.recv(65536)
        started = time.monotonic()
        try:  # keep sending a trickle: the old server drained it for ever
            while time.monotonic() - started < LINGER + 5:
                sock.send(b"5\r\nxxxxx\r\n" if b"chunked" in head else b"x" * 100)
                time.sleep(0.1)
        except OSError:
            pass
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 200" if who is None else b"HTTP/1.1 403"), answer
    assert took < LINGER + 2, took


# -- the role before the body, and few large bodies at once ----------------------------

WRITE_ROUTES = ["/v1/names/chat/versions", "/v1/names/chat/version-batches",
                "/v1/promotions", "/v1/evidence", "/v1/tokens", "/v1/gc"]


def test_a_reader_s_large_bodies_on_write_routes_are_refused_unread(
        srv: tuple[Served, dict[str, str]]) -> None:
    """The old server read and parsed them first: 6 x 16 MiB from a reader token gave
    6 x 403 and a 1.5 GB peak."""
    s, tokens = srv
    assert s.proc is not None
    before = rss(s.proc.pid)
    body = b'{"manifest": [' + b'"0123456789abcdef",' * (16 * MIB // 19) + b'"x"]}'
    results: list[tuple[int, str, int]] = []

    def send(path: str) -> None:
        with connect(s) as sock:
            sent, answer, _ = flood(sock, post_head(path, tokens["app"], len(body)),
                                    body[:65536], most=len(body))
        status, code, _ = error_of(answer)
        results.append((status, code, sent))

    threads = [threading.Thread(target=send, args=(p,)) for p in WRITE_ROUTES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [r[:2] for r in results] == [(403, "DENIED")] * len(WRITE_ROUTES)
    assert rss(s.proc.pid) - before < 30 * MIB


def test_one_large_body_too_many_is_told_to_come_back(srv: tuple[Served, dict[str, str]]
                                                      ) -> None:
    """The server here reads one body of 64 KiB or more at a time: while one arrives, the
    next waits as long as a body may stall, then gets 503 BUSY with Retry-After."""
    s, tokens = srv
    length = 1 * MIB
    with connect(s) as holder, connect(s) as late:
        holder.sendall(post_head("/v1/names/chat/versions", tokens["ci"], length))
        stop = threading.Event()

        def trickle() -> None:  # never stalls, never ends: it holds the slot to its deadline
            while not stop.wait(0.3):
                try:
                    holder.send(b"[" * 100)
                except OSError:
                    return

        keeper = threading.Thread(target=trickle)
        keeper.start()
        time.sleep(0.3)
        started = time.monotonic()
        late.sendall(post_head("/v1/evidence", tokens["ci"], length) + b"{")
        answer = one_answer(late, IDLE + 5)
        waited = time.monotonic() - started
        assert b"retry-after: 1" in answer.lower()
        status, code, message = error_of(answer)
        assert (status, code) == (503, "BUSY") and "LLMREG_MAX_LARGE_BODIES" in message
        assert IDLE - 0.5 < waited < IDLE + 2, waited
        assert error_of(one_answer(holder, IDLE + 5))[:2] == (408, "REQUEST_TIMEOUT")
        stop.set()
        keeper.join(timeout=5)
    # The slot is free again: a large body is read (and refused for its content).
    answer = httpx.post(f"{s.url}/v1/evidence", content=b" " * (100 * 1024) + b"{}",
                        headers={"Authorization": f"Bearer {tokens['ci']}"}, timeout=10)
    assert answer.status_code == 400, answer.text


def test_a_bad_knob_stops_serve_with_its_name(tmp_path: Path) -> None:
    s = Served(tmp_path / "srv" / ".llmreg", tmp_path)
    local_cli(s.home, "init")
    s.env["LLMREG_HEADER_TIMEOUT"] = "soon"
    result = s.cli("serve", "--port", str(s.port), local=True, check=False)
    assert result.returncode == 1
    assert "LLMREG_HEADER_TIMEOUT='soon' must be a number above 0" in result.stderr
