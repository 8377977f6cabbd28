"""Webhooks over HTTP: admin routes through the remote client, the same errors as the
embedded registry, and the server's own delivery loop sending to a receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook as Verifier

from llmreg.client.remote import RemoteClient
from llmreg.errors import InvalidWebhookError, PermissionDeniedError, RefNotFoundError
from llmreg.policy import Policy, Webhooks
from llmreg.server.app import create_app
from llmreg.service import RegistryService
from llmreg.settings import Settings
from tests.conftest import EXAMPLES
from tests.receiver import Receiver

LOCAL = Policy.default().model_copy(update={"webhooks": Webhooks(allow_hosts=["127.0.0.1"])})


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[dict[str, RemoteClient]]:
    service = RegistryService.open_home(tmp_path / "srv" / ".llmreg", policy=LOCAL)
    app = create_app(Settings(read_auth="token", resolve_ttl=0), service=service)
    out = {}
    with TestClient(app, base_url="http://registry.test"):  # runs the lifespan
        for subject, role in [("pat", "publisher"), ("ada", "admin")]:
            token, _ = service.access.create_token(subject, role, created_by="setup")
            out[subject] = RemoteClient(
                "http://registry.test", token=token, cache=tmp_path / subject,
                http=TestClient(app, base_url="http://registry.test"))
        yield out
    service.close()


def test_admin_routes_and_the_servers_delivery_loop(clients: dict[str, RemoteClient],
                                                    receiver: Receiver) -> None:
    ada, pat = clients["ada"], clients["pat"]
    hook = ada.add_webhook(receiver.url, ["promotion", "rollback"])
    assert hook.secret is not None and hook.secret.startswith("whsec_")
    assert [(h.id, h.secret) for h in ada.list_webhooks()] == [(hook.id, None)]
    pat.log_bundle(EXAMPLES / "ticket-classifier", message="first")
    ref = "ticket-classifier@1"
    started = time.monotonic()
    pat.promote(ref, to="staging", reason="try")
    while not receiver.received() and time.monotonic() - started < 10:
        time.sleep(0.05)
    took = time.monotonic() - started
    (got,) = receiver.received()
    event = Verifier(hook.secret).verify(got.body, got.headers)
    assert event["type"] == "dev.llmreg.promotion" and event["data"]["actor"] == "pat"
    assert took < 2.0, f"delivered after {took:.2f} s"
    (d,) = ada.webhook_deliveries()
    assert d.status == "delivered" and d.message_id == got.headers["webhook-id"]
    assert ada.webhook_deliveries(failed=True, limit=5) == []
    again = ada.redeliver(d.id)
    assert again.status == "pending" and again.message_id == d.message_id
    test = ada.test_webhook(hook.id)
    assert (test.event, test.status) == ("test", "delivered")
    removed = ada.remove_webhook(hook.id)
    assert removed.id == hook.id and ada.list_webhooks() == []


def test_errors_are_the_embedded_ones(clients: dict[str, RemoteClient]) -> None:
    ada, pat = clients["ada"], clients["pat"]
    with pytest.raises(PermissionDeniedError):
        pat.add_webhook("http://127.0.0.1:9/x", ["promotion"])
    with pytest.raises(PermissionDeniedError):
        pat.list_webhooks()
    with pytest.raises(InvalidWebhookError, match="^--events: 'promoted' is not an event"):
        ada.add_webhook("http://127.0.0.1:9/x", ["promoted"])
    with pytest.raises(InvalidWebhookError, match="^url 'http://192.168.0.4/x': host "
                                                  "192.168.0.4 is a private address"):
        ada.add_webhook("http://192.168.0.4/x", ["promotion"])
    with pytest.raises(InvalidWebhookError, match="format"):
        ada.add_webhook("http://127.0.0.1:9/x", ["promotion"], format="teams")
    for call in (lambda: ada.remove_webhook(7), lambda: ada.test_webhook(7),
                 lambda: ada.redeliver(7)):
        with pytest.raises(RefNotFoundError):
            call()
    assert ada.list_webhooks() == []
