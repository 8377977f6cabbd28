"""The pages through the app in-process: reading, sign-in, CSRF, actions and refusals."""

from __future__ import annotations

import re
from pathlib import Path

from llmreg.bundle.schema import Bundle
from llmreg.types import Actor
from tests.conftest import minimal
from tests.server.web.conftest import Web, csrf_of

PAGES = ["/", "/names/chat", "/names/chat/versions/1", "/names/chat/versions/2",
         "/names/chat/diff/1..2", "/audit", "/audit?name=chat&env=staging&actor=pat"]


def test_reads_need_a_session_when_read_auth_is_token(web: Web) -> None:
    c = web.client()
    r = c.get("/names/chat/versions/2?x=1")
    assert r.status_code == 303
    assert r.headers["location"] == "/signin?next=/names/chat/versions/2%3Fx%3D1"
    signed = web.signed_in("rita")
    for url in PAGES:
        page = signed.get(url)
        assert page.status_code == 200, (url, page.text)
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"


def test_open_reads_need_no_session_and_show_no_forms(open_web: Web) -> None:
    c = open_web.client()
    for url in PAGES:
        page = c.get(url)
        assert page.status_code == 200, url
        assert 'method="post"' not in page.text, url
        assert "Sign in" in page.text


def test_sign_in_sets_a_strict_httponly_cookie_and_sign_out_ends_it(web: Web) -> None:
    c = web.client()
    form = c.get("/signin?next=/names/chat")
    r = c.post("/signin", data={"csrf": csrf_of(form.text), "token": web.tokens["rita"],
                                "next": "/names/chat"})
    assert r.status_code == 303 and r.headers["location"] == "/names/chat"
    cookie = r.headers["set-cookie"]
    assert "llmreg_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS the cookie is Secure
    stolen = c.cookies.get("llmreg_session")
    home = c.get("/")
    assert "Signed in as" in home.text and "rita" in home.text
    out = c.post("/signout", data={"csrf": csrf_of(home.text)})
    assert out.status_code == 303
    again = web.client()
    again.cookies.set("llmreg_session", stolen)  # the old cookie is dead server-side
    assert again.get("/").status_code == 303


def test_sign_in_over_https_sets_a_secure_cookie(web: Web) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(web.app, base_url="https://registry.test", follow_redirects=False)
    form = c.get("/signin")
    r = c.post("/signin", data={"csrf": csrf_of(form.text), "token": web.tokens["rita"]})
    assert "Secure" in r.headers["set-cookie"]


def test_sign_in_refuses_a_bad_token_a_foreign_next_and_a_missing_csrf(web: Web) -> None:
    c = web.client()
    form = c.get("/signin")
    bad = c.post("/signin", data={"csrf": csrf_of(form.text), "token": "llmreg_nope"})
    assert bad.status_code == 401 and "error: the token is not an llmreg token" in bad.text
    form = c.get("/signin")
    r = c.post("/signin", data={"csrf": csrf_of(form.text), "token": web.tokens["rita"],
                                "next": "//evil.example/x"})
    assert r.headers["location"] == "/"
    fresh = web.client()
    assert fresh.post("/signin", data={"token": web.tokens["rita"]}).status_code == 403


def test_a_revoked_token_ends_its_sessions(web: Web) -> None:
    c = web.signed_in("rita")
    assert c.get("/").status_code == 200
    token_id = web.tokens["rita"].split("_")[1]
    web.service.access.revoke_token(token_id, actor="ada")
    assert c.get("/").status_code == 303


def test_reader_sees_no_action_and_cannot_post_one(web: Web) -> None:
    c = web.signed_in("rita")
    page = c.get("/names/chat/versions/2")
    assert "Approve for" not in page.text and "Promote to" not in page.text
    r = c.post("/names/chat/versions/2/promote",
               data={"csrf": csrf_of(page.text), "env": "staging", "expect": "1",
                     "reason": "x"})
    assert r.status_code == 403 and "this needs publisher" in r.text
    assert web.service.versions.slot("chat", "staging").version == 1


def test_post_without_csrf_is_refused_and_changes_nothing(web: Web) -> None:
    c = web.signed_in("ada")
    before = web.service.audit.head()
    for data in ({"env": "staging", "expect": "1", "reason": "x"},
                 {"csrf": "forged", "env": "staging", "expect": "1", "reason": "x"}):
        r = c.post("/names/chat/versions/2/promote", data=data)
        assert r.status_code == 403
        assert "CSRF token is missing or wrong; nothing changed" in r.text
    assert web.service.versions.slot("chat", "staging").version == 1
    assert web.service.audit.head() == before
    assert c.post("/signout", data={}).status_code == 403


def test_promote_moves_the_slot_and_a_stale_form_is_a_conflict(web: Web) -> None:
    register(web, "chat", "Be brief.\nAnswer in German.")  # chat@3
    c = web.signed_in("pat")
    page = c.get("/names/chat/versions/3")
    csrf = csrf_of(page.text)
    assert 'name="expect" value="1"' in page.text  # staging held @1 when the page was shown
    # someone else moves staging while the page is open
    web.service.lifecycle.promote("chat@2", "staging", actor=Actor("ann"), reason="hotfix")
    stale = c.post("/names/chat/versions/3/promote",
                   data={"csrf": csrf, "env": "staging", "expect": "1", "reason": "mine"})
    assert stale.status_code == 409
    assert "error: chat/staging holds @2, not @1 as expected; nothing changed" in stale.text
    assert web.service.versions.slot("chat", "staging").version == 2
    ok = c.post("/names/chat/versions/3/promote",
                data={"csrf": csrf, "env": "staging", "expect": "2", "reason": "after 2"})
    assert ok.status_code == 303
    assert ok.headers["location"] == "/names/chat/versions/3?done=promoted"
    assert web.service.versions.slot("chat", "staging").version == 3
    assert "Promoted." in c.get(ok.headers["location"]).text
    moves = web.service.slots.history("chat", "staging")
    assert moves[-1].actor == "pat" and moves[-1].reason == "after 2"
    gated = c.post("/names/chat/versions/3/promote",
                   data={"csrf": csrf, "env": "production", "expect": "", "reason": "go"})
    assert gated.status_code == 422 and "error: chat@3 cannot move to production" in gated.text


def register(web: Web, name: str, prompt: str) -> None:
    from llmreg.bundle.schema import Bundle
    from tests.conftest import minimal

    web.service.versions.register(Bundle.from_dict(minimal(system_prompt=prompt)), name=name,
                                  message="more", author="pat")


def test_promote_into_an_empty_slot_expects_it_empty(web: Web) -> None:
    c = web.signed_in("ada")
    csrf = csrf_of(c.get("/").text)
    web.service.approvals.approve("chat@1", "shadow", actor=Actor("ann"))
    web.service.lifecycle.promote("chat@1", "shadow", actor=Actor("ann"), reason="mirror")
    r = c.post("/names/chat/versions/1/promote",
               data={"csrf": csrf, "env": "shadow", "expect": "", "reason": "x"})
    assert r.status_code == 409 and "holds @1, not nothing as expected" in r.text
    missing = c.post("/names/chat/versions/1/promote",
                     data={"csrf": csrf, "env": "shadow", "reason": "x"})
    assert missing.status_code == 400 and "no &#39;expect&#39; field" in missing.text
    bad = c.post("/names/chat/versions/1/promote",
                 data={"csrf": csrf, "env": "shadow", "expect": "one", "reason": "x"})
    assert bad.status_code == 400


def test_self_approval_shows_the_cli_refusal(web: Web) -> None:
    web.service.access.create_token("pat", "approver", created_by="setup")
    token, _ = web.service.access.create_token("pat", "approver", created_by="setup")
    web.tokens["pat-approver"] = token
    c = web.signed_in("pat-approver")
    csrf = csrf_of(c.get("/names/chat/versions/1").text)
    r = c.post("/names/chat/versions/1/approve",
               data={"csrf": csrf, "env": "production", "comment": "mine"})
    assert r.status_code == 403
    assert ("error: pat is the author of chat@1 and cannot approve it for production; "
            "ask another approver") in r.text
    assert web.service.approvals.list("chat@1", "production") == []


def test_approve_and_rollback_go_through_the_service(web: Web) -> None:
    c = web.signed_in("ann")
    csrf = csrf_of(c.get("/").text)
    r = c.post("/names/chat/versions/1/approve",
               data={"csrf": csrf, "env": "production", "comment": "looks right"})
    assert r.status_code == 303
    [a] = web.service.approvals.list("chat@1", "production")
    assert (a.approver, a.comment) == ("ann", "looks right")
    web.service.lifecycle.promote("chat@2", "staging", actor=Actor("pat"), reason="next")
    page = c.get("/names/chat/versions/2")
    assert "Roll staging back to the version before" in page.text
    r = c.post("/names/chat/versions/2/rollback",
               data={"csrf": csrf, "env": "staging", "reason": "broke answers"})
    assert r.status_code == 303
    assert web.service.versions.slot("chat", "staging").version == 1
    empty = c.post("/names/chat/versions/1/rollback",
                   data={"csrf": csrf, "env": "production", "reason": "again"})
    assert empty.status_code == 404
    assert "error: &#39;chat&#39; has nothing in &#39;production&#39; to roll back" in empty.text
    audit = c.get("/audit?actor=ann").text
    assert "rollback" in audit and "broke answers" in audit


def test_gate_checks_print_like_the_cli(web: Web) -> None:
    page = web.signed_in("rita").get("/names/chat/versions/1").text
    assert "chat@1 (staging) -&gt; production" in page
    assert "✗</span> eval:regression: no &#39;regression&#39; eval is attached" in page


def test_bad_inputs_are_error_pages_with_their_status(open_web: Web) -> None:
    c = open_web.client()
    for url, status in [("/names/nope", 404), ("/names/chat/versions/9", 404),
                        ("/names/chat/versions/x", 400), ("/names/chat/diff/1-2", 400),
                        ("/names/chat/diff/1..9", 404), ("/?offset=-1", 400),
                        ("/audit?env=moon", 400), ("/names/BAD%20NAME", 400)]:
        r = c.get(url)
        assert r.status_code == status, (url, r.text)
        assert "error: " in r.text and r.headers["content-type"].startswith("text/html")


def test_forms_must_be_urlencoded_and_small(web: Web) -> None:
    c = web.signed_in("ada")
    r = c.post("/names/chat/versions/1/approve", content=b'{"csrf": "x"}',
               headers={"content-type": "application/json"})
    assert r.status_code == 400 and "application/x-www-form-urlencoded" in r.text
    big = c.post("/signin", content=b"a" * (65 * 1024),
                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413
    signout = web.client().post("/signout", data={"csrf": "x"})
    assert signout.status_code == 401


def test_lists_are_paginated(open_web: Web) -> None:
    from llmreg.bundle.schema import Bundle
    from tests.conftest import minimal

    for i in range(55):
        open_web.service.versions.register(
            Bundle.from_dict(minimal(system_prompt=f"p{i}")), name=f"n{i:02d}",
            message="m", author="pat")
    c = open_web.client()
    first = c.get("/").text
    assert "1–50 of 56" in first and 'href="?offset=50"' in first
    second = c.get("/?offset=50").text
    assert "51–56 of 56" in second and "n54" in second and "n00" not in second
    audit = c.get("/audit").text
    older = re.search(r'href="\?name=&amp;env=&amp;actor=&amp;before=(\d+)">Older',
                      audit.replace("&before", "&amp;before"))
    assert older is not None and "Newest" not in audit
    second_page = c.get(f"/audit?before={older.group(1)}").text
    assert "51–" in second_page and "Newest" in second_page


def test_board_shows_drift_and_last_served(open_web: Web) -> None:
    svc = open_web.service
    register(open_web, "chat", "Be brief.\nAnswer in German.")  # chat@3
    svc.lifecycle.promote("chat@2", "staging", actor=Actor("pat"), reason="next")
    svc.evidence.attach("chat@2", type="eval", suite="regression",
                        metrics={"accuracy": 0.95}, actor=Actor("pat"))
    for who in ("ann", "abe"):
        svc.approvals.approve("chat@2", "production", actor=Actor(who, None))
    svc.lifecycle.promote("chat@2", "production", actor=Actor("pat"), reason="ship")
    svc.lifecycle.promote("chat@3", "staging", actor=Actor("pat"), reason="next")
    digest = svc.versions.resolve("chat@2").digest
    svc.access.record_heartbeats([{"name": "chat", "env": "production", "digest": digest,
                                   "count": 3}])
    page = open_web.client().get("/").text
    assert "drift staging ≠ production" in page
    assert "last served" in page and "(an older digest)" not in page
    version = open_web.client().get("/names/chat/versions/2").text
    assert "staging → production: accuracy &gt;= 0.9" in version and "✓ pass" in version


def test_audit_page_shows_a_broken_chain_after_its_background_recheck(open_web: Web) -> None:
    import time

    import sqlalchemy as sa

    c = open_web.client()
    assert "entries chain correctly" in c.get("/audit").text
    with open_web.service.db.write() as s:
        s.execute(sa.text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1"))
    state = open_web.app.state.llmreg  # type: ignore[attr-defined]
    assert "entries chain correctly" in c.get("/audit").text  # the last answer, < 1 min old
    state.chain.at = float("-inf")  # a minute later
    c.get("/audit")
    deadline = time.monotonic() + 30
    while state.chain.running and time.monotonic() < deadline:
        time.sleep(0.05)
    page = c.get("/audit").text
    assert "Chain broken" in page and "audit entry #1" in page and "was altered" in page


def test_metric_rows_put_each_metric_beside_its_gates() -> None:
    from datetime import UTC, datetime

    from llmreg.policy import Policy
    from llmreg.server.web.pages import metric_rows
    from llmreg.server.web.render import as_json, when
    from llmreg.server.web.sidebyside import side_by_side
    from llmreg.types import EvidenceInfo

    at = datetime(2026, 1, 1, tzinfo=UTC)
    shadow = EvidenceInfo(id=1, digest="sha256:" + "0" * 64, type="shadow-metrics",
                          suite="shadow", metrics={"error_rate": 0.02, "p50": 1.0},
                          created_by="ci", created_at=at)
    rows = metric_rows([shadow], Policy.default())[1]
    assert rows[0] == ("error_rate", 0.02,
                       [("shadow → production", "error_rate <= 0.01", False)])
    assert rows[1] == ("p50", 1.0, [])
    low = EvidenceInfo(id=2, digest=shadow.digest, type="eval", suite="regression",
                       metrics={"accuracy": 0.5}, created_by="ci", created_at=at)
    assert metric_rows([low], Policy.default())[2][0][2][0][2] is False
    assert when(None) == "" and as_json({"b": 1, "a": [2]}).startswith('{\n  "a"')
    assert [r.kind for r in side_by_side("a\nb", "a\nb\nc")] == ["fold", "added"]
    assert [r.kind for r in side_by_side("a\nb\nc", "a\nc")][-2:] == ["removed", "same"]


def test_board_and_name_page_show_the_owner_and_open_alerts(open_web: Web) -> None:
    from datetime import UTC, datetime, timedelta

    svc = open_web.service
    page = open_web.client().get("/").text
    assert "no owner" in page and "open alert" not in page
    svc.owners.set("chat", team="search", contacts=["search@example.com"], actor=Actor("pat"))
    svc.lifecycle.promote("chat@2", "staging", actor=Actor("pat"), reason="next")
    svc.evidence.attach("chat@2", type="eval", suite="regression",
                        metrics={"accuracy": 0.95}, actor=Actor("pat"))
    for who in ("ann", "abe"):
        svc.approvals.approve("chat@2", "production", actor=Actor(who, None))
    svc.lifecycle.promote("chat@2", "production", actor=Actor("pat"), reason="ship")
    svc.alerts.check(now=datetime.now(UTC) + timedelta(days=31))  # production fell silent
    page = open_web.client().get("/").text
    assert "owner search" in page and "1 open alert" in page
    name = open_web.client().get("/names/chat").text
    assert "<strong>search</strong> (search@example.com)" in name
    assert 'id="alerts"' in name and "production @2" in name


def test_metric_rows_show_the_bounds_each_kind_of_gate_declares() -> None:
    from datetime import UTC, datetime

    from llmreg.policy import Policy
    from llmreg.server.web.pages import metric_rows
    from llmreg.types import EvidenceInfo

    at = datetime(2026, 1, 1, tzinfo=UTC)
    policy = Policy.default()

    def rows(type_: str, suite: str) -> list[tuple[str, str, bool | None]]:
        ev = EvidenceInfo(id=1, digest="sha256:" + "0" * 64, type=type_, suite=suite,
                          metrics={"accuracy": 0.95, "error_rate": 0.005}, created_by="ci",
                          created_at=at)
        return [b for _, _, bounds in metric_rows([ev], policy)[1] for b in bounds]

    assert rows("eval", "regression") == [
        ("staging → production", "accuracy >= 0.9", True),
        ("shadow → production", "accuracy >= 0.9", True)]
    assert rows("eval", "other-suite") == []
    assert rows("shadow-metrics", "live") == [
        ("shadow → production", "error_rate <= 0.01", True)]


def test_audit_page_says_whether_and_against_what_it_checked(open_web: Web,
                                                             tmp_path: Path) -> None:
    import html
    import re

    import sqlalchemy as sa

    from llmreg.service.mirror.keys import keygen
    from llmreg.service.mirror.publisher import AutoPublisher

    c = open_web.client()
    svc = open_web.service
    page = html.unescape(c.get("/audit").text)
    assert "Not checked against an anchor: a consistent rewrite of the whole log" in page
    rows = svc.audit.check().rows
    assert f"entries chain correctly, {rows} rows equal their audited fields" in page
    head = svc.audit.head()
    given = html.unescape(c.get(f"/audit?head={head}").text)
    assert f"Checked against an anchor: the head you gave ({head})." in given
    assert c.get("/audit?head=sha256:xyz").status_code == 400
    # a server that publishes its mirror checks against the head it last signed there
    state = open_web.app.state.llmreg  # type: ignore[attr-defined]
    state.publisher = AutoPublisher(svc, str(tmp_path / "mirror"), keygen(tmp_path / "keys"))
    report = state.publisher.after_move()
    assert report is not None and report.audit_head == head
    state.chain.count = None  # not checked yet: the next page checks now
    signed = html.unescape(c.get("/audit").text)
    assert re.search(r"Checked against an anchor: the head this server last signed into the "
                     rf"mirror \S+mirror \(#{report.audit_seq}\)\.", signed)
    with svc.db.write() as s:  # the log rewritten without its newest entry (and its row)
        s.execute(sa.text(f"DELETE FROM audit_log WHERE seq = {report.audit_seq}"))
        s.execute(sa.text("DELETE FROM slot_events WHERE id = (SELECT max(id) FROM "
                          "slot_events)"))
    state.chain.count = None
    broken = html.unescape(c.get("/audit").text)
    assert "Chain broken" in broken and f"does not contain head {head}" in broken
    assert "against the head this server last signed into the mirror" in broken
    edited = html.unescape(c.get(f"/audit?head={svc.audit.head()}").text)
    assert "Chain broken" in edited  # the slot moved by the cut entry still points there


def test_the_board_filters_by_team_and_offers_my_teams(web: Web) -> None:
    svc = web.service
    admin = Actor("ada", teams={"*": "admin"})
    svc.owners.set("chat", team="search", contacts=["s@example.com"], actor=admin)
    svc.versions.register(Bundle.from_dict(minimal()), name="billing-bot", message="m",
                          author="ada", actor=admin, team="billing")
    web.tokens["sam"], _ = svc.access.create_token("sam", teams={"search": "approver"},
                                                   created_by="ada")
    c = web.signed_in("sam")
    everything = c.get("/").text
    assert "billing-bot" in everything and 'href="/?team=search"' in everything
    mine = c.get("/?team=search").text
    assert "1 name owned by team search" in mine and "billing-bot" not in mine
    assert c.get("/?team=bad:team").status_code == 400


def test_the_name_page_says_who_may_approve_and_the_audit_shows_owner_changes(
        open_web: Web) -> None:
    svc = open_web.service
    admin = Actor("ada", teams={"*": "admin"})
    svc.owners.set("chat", team="search", contacts=["s@example.com"], actor=admin)
    svc.owners.set("chat", team="support", contacts=["t@example.com"], actor=admin)
    c = open_web.client()
    page = c.get("/names/chat").text
    assert ("staging → production: 2 approvals (role approver) by distinct people, not the "
            "author, from team support") in page
    audit = c.get("/audit?name=chat").text
    assert "team search → support; contacts s@example.com → t@example.com" in audit
