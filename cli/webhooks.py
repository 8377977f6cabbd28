"""``llmreg webhook …``: endpoints that receive the registry's events, and deliveries."""

from __future__ import annotations

from typing import Annotated, get_args

import typer

from llmreg.types import DeliveryInfo, WebhookEvent, WebhookFormat, WebhookInfo

from ._common import connect, handle_errors, note_audit_head, one_of
from ._output import JSON_OPTION, Output

webhook_app = typer.Typer(
    help="Send registry events (promotion, rollback, …) to webhooks, signed per Standard "
         "Webhooks, as CloudEvents JSON or Slack messages.",
    no_args_is_help=True)

# The choices come from the library's Literals; the service checks the values given.
EVENTS: tuple[WebhookEvent, ...] = get_args(WebhookEvent)
FORMATS: tuple[WebhookFormat, ...] = get_args(WebhookFormat)
_FORMAT_NOTES: dict[WebhookFormat, str] = {"cloudevents": "CloudEvents 1.0 JSON",
                                           "slack": "a Slack incoming-webhook message"}
EVENTS_HELP = f"Comma-separated events: {', '.join(EVENTS)}."
FORMAT_HELP = one_of(FORMATS, notes=_FORMAT_NOTES) + "."


def register_commands(app: typer.Typer) -> None:
    """Attach the ``webhook`` group to the root app."""
    for name, fn in (("add", add), ("list", list_), ("remove", remove), ("test", test),
                     ("deliveries", deliveries), ("redeliver", redeliver)):
        webhook_app.command(name)(handle_errors(fn))
    app.add_typer(webhook_app, name="webhook")


def add(
    url: Annotated[str, typer.Argument(help="The receiver's http(s) URL.")],
    events: Annotated[str, typer.Option("--events", help=EVENTS_HELP)],
    format: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "cloudevents",
    team: Annotated[str | None, typer.Option(
        "--team", help="Only events about the names this team owns.")] = None,
    name: Annotated[list[str] | None, typer.Option(
        "--name", help="Only events about names matching this pattern (e.g. 'search-*'); "
                       "repeatable. Without --team or --name: every event.")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a webhook; prints its whsec_ signing secret once (store it now)."""
    out = Output(as_json)
    with connect() as reg:
        info = reg.add_webhook(url, [e for e in events.split(",") if e.strip()],
                               format=format, team=team, names=name or [])
        note_audit_head(reg)
    out.json(info)
    out.line(f"added webhook {info.id} ({info.format}: {', '.join(info.events)}) -> "
             f"{info.url}; its signing secret, shown only now:", markup=False)
    out.line(info.secret or "", markup=False)


def _scope(hook: WebhookInfo) -> str:
    """``team search, names search-*`` (or ``every name``)."""
    parts = ([f"team {hook.team}"] if hook.team else []) + (
        [f"names {','.join(hook.names)}"] if hook.names else [])
    return ", ".join(parts) or "every name"


def list_(as_json: bool = JSON_OPTION) -> None:
    """List webhooks (ids, URLs, events, formats; never secrets)."""
    with connect() as reg:
        hooks = reg.list_webhooks()
    Output(as_json).table(hooks, ("id", "url", "events", "scope", "format", "created", "by"),
                          lambda h: (h.id, h.url, ",".join(h.events), _scope(h), h.format,
                                     h.created_at, h.created_by),
                          empty="no webhooks; add one with `llmreg webhook add URL --events …`")


def remove(
    webhook_id: Annotated[int, typer.Argument(help="The webhook's id (`llmreg webhook list`).")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Remove a webhook; its pending deliveries are dropped."""
    with connect() as reg:
        info = reg.remove_webhook(webhook_id)
        note_audit_head(reg)
    Output(as_json).result(info, f"removed webhook {info.id} ({info.url})")


def test(
    webhook_id: Annotated[int, typer.Argument(help="The webhook's id (`llmreg webhook list`).")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Send a test event to a webhook now; exits 1 if it was not delivered."""
    with connect() as reg:
        info = reg.test_webhook(webhook_id)
    out = Output(as_json)
    out.json(info)
    if info.status == "delivered":
        out.line(f"delivered a test event to webhook {webhook_id} (HTTP {info.last_status}, "
                 f"webhook-id {info.message_id})", markup=False)
        return
    out.error(f"webhook {webhook_id} did not take the test event: {info.last_error}")
    raise typer.Exit(1)


def deliveries(
    failed: Annotated[bool, typer.Option(
        "--failed", help="Only dead deliveries and pending ones that failed before.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")]
    = 50,
    as_json: bool = JSON_OPTION,
) -> None:
    """List deliveries, newest first: state, attempts, the last answer."""
    with connect() as reg:
        rows = reg.webhook_deliveries(failed=failed, limit=limit)
    Output(as_json).table(rows, ("id", "webhook", "event", "name", "status", "attempts",
                                 "last", "next", "webhook-id"), _row,
                          empty="no failed deliveries" if failed else "no deliveries")


def _row(d: DeliveryInfo) -> tuple[object, ...]:
    last = d.last_error or (f"HTTP {d.last_status}" if d.last_status else "")
    return (d.id, d.webhook_id, d.event, d.name, d.status, d.attempts, last[:60],
            d.next_at if d.status == "pending" else None, d.message_id)


def redeliver(
    delivery_id: Annotated[int, typer.Argument(
        help="The delivery's id (`llmreg webhook deliveries`).")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Queue a delivery again, now, with the same webhook-id (receivers can deduplicate)."""
    with connect() as reg:
        info = reg.redeliver(delivery_id)
        note_audit_head(reg)
    Output(as_json).result(info, f"queued delivery {info.id} again (webhook-id "
                                 f"{info.message_id})")
