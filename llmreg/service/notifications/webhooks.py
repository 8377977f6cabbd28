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

import re
from collections.abc import Iterable

from llmreg.errors import InvalidRefError, InvalidWebhookError, shown
from llmreg.service.notifications.outbox import EVENTS
from llmreg.teams import check_team

FORMATS = ("cloudevents", "slack")


def check_format(format: str) -> str:
    """``format`` if webhooks can be sent in it; else refused, naming the ones there are."""
    if format not in FORMATS:
        raise InvalidWebhookError(f"format {shown(format)} is not one of {', '.join(FORMATS)}; "
                                  "use --format cloudevents or --format slack")
    return format


_PATTERN_RE = re.compile(r"^[a-z0-9*?][a-z0-9*?._-]{0,127}$")


def check_scope(team: str | None, names: Iterable[str]) -> tuple[str | None, list[str]]:
    """A webhook's scope, checked: the team whose names it hears about, and name patterns
    (shell-style: ``search-*``, ``chat-?``); none of either: every name.

    Example:
        >>> check_scope("search", ["support-*"])
        ('search', ['support-*'])
        >>> check_scope(None, ["Support RAG"])
        Traceback (most recent call last):
        ...
        llmreg.errors.InvalidWebhookError: --name 'Support RAG' is not a name pattern; ...
    """
    if team is not None:
        try:
            check_team(team)
        except InvalidRefError as exc:
            raise InvalidWebhookError(str(exc)) from None
    patterns: list[str] = []
    for raw in names:
        pattern = str(raw)
        if not _PATTERN_RE.fullmatch(pattern):
            raise InvalidWebhookError(
                f"--name {shown(pattern, limit=60)} is not a name pattern; use a name or a "
                "shell pattern of lowercase letters, digits, '.', '_', '-', '*' and '?', e.g. "
                "--name 'search-*'")
        if pattern not in patterns:
            patterns.append(pattern)
    return team, patterns


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
