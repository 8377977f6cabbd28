"""What a webhook may ask for: the events it subscribes to and the format it is sent in.

The endpoints and the delivery worker are :class:`llmreg.service.notifications.notify.Notify`
(``svc.notify``); a webhook's URL is checked by the SSRF guard
(:mod:`llmreg.service.notifications.netguard`), and each delivery is signed in
:mod:`llmreg.service.notifications.delivery`.

Example:
    >>> check_events(["promotion", " rollback", "promotion"])
    ['promotion', 'rollback']
    >>> check_format("slack")
    'slack'
    >>> check_format("xml")
    Traceback (most recent call last):
    ...
    llmreg.errors.InvalidWebhookError: format 'xml' is not one of cloudevents, slack; use ...
"""

from __future__ import annotations

from collections.abc import Iterable

from llmreg.errors import InvalidWebhookError, shown
from llmreg.service.notifications.outbox import EVENTS

FORMATS = ("cloudevents", "slack")


def check_format(format: str) -> str:
    """``format`` if webhooks can be sent in it; else refused, naming the ones there are."""
    if format not in FORMATS:
        raise InvalidWebhookError(f"format {shown(format)} is not one of {', '.join(FORMATS)}; "
                                  "use --format cloudevents or --format slack")
    return format


def check_events(events: Iterable[str]) -> list[str]:
    """The events a webhook asks for, each once, in the order given; refused, naming the
    ones there are, for an unknown or an empty list."""
    wanted = []
    for raw in events:
        event = str(raw).strip()
        if event not in EVENTS:
            raise InvalidWebhookError(f"--events: {shown(event, limit=40)} is not an event; "
                                      f"use one or more of {','.join(EVENTS)}")
        if event not in wanted:
            wanted.append(event)
    if not wanted:
        raise InvalidWebhookError(f"--events is empty; use one or more of {','.join(EVENTS)}")
    return wanted
