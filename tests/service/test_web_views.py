"""svc.sessions and svc.overview: sign-ins that end, and the people's views (on SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from llmreg.bundle.schema import Bundle
from llmreg.db.models import WebSession
from llmreg.errors import AuthError, RefNotFoundError, UnknownEnvironmentError
from llmreg.service import RegistryService
from llmreg.service.sessions import SESSION_TTL, csrf_of
from llmreg.types import Actor
from tests.conftest import minimal
from tests.service.conftest import on_each_database

svc = pytest.fixture(on_each_database, name="svc")


def test_a_session_acts_as_its_token_until_it_ends(svc: RegistryService) -> None:
    token, _ = svc.access.create_token("ana", "publisher", created_by="setup")
    cookie, info = svc.sessions.start(token)
    assert info.actor.name == "ana" and "publisher" in (info.actor.roles or ())
    assert info.csrf == csrf_of(cookie) and info.csrf != csrf_of(cookie + "x")
    found = svc.sessions.lookup(cookie)
    assert found is not None and found.token_id == info.token_id
    session_id, _, secret = cookie.partition(".")
    assert svc.sessions.lookup(f"{session_id}.{'A' * 43}") is None  # wrong secret
    assert svc.sessions.lookup("garbage") is None
    assert svc.sessions.lookup(f"{'0' * 16}.{secret}") is None  # unknown id
    assert svc.sessions.end(cookie) is True
    assert svc.sessions.end(cookie) is False
    assert svc.sessions.lookup(cookie) is None


def test_sessions_refuse_bad_tokens_and_expire(svc: RegistryService) -> None:
    with pytest.raises(AuthError, match="^token 000000000000 is unknown to this registry; "):
        svc.sessions.start("llmreg_000000000000_" + "x" * 43)
    with pytest.raises(AuthError):
        svc.sessions.start("")
    token, _ = svc.access.create_token("ana", "reader", created_by="setup")
    cookie, _ = svc.sessions.start(token)
    with svc.db.write() as s:
        s.execute(sa.update(WebSession).values(
            expires_at=datetime(2000, 1, 1, tzinfo=UTC)))
    assert svc.sessions.lookup(cookie) is None
    # an expired session older than a day is purged when the next one starts
    svc.sessions.start(token)
    with svc.db.read() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(WebSession)).scalar_one() == 1
    assert SESSION_TTL > timedelta(hours=1)


def _register(svc: RegistryService, name: str, prompt: str) -> None:
    svc.versions.register(Bundle.from_dict(minimal(system_prompt=prompt)), name=name,
                          message=prompt, author="ana")


def test_overview_pages_are_newest_first_and_filtered(svc: RegistryService) -> None:
    for i in range(3):
        _register(svc, "chat", f"p{i}")
    _register(svc, "other", "p0")
    svc.lifecycle.promote("chat@1", "staging", actor=Actor("bo"), reason="r1")
    svc.lifecycle.promote("chat@2", "staging", actor=Actor("bo"), reason="r2")
    versions = svc.overview.versions_page("chat", limit=2)
    assert [v.version for v in versions.items] == [3, 2] and versions.next == 2
    moves = svc.overview.slot_events_page("chat")
    assert [m.reason for m in moves.items] == ["r2", "r1"]
    assert svc.overview.slots_of("chat") == {"staging": 2}
    digest = svc.versions.resolve("chat@1").digest
    assert [v.ref for v in svc.overview.versions_with_digest(digest)] == ["chat@1",
                                                                        "other@1"]
    assert svc.overview.approvals_of("chat", digest) == {}
    svc.approvals.approve("chat@1", "production", actor=Actor("cy"))
    assert [a.approver for a in svc.overview.approvals_of("chat", digest)["production"]] \
        == ["cy"]
    page = svc.overview.audit_page(env="pre-prod", limit=1)
    assert page.total == 2
    assert page.next is not None and page.offset == 0
    older = svc.overview.audit_page(env="staging", before=page.next, limit=1)
    assert older.offset == 1 and older.next is None
    assert older.items[0].detail["reason"] == "r1"
    assert svc.overview.audit_page(actor="nobody").total == 0
    with pytest.raises(UnknownEnvironmentError):
        svc.overview.audit_page(env="moon")
    with pytest.raises(RefNotFoundError):
        svc.overview.versions_page("missing")


def test_board_drift_pair_follows_the_policy(svc: RegistryService) -> None:
    from llmreg.policy import parse_policy
    from llmreg.service.overview import Overview

    policy = parse_policy("version: 1\nenvironments:\n  dev: {}\n  live: {}\n"
                          "transitions:\n  - {from: registered, to: dev}\n"
                          "  - {from: dev, to: live}\n", source="test")
    assert Overview(svc.db, policy).drift_pair() == ("dev", "live")
    assert svc.overview.drift_pair() == ("staging", "production")
    assert svc.overview.board().total == 0
