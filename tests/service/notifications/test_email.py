"""Email notices to owners through a real SMTP server (aiosmtpd) on 127.0.0.1, with
STARTTLS (a test CA from trustme) and AUTH: an alert about a name reaches its owner's
addresses, through the outbox, with retries and dead-lettering like a webhook."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from llmreg.bundle.schema import Bundle
from llmreg.db.models import utcnow
from llmreg.errors import ConfigError
from llmreg.policy import Policy, Webhooks
from llmreg.service import RegistryService
from llmreg.service.notifications import outbox
from llmreg.service.notifications.email import parse_relay
from llmreg.types import Actor
from tests.conftest import minimal

ANA = Actor("ana")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server accepted."""

    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 OK"


@dataclass
class Smtp:
    port: int
    box: Mailbox
    client_tls: ssl.SSLContext


def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alerts",
                                                                            b"s3cret")
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535


def start(box: Mailbox, *, tls: bool = True) -> tuple[Controller, ssl.SSLContext]:
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    kw: dict[str, Any] = dict(tls_context=server_tls, require_starttls=True) if tls else {}
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), authenticator=auth,
                            auth_require_tls=tls, **kw)
    controller.start()
    return controller, client_tls


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    box = Mailbox()
    controller, client_tls = start(box)
    yield Smtp(controller.port, box, client_tls)
    controller.stop()


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[RegistryService]:
    policy = Policy.default().model_copy(update={"webhooks": Webhooks(max_attempts=2)})
    service = RegistryService.open_home(tmp_path / "reg", policy=policy)
    yield service
    service.close()


def owned(svc: RegistryService, name: str, team: str, contacts: list[str]) -> None:
    svc.versions.register(Bundle.from_dict(minimal(system_prompt=name)), name=name,
                          message="m", author="ana")
    svc.owners.set(name, team=team, contacts=contacts, actor=ANA)


def alert(svc: RegistryService, name: str) -> None:
    """The alert job's notice, as it emits it."""
    with svc.db.write() as s:
        outbox.emit(s, event="stale_production", name=name, at=utcnow(),
                    data={"name": name, "env": "production", "days": 31})


def use(svc: RegistryService, smtp: Smtp, password: str = "s3cret") -> None:
    svc.notify.smtp = parse_relay(f"smtp://alerts:{password}@127.0.0.1:{smtp.port}",
                                  "llmreg@example.com")
    svc.notify.verify = smtp.client_tls


def test_an_alert_reaches_the_owners_address_and_no_one_else(svc: RegistryService,
                                                             smtp: Smtp) -> None:
    use(svc, smtp)
    owned(svc, "chat", "search", ["search-oncall@example.com", "https://chat.example.com/s"])
    owned(svc, "billing-bot", "billing", ["billing@example.com"])
    alert(svc, "chat")
    assert svc.notify.deliver_due() == 1
    [mail] = smtp.box.messages
    assert (mail["To"], mail["From"], mail["Subject"]) == (
        "search-oncall@example.com", "llmreg@example.com",
        "[llmreg] stale production: chat")
    assert "days: 31" in mail.get_payload() and mail["Message-ID"].startswith("<msg_")
    [row] = [h for h in svc.notify.list_webhooks() if h.format == "email"]
    assert row.url == "mailto:search-oncall@example.com"
    [delivery] = svc.notify.deliveries(webhook_id=row.id)
    assert (delivery.status, delivery.last_status) == ("delivered", 250)
    alert(svc, "chat")  # the same address again: the same destination row
    assert svc.notify.deliver_due() == 1 and len(smtp.box.messages) == 2
    assert len([h for h in svc.notify.list_webhooks() if h.format == "email"]) == 1


def test_a_relay_that_is_down_is_retried_then_dead(svc: RegistryService, smtp: Smtp) -> None:
    use(svc, smtp)
    svc.notify.smtp = parse_relay(f"smtp://alerts:s3cret@127.0.0.1:{free_port()}")
    owned(svc, "chat", "search", ["search@example.com"])
    alert(svc, "chat")
    assert svc.notify.deliver_due() == 1
    [d] = svc.notify.deliveries()
    assert d.status == "pending" and d.last_error is not None
    assert d.last_error.startswith("ConnectionRefusedError")
    svc.notify.deliver_due(d.next_at)
    [d] = svc.notify.deliveries()
    assert (d.status, d.attempts) == ("dead", 2)
    use(svc, smtp)  # the relay is back: the dead notice is sent on request
    svc.notify.redeliver(d.id, actor=ANA)
    svc.notify.deliver_due()
    assert [m["To"] for m in smtp.box.messages] == ["search@example.com"]


def test_a_wrong_password_is_a_failed_attempt(svc: RegistryService, smtp: Smtp) -> None:
    use(svc, smtp, password="wrong")
    owned(svc, "chat", "search", ["search@example.com"])
    alert(svc, "chat")
    svc.notify.deliver_due()
    [d] = svc.notify.deliveries()
    assert d.status == "pending" and (d.last_error or "").startswith(
        "SMTPAuthenticationError")
    assert smtp.box.messages == []


def test_a_relay_without_starttls_gets_no_password_and_no_notice(
        svc: RegistryService) -> None:
    box = Mailbox()
    controller, client_tls = start(box, tls=False)
    try:
        use(svc, Smtp(controller.port, box, client_tls))
        owned(svc, "chat", "search", ["search@example.com"])
        alert(svc, "chat")
        svc.notify.deliver_due()
        [d] = svc.notify.deliveries()
        assert (d.last_error or "").startswith(
            f"SMTPNotSupportedError: the relay 127.0.0.1:{controller.port} does not offer "
            "STARTTLS")
        assert box.messages == []
    finally:
        controller.stop()


def test_without_a_relay_the_attempt_says_what_to_set(svc: RegistryService,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMREG_SMTP_URL", raising=False)
    owned(svc, "chat", "search", ["search@example.com"])
    alert(svc, "chat")
    svc.notify.deliver_due()
    [d] = svc.notify.deliveries()
    assert (d.last_error or "").startswith("no SMTP relay: set LLMREG_SMTP_URL")


def test_the_relay_comes_from_the_settings(svc: RegistryService, smtp: Smtp,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREG_SMTP_URL", f"smtp://alerts:s3cret@127.0.0.1:{smtp.port}")
    monkeypatch.setenv("LLMREG_SMTP_FROM", "registry@example.com")
    svc.notify.verify = smtp.client_tls
    owned(svc, "chat", "search", ["search@example.com"])
    alert(svc, "chat")
    svc.notify.deliver_due()
    assert [m["From"] for m in smtp.box.messages] == ["registry@example.com"]


def test_a_removed_address_gets_nothing_more(svc: RegistryService, smtp: Smtp) -> None:
    use(svc, smtp)
    owned(svc, "chat", "search", ["search@example.com"])
    alert(svc, "chat")
    svc.notify.deliver_due()
    [row] = [h for h in svc.notify.list_webhooks() if h.format == "email"]
    svc.notify.remove(row.id, actor=ANA)
    alert(svc, "chat")
    assert svc.notify.deliver_due() == 0 and len(smtp.box.messages) == 1


@pytest.mark.parametrize(("url", "message"), [
    ("http://relay.example.com", "LLMREG_SMTP_URL 'http://relay.example.com' is not smtp://"),
    ("smtp://u:secret@relay.example.com:99999", "LLMREG_SMTP_URL has a bad port"),
])
def test_a_bad_relay_url_is_named_without_its_password(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")) as info:
        parse_relay(url)
    assert "secret" not in str(info.value)
