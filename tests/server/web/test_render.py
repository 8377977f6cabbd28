"""Escaping in the fast layer: every page rendered in-process over a registry whose
user-written fields all carry the XSS corpus (tests/server/web/xss.py) — the pages hold
no element, attribute or URL the corpus tried to inject, and show each payload as text.
(test_browser.py checks the same corpus in a real browser.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from llmreg.bundle.schema import Bundle
from llmreg.db.models import utcnow
from llmreg.errors import shown
from llmreg.server.app import create_app
from llmreg.server.web.render import ENV
from llmreg.service import RegistryService
from llmreg.settings import Settings
from llmreg.types import Actor
from tests.conftest import minimal
from tests.server.web.xss import XSS

ANA, BO, CY = Actor("ana"), Actor("bo"), Actor("cy")
TEXT = "\n".join(XSS)
# Payloads that fit where no whitespace may go (a URL): they try to leave an attribute.
URLS = ["https://x.example/\"><script>alert('u1')</script>",
        "https://x.example/'><img/src=x/onerror=alert('u2')>",
        "https://x.example/\"onmouseover=\"alert('u3')"]
# Elements the templates never write; any of them on a page was injected.
FOREIGN = {"script", "img", "svg", "iframe", "object", "embed", "details", "style", "math",
           "video", "audio", "base", "frame", "frameset", "marquee", "mglyph", "mtext"}


class Page(HTMLParser):
    """The elements, attributes and text of one page, as a browser's parser reads them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def values(self) -> list[str]:
        return [v for _, attrs in self.tags for v in attrs.values() if v is not None]

    def injected(self) -> list[str]:
        """What no template writes: foreign elements, event handlers, script URLs, a
        second body or head, metas beyond the two of base.html, inputs with no type."""
        found = [f"<{tag}>" for tag, _ in self.tags if tag in FOREIGN]
        for tag, attrs in self.tags:
            found += [f"<{tag} {a}>" for a in attrs if a.startswith("on")
                      or a in ("style", "autofocus", "srcdoc", "formaction")]
            found += [f"<{tag} {a}={v}>" for a, v in attrs.items()
                      if a in ("href", "src", "action")
                      and (v or "").strip().lower().startswith(("javascript:", "data:"))]
            if tag == "input" and "type" not in attrs:
                found.append("<input> without a type")
        counts = {t: sum(1 for tag, _ in self.tags if tag == t) for t in ("body", "head", "meta")}
        if counts != {"body": 1, "head": 1, "meta": 2}:
            found.append(f"element counts {counts}")
        return found


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An open-read app whose registry holds the corpus in every field a page shows
    (for the module: the pages only read it)."""
    svc = RegistryService.open_home(tmp_path_factory.mktemp("srv") / ".llmreg")
    try:
        svc.versions.register(Bundle.from_dict(minimal()), name="probe", message="plain",
                              author="ana")
        manifest = minimal(system_prompt=TEXT,
                           few_shot=[{"input": {"q": p}, "output": p} for p in XSS])
        svc.versions.register(Bundle.from_dict(manifest), name="probe", message=TEXT,
                              author=TEXT)
        svc.owners.set("probe", team="probe-team", contacts=URLS, actor=ANA)
        svc.lifecycle.promote("probe@2", "staging", actor=ANA, reason=TEXT)
        svc.evidence.attach("probe@2", type="eval", suite="regression",
                                      metrics={"accuracy": 0.95}, actor=ANA, links=URLS)
        svc.approvals.approve("probe@2", "production", actor=BO, comment=TEXT)
        svc.approvals.approve("probe@2", "production", actor=CY, comment=TEXT)
        svc.lifecycle.promote("probe@2", "production", actor=ANA, reason=TEXT)
        svc.alerts.check(now=utcnow() + timedelta(days=31))  # never served: an alert
        [alert] = svc.alerts.list()
        svc.alerts.ack(alert.id, reason=TEXT, actor=ANA)
        app = create_app(Settings(read_auth="open", resolve_ttl=0), service=svc)
        with TestClient(app, base_url="http://registry.test") as client:
            yield client
    finally:
        svc.close()


SHOWN = ["/names/probe/versions/2", "/names/probe", "/audit", "/audit?name=probe",
         "/names/probe/diff/1..2"]


@pytest.mark.parametrize("url", ["/", *SHOWN])
def test_user_text_is_text_on_every_page(probe: TestClient, url: str) -> None:
    r = probe.get(url)
    assert r.status_code == 200
    page = Page(r.text)
    assert page.injected() == []
    if url in SHOWN:
        missing = [p for p in XSS if p not in page.text]
        assert missing == [], (url, missing)
    if url == "/names/probe/versions/2":
        assert set(URLS) <= set(page.values())  # evidence links: whole, in their href
        assert all(u in page.text for u in URLS)
    if url == "/names/probe":
        assert ", ".join(URLS) in page.text  # the owner's contacts


@pytest.mark.parametrize("payload", XSS + URLS)
def test_text_from_the_request_is_text_too(probe: TestClient, payload: str) -> None:
    """Query values a page echoes back: the audit filters (a refused one is named by the
    error page) and the sign-in's next page."""
    q = quote(payload, safe="")
    for url in (f"/audit?actor={q}", f"/audit?name={q}", f"/signin?next=/{q}"):
        page = Page(probe.get(url).text)
        assert page.injected() == [], url
        assert any(v in (payload, f"/{payload}") for v in page.values()), url  # a field
    r = probe.get(f"/audit?env={q}")
    page = Page(r.text)
    assert r.status_code == 400 and page.injected() == []
    assert f"error: environment {shown(payload)} is not in the policy" in page.text


def test_autoescape_is_on_for_every_template() -> None:
    for name in ENV.list_templates(extensions="html"):
        source = ENV.loader.get_source(ENV, name)[0]  # type: ignore[union-attr]
        assert "|safe" not in source.replace(" ", "") and "autoescape false" not in source, name
    assert ENV.from_string("{{ x }}").render(x="<b a=\"1\">'") == \
        "&lt;b a=&#34;1&#34;&gt;&#39;"
