"""A fake MLflow tracking server on 127.0.0.1 for the importer's bounds: by default it
serves one registered model with one 4-byte artifact, and a test replaces any answer
with a hostile one (endless, huge, dripping, empty pages forever, deep or wide folders,
malformed). Started and stopped by the test; endless answers end when it stops."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = "1/abc/artifacts"
API = "/api/2.0/"


@dataclass
class Reply:
    """One answer: a JSON value, or raw ``body`` bytes, or ``chunks`` streamed (chunked
    unless ``length`` is given), ``every`` seconds apart."""

    json: Any = None
    status: int = 200
    body: bytes | None = None
    chunks: Callable[[], Iterator[bytes]] | None = None
    every: float = 0.0
    length: int | None = None
    close: bool = False  # close the connection after the chunks (a body cut short)


Route = Callable[[str, dict[str, str]], Reply | None]


def default_answer(path: str, query: dict[str, str]) -> Reply:
    """An honest little registry: model ``m`` version 1 holding ``w.bin`` (4 bytes)."""
    if path == "mlflow/registered-models/search":
        if "filter" in query:  # prompts
            return Reply({})
        return Reply({"registered_models": [{"name": "m"}]})
    if path == "mlflow/model-versions/search":
        return Reply({"model_versions": [{"name": "m", "version": "1",
                                          "source": f"mlflow-artifacts:/{ROOT}"}]})
    if path == "mlflow-artifacts/artifacts":
        return Reply({"files": [{"path": "w.bin", "is_dir": False, "file_size": "4"}]})
    if path == f"mlflow-artifacts/artifacts/{ROOT}/w.bin":
        return Reply(body=b"abcd")
    return Reply({"error_code": "ENDPOINT_NOT_FOUND"}, status=404)


@dataclass
class HostileMlflow:
    route: Route = field(default=lambda path, query: None)
    asked: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def uri(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> HostileMlflow:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm
                # and the client's delayed ACK add 40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                parts = urlsplit(self.path)
                path = parts.path.removeprefix(API) if "://" not in self.path else \
                    urlsplit(self.path).path.removeprefix(API)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                fake.asked.append(path)
                reply = fake.route(path, query) or default_answer(path, query)
                try:
                    self._send(reply)
                except OSError:
                    return

            def _send(self, reply: Reply) -> None:
                self.send_response(reply.status)
                if reply.chunks is None:
                    body = reply.body if reply.body is not None else \
                        json.dumps(reply.json).encode()
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if reply.length is None:
                    self.send_header("transfer-encoding", "chunked")
                else:
                    self.send_header("content-length", str(reply.length))
                self.end_headers()
                for chunk in reply.chunks():
                    if fake.stop.is_set():
                        return
                    if reply.length is None:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    else:
                        self.wfile.write(chunk)
                    self.wfile.flush()
                    if reply.every:
                        time.sleep(reply.every)
                if reply.close:
                    self.close_connection = True
                elif reply.length is None:
                    self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 64

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        self.stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def forever(chunk: bytes) -> Callable[[], Iterator[bytes]]:
    """An endless stream of ``chunk``."""
    def chunks() -> Iterator[bytes]:
        while True:
            yield chunk
    return chunks
