"""An in-process server over a fresh registry, with one token per role; an OIDC issuer
on 127.0.0.1 (its keys made here, its JWKS served locally)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from llmreg.client.remote import RemoteClient
from llmreg.server.app import create_app
from llmreg.service import RegistryService
from llmreg.settings import Settings


@dataclass
class Server:
    service: RegistryService
    http: TestClient
    tokens: dict[str, str]
    cache: Path

    def client(self, who: str) -> RemoteClient:
        """A RemoteClient whose requests go through the in-process app as ``who``."""
        http = TestClient(self.http.app, base_url="http://registry.test")
        return RemoteClient("http://registry.test", token=self.tokens[who], http=http,
                            cache=self.cache / who)

    def headers(self, who: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    service = RegistryService.open_home(tmp_path / "srv" / ".llmreg")
    app = create_app(Settings(read_auth="token", resolve_ttl=0), service=service)
    tokens = {}
    for subject, role in [("rita", "reader"), ("pat", "publisher"), ("ann", "approver"),
                          ("abe", "approver"), ("ada", "admin")]:
        tokens[subject], _ = service.access.create_token(subject, role, created_by="setup")
    with TestClient(app, base_url="http://registry.test") as http:
        yield Server(service, http, tokens, tmp_path / "cache")
    service.close()


@dataclass
class Issuer:
    """An OIDC issuer on 127.0.0.1: discovery document, JWKS, and a signing key."""

    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(
        public_exponent=65537, key_size=2048))
    kid: str = "key-1"
    url: str = ""
    fetches: list[str] = field(default_factory=list)

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def token(self, *, kid: str | None = None, key: Any = None, alg: str = "RS256",
              **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": "llmreg", "iat": now, "exp": now + 300,
                "sub": "repo:acme/search-rag:ref:refs/heads/main",
                "repository": "acme/search-rag", "workflow": "release", "run_id": "42"}
        body.update(claims)
        return jwt.encode({k: v for k, v in body.items() if v is not None},
                          key if key is not None else self.key, algorithm=alg,
                          headers={"kid": kid or self.kid})


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    found = Issuer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            found.fetches.append(self.path)
            if self.path == "/.well-known/openid-configuration":
                body = {"issuer": found.url, "jwks_uri": f"{found.url}/jwks"}
            elif self.path == "/jwks":
                body = found.jwks()
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()
