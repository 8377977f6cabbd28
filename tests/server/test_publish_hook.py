"""`llmreg serve --publish DEST`: the server publishes the mirror after every move."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

import llmreg
from llmreg.server.app import create_app
from llmreg.service import RegistryService
from llmreg.settings import Settings
from tests.mirror import make_keys, ready_for_production, register, to_production


def test_promotions_and_rollbacks_are_published(tmp_path: Path) -> None:
    svc = RegistryService.open_home(tmp_path / "srv")
    to_production(svc, register(svc, 1))
    v2 = register(svc, 2)
    ready_for_production(svc, v2, accuracy=0.97, reason="next")
    token, _ = svc.access.create_token("pat", "publisher", created_by="setup")
    keys, dest = make_keys(tmp_path), tmp_path / "mirror"
    settings = Settings(resolve_ttl=0, publish=str(dest), mirror_keys=keys)
    app = create_app(settings, service=svc)
    mirror = llmreg.connect(f"file://{dest}", trusted_root=keys / "root.json",
                            settings=Settings(cache=tmp_path / "cache"))
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(app, base_url="http://registry.test") as http:
        answer = http.post("/v1/promotions", headers=auth,
                           json={"ref": v2, "env": "production", "reason": "ship"})
        assert answer.status_code == 201, answer.text
        assert mirror.resolve("chat", env="production").version == 2
        answer = http.post("/v1/rollbacks", headers=auth,
                           json={"name": "chat", "env": "production", "reason": "oops"})
        assert answer.status_code == 201, answer.text
        assert mirror.resolve("chat", env="production").version == 1
    publisher = app.state.llmreg.publisher
    assert publisher is not None and publisher.failures == 0
    assert publisher.last is not None and publisher.last.timestamp_version == 2  # one per move
    svc.close()
