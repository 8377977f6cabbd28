"""An in-process server over a fresh registry, with one token per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
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
