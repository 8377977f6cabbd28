"""Webhook routes (admin): endpoints, their deliveries, a test send and a redelivery.

The secret of a new webhook is in the creation answer only. Bodies are
:mod:`llmreg.contract.models`; the work is :class:`~llmreg.service.notifications.webhooks.Notify`'s.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from fastapi.testclient import TestClient
    >>> from llmreg.server.app import create_app
    >>> from llmreg.service import RegistryService
    >>> from llmreg.settings import Settings
    >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
    >>> admin, _ = svc.access.create_token("ada", "admin", created_by="setup")
    >>> http = TestClient(create_app(Settings(), service=svc))
    >>> http.get("/v1/webhooks").status_code
    401
    >>> http.get("/v1/webhooks", headers={"Authorization": f"Bearer {admin}"}).json()
    []
    >>> svc.close()
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from llmreg.contract.models import NewWebhook, WebhookBody
from llmreg.server.deps import Service, require
from llmreg.server.routes import RowId, endpoint
from llmreg.types import Actor, DeliveryInfo, WebhookInfo

router = APIRouter()
Admin = Annotated[Actor, require("admin")]


@endpoint(router, "POST", "/v1/webhooks", "admin", status_code=201)
def add_webhook(s: Service, body: WebhookBody, actor: Admin) -> NewWebhook:
    """Add a webhook; its `whsec_` signing secret is in this response only. A URL whose
    host resolves to a private, loopback, link-local or metadata address is refused
    (400) unless the policy's `webhooks.allow_hosts` names it."""
    info = s.notify.add(body.url, body.events, actor=actor, format=body.format)
    assert info.secret is not None
    return NewWebhook(**info.model_dump(exclude={"secret"}), secret=info.secret)


@endpoint(router, "GET", "/v1/webhooks", "admin")
def list_webhooks(s: Service) -> list[WebhookInfo]:
    """The webhooks in use (never their secrets)."""
    return s.notify.list_webhooks()


@endpoint(router, "DELETE", "/v1/webhooks/{webhook_id}", "admin", errors=[404])
def remove_webhook(s: Service, webhook_id: RowId, actor: Admin) -> WebhookInfo:
    """Remove a webhook; its pending deliveries are dropped."""
    return s.notify.remove(webhook_id, actor=actor)


@endpoint(router, "POST", "/v1/webhooks/{webhook_id}/test", "admin", errors=[404])
def test_webhook(s: Service, webhook_id: RowId, actor: Admin) -> DeliveryInfo:
    """Send a `test` event to the webhook now (one attempt) and answer its outcome."""
    return s.notify.test(webhook_id, actor=actor)


@endpoint(router, "GET", "/v1/webhook-deliveries", "admin", filters=True)
def deliveries(s: Service, failed: bool = False,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[DeliveryInfo]:
    """Deliveries, newest first (`failed`: dead, or pending after a failed attempt)."""
    return s.notify.deliveries(failed=failed, limit=limit)


@endpoint(router, "POST", "/v1/webhook-deliveries/{delivery_id}/redeliver", "admin",
          errors=[404])
def redeliver(s: Service, delivery_id: RowId, actor: Admin) -> DeliveryInfo:
    """Queue a delivery again, due now, with the same `webhook-id`."""
    return s.notify.redeliver(delivery_id, actor=actor)
