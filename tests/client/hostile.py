"""A hostile HTTP server on 127.0.0.1 for the client's bounded reads: it serves a folder
(or fixed answers), and answers chosen paths with a play instead — an endless body, a
slow drip, headers that never end, a body longer or shorter than it should be.

Every play stops by itself: when the client hangs up, when the server is stopped, or
after ``LIMIT`` seconds, so no test can hang on it.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LIMIT = 20.0  # seconds any one play lasts at most
Play = Callable[["Handler", bytes], None]


class Handler(SimpleHTTPRequestHandler):
    server: HostileServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        hostile = self.server.hostile
        hostile.requests.append(self.path)
        for suffix, play in hostile.plays.items():
            if self.path.split("?")[0].endswith(suffix):
                play(self, hostile.original(self.path))
                return
        if self.path in hostile.answers:
            status, headers, body = hostile.answers[self.path]
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    # -- writing, stopped by the client, the server or the clock ---------------------

    def alive(self, started: float) -> bool:
        return not self.server.hostile.stopped.is_set() and time.monotonic() - started < LIMIT

    def send(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client hung up: what a bounded reader does
            return False
        self.server.hostile.sent += len(data)
        return True


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True
    hostile: Hostile


class Hostile:
    """The server, its plays by path suffix, and what it saw and sent."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self.plays: dict[str, Play] = {}
        self.answers: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[str] = []
        self.sent = 0  # body bytes the plays wrote before the client hung up
        self.stopped = threading.Event()
        handler = functools.partial(Handler, directory=str(folder or Path.cwd()))
        self.httpd = HostileServer(("127.0.0.1", 0), handler)
        self.httpd.hostile = self
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def original(self, path: str) -> bytes:
        """What the folder holds at ``path`` (empty when nothing)."""
        path = path.split("?")[0]
        if self.folder is None:
            return self.answers.get(path, (0, {}, b""))[2]
        file = self.folder / path.lstrip("/")
        return file.read_bytes() if file.is_file() else b""

    def stop(self) -> None:
        self.stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


# -- plays ------------------------------------------------------------------------------

def endless(fill: bytes = b" ") -> Play:
    """200, no length, then ``fill`` as fast as the client takes it (the original first:
    a valid start, then more and more)."""
    def play(h: Handler, original: bytes) -> None:
        h.send_response(200)
        h.end_headers()
        started = time.monotonic()
        if not h.send(original):
            return
        block = fill * (65536 // len(fill))
        while h.alive(started) and h.send(block):
            pass
    return play


def drip(pace: float, declared: bool = True) -> Play:
    """The original, one byte every ``pace`` seconds (with or without a length)."""
    def play(h: Handler, original: bytes) -> None:
        h.send_response(200)
        if declared:
            h.send_header("Content-Length", str(len(original)))
        h.end_headers()
        started = time.monotonic()
        for i in range(len(original)):
            if not h.alive(started) or not h.send(original[i:i + 1]):
                return
            time.sleep(pace)
    return play


def slow_headers(pace: float) -> Play:
    """A status line, then one header that grows by a byte every ``pace`` seconds."""
    def play(h: Handler, original: bytes) -> None:
        started = time.monotonic()
        if not h.send(b"HTTP/1.1 200 OK\r\nX-Slow: "):
            return
        while h.alive(started) and h.send(b"a"):
            time.sleep(pace)
    return play


def late(delay: float) -> Play:
    """The original, whole, after ``delay`` seconds of silence (404 if there is none)."""
    def play(h: Handler, original: bytes) -> None:
        time.sleep(delay)
        if not original:
            h.send_error(404)
            return
        edited(lambda b: b)(h, original)
    return play


def edited(change: Callable[[bytes], bytes]) -> Play:
    """The original changed by ``change``, with a true Content-Length."""
    def play(h: Handler, original: bytes) -> None:
        body = change(original)
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.send(body)
    return play
