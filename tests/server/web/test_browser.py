"""The web pages in a real Chromium (Debian's ``chromium`` at /usr/bin/chromium, driven by
Playwright; Playwright's own browser download is never used), against real
``llmreg serve`` processes over the README quickstart's registry.

Screenshots of every page are taken here, into a temporary folder; with
``LLMREG_UPDATE_SCREENSHOTS=1`` they are written to ``docs/img/ui-*.png`` instead (the
pictures of docs/ui.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, free_port, minimal, stop_process, until_ready
from tests.e2e.test_serve import LLMREG, local_cli
from tests.server.web.xss import XSS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = Path(os.environ.get("LLMREG_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "docs" / "img"
# Read at import: the autouse fixture clears LLMREG_* before each test.
UPDATE_SCREENSHOTS = os.environ.get("LLMREG_UPDATE_SCREENSHOTS") == "1"



def _chromium_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install chromium"
    return None


class Served:
    """``llmreg serve`` over a registry folder on a free loopback port."""

    def __init__(self, home: Path, log: Path, read_auth: str = "token") -> None:
        self.home, self.log = home, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMREG_")}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [*LLMREG, "--registry", str(home), "serve", "--port", str(self.port),
                 "--read-auth", read_auth], env=env, stdout=out, stderr=out)
        if not until_ready(self.url):
            self.stop()
            raise AssertionError(f"server did not start: {log.read_text()}")

    def stop(self) -> None:
        stop_process(self.proc)


def token(home: Path, subject: str, role: str) -> str:
    out = local_cli(home, "token", "create", "--subject", subject, "--role", role, "--json")
    return str(json.loads(out)["token"])


@pytest.fixture(scope="session")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's quickstart, run as a new user runs it; returns the demo folder."""
    where = tmp_path_factory.mktemp("quickstart")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMREG_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run([str(ROOT / "scripts" / "quickstart"), "demo"], cwd=where,
                            env=env, text=True, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (where / "demo" / "quickstart.log").write_text(result.stdout + result.stderr)
    return where / "demo"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    missing = _chromium_missing()
    if missing:
        pytest.fail(missing)  # CI installs it: a missing browser fails, never skips
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(quickstart: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Served, dict[str, str]]]:
    """A server over the quickstart's registry, only read by the tests that use it."""
    home = quickstart / ".llmreg"
    tokens = {"reader": token(home, "rita", "reader"), "admin": token(home, "lee", "admin")}
    served = Served(home, tmp_path_factory.mktemp("site") / "server.log")
    yield served, tokens
    served.stop()


class Watched:
    """A page whose dialogs and console errors are collected (each is a failure)."""

    def __init__(self, browser: Any, base: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900},
                                           base_url=base, device_scale_factor=1)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def sign_in(self, tok: str, start: str = "/") -> None:
        self.page.goto(start)
        assert "/signin" in self.page.url
        self.page.get_by_label("Token").fill(tok)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()

    def close(self) -> None:
        self.context.close()

    def clean(self, allow_status: tuple[int, ...] = ()) -> None:
        errors = [e for e in self.errors
                  if not any(f"status of {s}" in e for s in allow_status)]
        assert self.dialogs == [] and errors == [], (self.dialogs, errors)


@pytest.fixture
def watched(browser: Any, site: tuple[Served, dict[str, str]]) -> Iterator[Watched]:
    w = Watched(browser, site[0].url)
    yield w
    w.close()


def test_quickstart_board_to_version_to_diff(watched: Watched, quickstart: Path,
                                             site: tuple[Served, dict[str, str]]) -> None:
    cli = json.loads(local_cli(quickstart / ".llmreg", "status", "support-rag", "--json"))
    [prod] = [r for r in cli if r["env"] == "production"]
    page = watched.page
    watched.sign_in(site[1]["reader"], "/")
    assert page.url.endswith("/")
    row = page.locator("tr", has=page.get_by_role("rowheader", name=re.compile("support-rag")))
    production = row.locator("td").nth(2)  # staging, shadow, production
    assert production.locator("code.digest").inner_text() == prod["digest"][7:19]
    assert production.locator("code.digest").get_attribute("title") == prod["digest"]
    production.get_by_role("link", name=f"@{prod['version']}").click()
    assert page.url.endswith(f"/names/support-rag/versions/{prod['version']}")
    assert page.locator("code.full").inner_text() == prod["digest"]
    # a reader sees no action buttons: only "Sign out"
    assert page.get_by_role("button").all_inner_texts() == ["Sign out"]
    page.get_by_role("link", name="Diff against @1").click()
    assert page.url.endswith("/names/support-rag/diff/1..2")
    assert "Keep answers under 150 words" in page.locator("td.del").first.inner_text()
    assert "Keep answers under 120 words" in page.locator("td.ins").first.inner_text()
    watched.clean()


PAGES = [("board", "/"), ("name", "/names/support-rag"),
         ("version", "/names/support-rag/versions/2"),
         ("actions", "/names/ticket-classifier/versions/1"),
         ("diff", "/names/support-rag/diff/1..2"), ("audit", "/audit")]


def test_every_page_screenshot_accessibility_keyboard(
        watched: Watched, site: tuple[Served, dict[str, str]],
        tmp_path: Path) -> None:
    from axe_playwright_python.sync_playwright import Axe

    folder = SCREENSHOTS if UPDATE_SCREENSHOTS else tmp_path
    page = watched.page
    page.goto("/signin")
    page.screenshot(path=str(folder / "ui-signin.png"))
    check_page(page, Axe())
    watched.sign_in(site[1]["admin"])
    for label, url in PAGES:
        page.goto(url)
        page.screenshot(path=str(folder / f"ui-{label}.png"), full_page=True)
        assert (folder / f"ui-{label}.png").stat().st_size > 10_000
        check_page(page, Axe())
    watched.clean()


def check_page(page: Any, axe: Any) -> None:
    """A title, one h1 and headings in order, no serious accessibility violation, and
    every link, button and field reachable with Tab alone."""
    assert page.title().endswith("· llmreg") and len(page.title()) > len(" · llmreg")
    levels = page.eval_on_selector_all("h1,h2,h3,h4,h5,h6",
                                       "els => els.map(e => Number(e.tagName[1]))")
    assert levels[0] == 1 and levels.count(1) == 1, levels
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:], strict=False)), levels
    results = axe.run(page)
    serious = [v["id"] for v in results.response["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == [], (page.url, results.generate_report())
    targets = page.eval_on_selector_all(
        "a[href], button, input:not([type=hidden]), select, textarea",
        "els => els.map((e, i) => { e.dataset.kb = String(i); return i; })")
    reached: set[str] = set()
    page.locator("body").focus()
    for _ in range(len(targets) + 3):
        page.keyboard.press("Tab")
        kb = page.evaluate("() => document.activeElement && document.activeElement.dataset.kb")
        if kb is not None:
            reached.add(kb)
    missing = sorted(set(map(str, targets)) - reached, key=int)
    assert missing == [], (page.url, missing)


@pytest.fixture(scope="module")
def acting(quickstart: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Served, dict[str, str], Path]]:
    """A server over a copy of the quickstart registry, for tests that change it."""
    where = tmp_path_factory.mktemp("acting")
    home = where / ".llmreg"
    shutil.copytree(quickstart / ".llmreg", home)
    tokens = {"ana": token(home, "ana", "approver"), "pat": token(home, "pat", "publisher"),
              "rita": token(home, "rita", "reader")}
    local_cli(home, "promote", "ticket-classifier@1", "--to", "staging", "--reason", "try it")
    served = Served(home, where / "server.log")
    yield served, tokens, home
    served.stop()


def test_self_approval_is_refused_with_the_cli_message(
        browser: Any, acting: tuple[Served, dict[str, str], Path]) -> None:
    from typer.testing import CliRunner

    from llmreg_cli.main import app

    served, tokens, home = acting
    cli = CliRunner().invoke(app, ["--registry", str(home), "approve", "ticket-classifier@1",
                                   "--to", "production"], env={"LLMREG_USER": "ana"})
    assert cli.exit_code == 1
    expected = cli.stderr.strip()
    assert expected.startswith("error: ana is the author of ticket-classifier@1")
    w = Watched(browser, served.url)
    try:
        w.sign_in(tokens["ana"], "/names/ticket-classifier/versions/1")
        w.page.get_by_role("button", name="Approve for production").click()
        assert w.page.get_by_role("alert").inner_text() == expected
        w.clean(allow_status=(403,))
    finally:
        w.close()
    assert local_cli(home, "audit", "ticket-classifier", "--json").count('"approval"') == 0


def test_stale_promote_form_is_a_conflict_and_no_csrf_is_403(
        browser: Any, acting: tuple[Served, dict[str, str], Path]) -> None:
    from llmreg.bundle.schema import Bundle
    from llmreg.service import RegistryService
    from llmreg.types import Actor

    served, tokens, home = acting
    svc = RegistryService.open_home(home)
    try:
        svc.versions.register(Bundle.from_dict(minimal(system_prompt="two")),
                              name="ticket-classifier", message="v2", author="ana")
        w = Watched(browser, served.url)
        try:
            w.sign_in(tokens["pat"], "/names/ticket-classifier/versions/2")
            page = w.page
            reason = page.get_by_label("Reason").first
            assert "only if staging still holds @1" in page.inner_text("main")
            # someone else moves staging while this page is open
            svc.versions.register(Bundle.from_dict(minimal(system_prompt="three")),
                                  name="ticket-classifier", message="v3", author="ana")
            svc.lifecycle.promote("ticket-classifier@3", "staging", actor=Actor("bo"),
                                  reason="faster fix")
            reason.fill("my candidate")
            page.get_by_role("button", name="Promote to staging").click()
            assert page.get_by_role("alert").inner_text() == (
                "error: ticket-classifier/staging holds @3, not @1 as expected; nothing "
                "changed; see `llmreg status ticket-classifier`")
            assert svc.versions.slot("ticket-classifier", "staging").version == 3
            # the same form without its CSRF token: 403, nothing changed
            head = svc.audit.head()
            page.goto("/names/ticket-classifier/versions/2")
            page.evaluate("() => document.querySelectorAll('input[name=csrf]')"
                          ".forEach(e => e.remove())")
            page.get_by_label("Reason").first.fill("no token")
            with page.expect_response(lambda r: r.request.method == "POST") as answer:
                page.get_by_role("button", name="Promote to staging").click()
            assert answer.value.status == 403
            assert "CSRF token is missing or wrong" in page.get_by_role("alert").inner_text()
            assert svc.versions.slot("ticket-classifier", "staging").version == 3
            assert svc.audit.head() == head
            w.clean(allow_status=(403, 409))
        finally:
            w.close()
        w = Watched(browser, served.url)
        try:
            w.sign_in(tokens["rita"], "/names/ticket-classifier/versions/2")
            assert w.page.get_by_role("button").all_inner_texts() == ["Sign out"]
            w.clean()
        finally:
            w.close()
    finally:
        svc.close()


def test_xss_corpus_stays_text(browser: Any, tmp_path: Path) -> None:
    from llmreg.bundle.schema import Bundle
    from llmreg.service import RegistryService
    from llmreg.types import Actor

    home = tmp_path / ".llmreg"
    svc = RegistryService.open_home(home)
    try:
        svc.versions.register(Bundle.from_dict(minimal()), name="probe", message="plain",
                              author="ana")
        manifest = minimal(system_prompt="\n".join(XSS),
                           few_shot=[{"input": {"q": p}, "output": p} for p in XSS])
        svc.versions.register(Bundle.from_dict(manifest), name="probe",
                              message="\n".join(XSS), author="ana")
        svc.lifecycle.promote("probe@2", "staging", actor=Actor("ana"), reason="\n".join(XSS))
    finally:
        svc.close()
    served = Served(home, tmp_path / "server.log", read_auth="open")
    try:
        w = Watched(browser, served.url)
        try:
            for url in ("/names/probe/versions/2", "/names/probe", "/audit",
                        "/names/probe/diff/1..2", "/"):
                w.page.goto(url)
                w.page.wait_for_timeout(100)  # let any handler that could run, run
                text = w.page.inner_text("main")
                if url != "/":
                    shown = [p for p in XSS if p in text]
                    assert shown == XSS, (url, sorted(set(XSS) - set(shown)))
                assert w.page.evaluate("() => document.querySelectorAll("
                                       "'main script, main img, main svg, main iframe, "
                                       "main object, main details, main input:not([type])'"
                                       ").length") == 0
            w.clean()
        finally:
            w.close()
    finally:
        served.stop()
