"""The template environment and the response every page is sent with.

Autoescape is on for every template, whatever its name, and no template marks user text
``|safe``: prompts, examples, messages, names and reasons are always text. Every page
carries a Content-Security-Policy that allows scripts, styles and images from this
server only (no inline script, no inline handler, no ``javascript:`` URL can run), and
is never cached by a shared cache.

Example:
    >>> ENV.from_string("<p>{{ x }}</p>").render(x="<script>alert(1)</script>")
    '<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>'
    >>> when(datetime(2026, 11, 28, 4, 41, tzinfo=UTC))
    '2026-11-28 04:41 UTC'
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse

from llmreg.bundle.digest import short

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def when(value: datetime | None) -> str:
    """A time as people read it, in UTC to the minute ('' for None)."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def as_json(value: Any) -> str:
    """Pretty JSON for a ``<pre>`` block (escaped by the template like any text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


ENV = Environment(loader=PackageLoader("llmreg.server.web", "templates"), autoescape=True,
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENV.filters.update(short=short, when=when, json=as_json)


def page(template_name: str, status: int = 200, /, **context: Any) -> HTMLResponse:
    """Render a template with ``context`` into a response with the security headers."""
    html = ENV.get_template(template_name).render(**context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)
