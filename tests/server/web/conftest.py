"""An in-process app over a fresh registry holding chat@1 and chat@2 (chat@1 in staging),
one token per role, and a helper that signs a TestClient in through the sign-in form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llmreg.bundle.schema import Bundle
from llmreg.server.app import create_app
from llmreg.service import RegistryService
from llmreg.settings import Settings
from llmreg.types import Actor
from tests.conftest import minimal

CSRF_RE = re.compile(r'name="csrf" value="([^"]*)"')


@dataclass
class Web:
    service: RegistryService
    app: object
    tokens: dict[str, str]

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="http://registry.test", follow_redirects=False)

    def signed_in(self, who: str) -> TestClient:
        """A client holding a session of ``who``'s token."""
        c = self.client()
        form = c.get("/signin")
        csrf = CSRF_RE.search(form.text)
        assert csrf is not None
        r = c.post("/signin", data={"csrf": csrf.group(1), "token": self.tokens[who],
                                    "next": "/"})
        assert r.status_code == 303, r.text
        return c


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def make_web(tmp_path: Path, read_auth: str) -> tuple[Web, RegistryService]:
    service = RegistryService.open_home(tmp_path / "srv" / ".llmreg")
    app = create_app(Settings(read_auth=read_auth, resolve_ttl=0), service=service)
    tokens = {}
    for subject, role in [("rita", "reader"), ("pat", "publisher"), ("ann", "approver"),
                          ("abe", "approver"), ("ada", "admin")]:
        tokens[subject], _ = service.access.create_token(subject, role, created_by="setup")
    for i, prompt in enumerate(["Be brief.\nAnswer in English.", "Be brief.\nAnswer in French."]):
        service.versions.register(Bundle.from_dict(minimal(system_prompt=prompt)), name="chat",
                                  message=f"v{i + 1}", author="pat")
    service.lifecycle.promote("chat@1", "staging", actor=Actor("pat"), reason="first")
    return Web(service, app, tokens), service


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    w, service = make_web(tmp_path, "token")
    yield w
    service.close()


@pytest.fixture
def open_web(tmp_path: Path) -> Iterator[Web]:
    w, service = make_web(tmp_path, "open")
    yield w
    service.close()
