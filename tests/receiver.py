"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records what it
gets, answers with a chosen status, and can go down and come back on the same port."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str


class _Server(ThreadingHTTPServer):
    # http.server's backlog is 5: with several delivery workers sending at once, the
    # kernel resets the sixth connection and the test sees a failure the product did not
    # make. A real receiver (nginx: 511) keeps up; so does this one.
    request_queue_size = 256
    allow_reuse_address = True
    daemon_threads = True


@dataclass
class Receiver:
    port: int = 0
    status: int = 204
    got: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                size = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(min(size, 1 << 20))
                with receiver._lock:
                    receiver.got.append(Received({k.lower(): v for k, v in self.headers.items()},
                                                 body, self.path))
                self.send_response(receiver.status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.got)
