"""Email notices to owners, through the SMTP relay named in the settings.

An owner's email contact (``llmreg owner set NAME --contact team@example.com``) receives
the alerts about the names its team owns (:data:`EMAIL_EVENTS`). Each address is a
delivery destination like a webhook: a row of the webhooks table with ``format`` email
and URL ``mailto:ADDRESS``, made the first time an alert is addressed to it, so its
notices go through the same outbox, retries, backoff and dead-lettering, and show in
``llmreg webhook deliveries``. ``llmreg webhook remove ID`` stops them (the address is
then never written to again).

The relay is ``LLMREG_SMTP_URL``: ``smtp://USER:PASSWORD@HOST:587`` (STARTTLS, which
must be offered: the password never travels in the clear) or ``smtps://…:465``
(TLS from the first byte); ``LLMREG_SMTP_FROM`` is the sender. Each attempt has
:data:`SMTP_TIMEOUT` per operation and the delivery's deadline in all.

Example:
    >>> relay = parse_relay("smtp://alerts:s3cret@relay.example.com:587")
    >>> relay.host, relay.port, relay.implicit_tls, relay.user
    ('relay.example.com', 587, False, 'alerts')
"""

from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

from llmreg.errors import ConfigError, shown

EMAIL = "email"  # the format of an email destination's row
EMAIL_EVENTS = ("stale_production",)  # the alerts an email contact receives
SMTP_TIMEOUT = 10.0  # seconds for each SMTP operation


@dataclass(frozen=True)
class Relay:
    """An SMTP relay: where, how (implicit TLS or STARTTLS), as whom, from which sender."""

    host: str
    port: int
    implicit_tls: bool
    user: str | None
    password: str | None
    sender: str

    def __repr__(self) -> str:  # never the password
        tls = "implicit" if self.implicit_tls else "starttls"
        return f"Relay({self.host}:{self.port}, tls={tls})"


def parse_relay(url: str, sender: str | None = None) -> Relay:
    """``LLMREG_SMTP_URL`` as a :class:`Relay`, or a one-line error naming the fix.

    Example:
        >>> parse_relay("http://relay")
        Traceback (most recent call last):
        ...
        llmreg.errors.ConfigError: LLMREG_SMTP_URL 'http://relay' is not smtp:// or smtps://; ...
    """
    parts = urlsplit(url.strip())
    fix = "e.g. smtp://USER:PASSWORD@relay.example.com:587 (STARTTLS) or smtps://…:465"
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        bare = parts._replace(netloc=parts.hostname or "").geturl()  # never the password
        raise ConfigError(f"LLMREG_SMTP_URL {shown(bare)} is not smtp:// or smtps://; {fix}")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 587)
    except ValueError:
        raise ConfigError(f"LLMREG_SMTP_URL has a bad port; {fix}") from None
    return Relay(host=parts.hostname, port=port, implicit_tls=parts.scheme == "smtps",
                 user=unquote(parts.username) if parts.username else None,
                 password=unquote(parts.password) if parts.password else None,
                 sender=sender or f"llmreg@{parts.hostname}")


def message(*, sender: str, to: str, subject: str, text: str, message_id: str) -> EmailMessage:
    """A plain-text notice; its Message-ID is the delivery's id, so a retry that did
    arrive the first time is recognisable as the same message."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = formatdate(time.time(), usegmt=True)
    msg["Message-ID"] = f"<{message_id}@llmreg>"
    msg.set_content(text)
    return msg


def send_mail(relay: Relay, msg: EmailMessage, *, context: ssl.SSLContext,
              deadline: float) -> None:
    """Send ``msg`` through ``relay``: TLS first (implicit, or STARTTLS, which must be
    offered), then AUTH if the relay URL has a user; raises ``OSError`` or
    ``smtplib.SMTPException`` on any failure (the caller records it as a failed attempt).
    """
    timeout = max(0.1, min(SMTP_TIMEOUT, deadline - time.monotonic()))
    client: smtplib.SMTP
    if relay.implicit_tls:
        client = smtplib.SMTP_SSL(relay.host, relay.port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(relay.host, relay.port, timeout=timeout)
    with client:
        client.ehlo()
        if not relay.implicit_tls:
            if not client.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError(
                    f"the relay {relay.host}:{relay.port} does not offer STARTTLS; llmreg "
                    "never sends a password or a notice in the clear")
            client.starttls(context=context)
            client.ehlo()
        if relay.user is not None:
            client.login(relay.user, relay.password or "")
        if time.monotonic() > deadline:
            raise TimeoutError("the attempt's deadline passed before the message was sent")
        client.send_message(msg)
