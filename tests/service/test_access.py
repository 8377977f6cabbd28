"""Tokens and heartbeats: heartbeats write rows only for versions the registry holds;
tokens expire when told to, rotate, and say why they are refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from llmreg.bundle.schema import Bundle
from llmreg.errors import (
    InvalidNameError,
    InvalidRefError,
    InvalidRequestError,
    RefNotFoundError,
    TransitionError,
    UnknownEnvironmentError,
)
from llmreg.service import RegistryService
from llmreg.service.access import parse_expiry, refusal
from tests.clock import Clock, frozen_clock
from tests.conftest import minimal


def registered(svc: RegistryService) -> str:
    bundle = Bundle.from_dict(minimal(system_prompt="hi"))
    return svc.versions.register(bundle, name="chat", message="one", author="ana").version.digest


def test_heartbeats_roll_up_per_version_and_environment(svc: RegistryService) -> None:
    digest = registered(svc)
    beat = {"name": "chat", "env": "prod", "digest": digest, "count": 3}
    assert svc.access.record_heartbeats([beat, beat]) == 2
    [row] = svc.access.heartbeats("chat")
    assert (row["env"], row["digest"], row["count"]) == ("production", digest, 6)


@pytest.mark.parametrize("change,error,message", [
    ({"name": "nobody"}, RefNotFoundError, r"beats\[1\]: nobody@sha256:.* is not a registered"),
    ({"digest": "sha256:" + "0" * 64}, RefNotFoundError, "is not a registered version"),
    ({"digest": "anything"}, InvalidRefError, r"beats\[1\].digest 'anything' is not a digest"),
    ({"env": "moon"}, UnknownEnvironmentError, "moon"),
    ({"name": "Chat\n"}, InvalidNameError, r"beats\[1\].name"),
    ({"count": -1}, InvalidRefError, r"beats\[1\].count -1 must be a whole number"),
    ({"count": 10**12}, InvalidRefError,
     r"beats\[1\]\.count is 1000000000000; one beat reports at most 1000000 requests"),
    ({"count": "7"}, InvalidRefError, "must be a whole number"),
])
def test_a_bad_beat_refuses_the_batch_and_writes_nothing(
        svc: RegistryService, change: dict[str, object], error: type[Exception],
        message: str) -> None:
    digest = registered(svc)
    good = {"name": "chat", "env": "production", "digest": digest, "count": 1}
    with pytest.raises(error, match=message):
        svc.access.record_heartbeats([good, {**good, **change}])
    assert svc.access.heartbeats() == []


def test_rows_stay_bounded_by_the_registry(svc: RegistryService) -> None:
    digest = registered(svc)
    for i in range(20):  # what 20 anonymous requests wrote 20,001 rows with
        with pytest.raises(RefNotFoundError):
            svc.access.record_heartbeats(
                [{"name": "chat", "env": "production", "digest": f"sha256:{j:064x}"}
                 for j in range(i * 1000, (i + 1) * 1000)])
    with pytest.raises(InvalidRefError, match="1001 heartbeats in one batch; the limit is 1000"):
        svc.access.record_heartbeats([{"name": "chat", "env": "production",
                                       "digest": digest}] * 1001)
    assert svc.access.heartbeats() == []


# --- tokens that expire ---------------------------------------------------------------------

NOW = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[Clock]:
    with frozen_clock(NOW) as c:
        yield c


@pytest.mark.parametrize(("text", "after"), [
    ("30m", timedelta(minutes=30)),
    ("12h", timedelta(hours=12)),
    ("7d", timedelta(days=7)),
    ("90d", timedelta(days=90)),
    ("8w", timedelta(weeks=8)),
    ("1m", timedelta(minutes=1)),
    (" 90d ", timedelta(days=90)),
    ("1826d", timedelta(days=1826)),  # 5 years and a leap day: the bound itself
])
def test_a_duration_counts_from_now(text: str, after: timedelta) -> None:
    assert parse_expiry(text, NOW) == NOW + after


@pytest.mark.parametrize(("text", "at"), [
    ("2027-03-01", datetime(2027, 3, 1, tzinfo=UTC)),  # a date: 00:00 UTC that day
    ("2027-03-01T08:30:00Z", datetime(2027, 3, 1, 8, 30, tzinfo=UTC)),
    ("2027-03-01T08:30", datetime(2027, 3, 1, 8, 30, tzinfo=UTC)),  # no offset: UTC
    ("2027-03-01T10:30:00+02:00", datetime(2027, 3, 1, 8, 30, tzinfo=UTC)),
    ("2027-01-01T12:00:01Z", NOW + timedelta(seconds=1)),
])
def test_an_iso_date_or_time_is_taken_as_utc(text: str, at: datetime) -> None:
    found = parse_expiry(text, NOW)
    assert found == at and found is not None and found.utcoffset() == timedelta(0)


@pytest.mark.parametrize(("text", "why"), [
    ("0d", "is not a positive duration"),
    ("0m", "is not a positive duration"),
    ("-5d", "is not a positive duration"),
    ("1827d", "is more than 5 years ahead"),
    ("262w", "is more than 5 years ahead"),
    ("99999999h", "is more than 5 years ahead"),
    ("999999999999d", "is more than 5 years ahead"),  # past what a timedelta holds
    ("999999999999w", "is more than 5 years ahead"),
    ("9999-12-31", "is more than 5 years ahead"),
    ("2032-01-03", "is more than 5 years ahead"),
    ("2027-01-01T12:00:00Z", "is not in the future (it is now 2027-01-01T12:00:00Z)"),
    ("2026-12-31", "is not in the future"),
    ("90", "is neither a duration nor an ISO date"),
    ("90 days", "is neither a duration nor an ISO date"),
    ("5y", "is neither a duration nor an ISO date"),
    ("", "is neither a duration nor an ISO date"),
    ("2027-02-30", "is neither a duration nor an ISO date"),
    ("tomorrow", "is neither a duration nor an ISO date"),
])
def test_a_bad_expiry_is_refused_naming_field_value_and_fix(text: str, why: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_expiry(text, NOW)
    message = str(info.value)
    assert message.startswith(f"expires {text!r} {why}"), message
    assert message.endswith("leave --expires out for a token that never expires")
    assert "\n" not in message


def test_a_bad_expiry_creates_no_token(svc: RegistryService, clock: Clock) -> None:
    with pytest.raises(InvalidRequestError, match="expires '6000d' is more than 5 years"):
        svc.access.create_token("ci", "reader", created_by="ana", expires="6000d")
    assert svc.access.list_tokens() == [] and svc.audit.entries() == []


def test_without_expires_a_token_never_expires(svc: RegistryService, clock: Clock) -> None:
    secret, info = svc.access.create_token("ci", "reader", created_by="ana")
    assert info.expires_at is None
    clock.now = NOW + timedelta(days=3650)
    actor = svc.access.authenticate(secret)
    assert actor is not None and actor.expires_at is None and actor.token_id == info.token_id


def test_a_token_works_until_it_expires_and_not_a_second_after(
        svc: RegistryService, clock: Clock) -> None:
    secret, info = svc.access.create_token("ci", "publisher", created_by="ana",
                                           expires="12h")
    assert info.expires_at == NOW + timedelta(hours=12)
    assert [t.expires_at for t in svc.access.list_tokens()] == [NOW + timedelta(hours=12)]
    clock.now = NOW + timedelta(hours=12) - timedelta(seconds=1)
    actor = svc.access.authenticate(secret)
    assert actor is not None and actor.name == "ci" and "publisher" in (actor.roles or ())
    assert actor.expires_at == NOW + timedelta(hours=12)
    clock.now = NOW + timedelta(hours=12)  # the moment itself: expired
    assert svc.access.authenticate(secret) is None
    found = svc.access.identify(secret)
    assert not isinstance(found, str)
    assert refusal(found, clock.now) == (
        f"token {info.token_id} expired at 2027-01-02T00:00:00Z; an admin renews it with "
        f"`llmreg token rotate {info.token_id}` (or creates a new one with "
        "`llmreg token create`)")
    clock.now = NOW + timedelta(hours=12, seconds=1)
    assert svc.access.authenticate(secret) is None


def test_the_audit_entry_records_the_expiry(svc: RegistryService, clock: Clock) -> None:
    _, info = svc.access.create_token("ci", "reader", created_by="ana", expires="7d")
    [entry] = svc.audit.entries()
    assert entry.detail["expires_at"] == "2027-01-08T12:00:00Z"
    assert entry.detail["rows"][f"tokens/{info.token_id}"]["expires_at"] == \
        "2027-01-08T12:00:00.000000Z"
    assert svc.audit.verify() == 1


def test_rotate_issues_a_new_secret_and_revokes_the_old(
        svc: RegistryService, clock: Clock) -> None:
    old_secret, old = svc.access.create_token("ci", "approver", created_by="ana",
                                              expires="1h")
    clock.now = NOW + timedelta(hours=2)  # expired: rotating it is the fix
    assert svc.access.authenticate(old_secret) is None
    new_secret, new = svc.access.rotate_token(old.token_id, actor="root", expires="90d")
    assert (new.subject, new.role, new.created_by) == ("ci", "approver", "root")
    assert new.token_id != old.token_id and new_secret != old_secret
    assert new.expires_at == clock.now + timedelta(days=90) and new.revoked_at is None
    actor = svc.access.authenticate(new_secret)
    assert actor is not None and actor.token_id == new.token_id
    assert svc.access.identify(old_secret) == (
        f"token {old.token_id} was revoked at 2027-01-01T14:00:00Z; it cannot be renewed: "
        "ask an admin for a new one (`llmreg token create --subject ci --role approver`)")
    by_id = {t.token_id: t for t in svc.access.list_tokens()}
    assert by_id[old.token_id].revoked_at == clock.now
    entries = svc.audit.entries()
    assert [(e.action, e.target, e.actor) for e in entries[1:]] == [
        ("token-create", new.token_id, "root"), ("token-revoke", old.token_id, "root")]
    assert entries[1].detail["rotated_from"] == old.token_id
    assert entries[2].detail["rotated_to"] == new.token_id
    assert svc.audit.verify() == 3


def test_rotate_without_expires_gives_a_token_that_never_expires(
        svc: RegistryService, clock: Clock) -> None:
    _, old = svc.access.create_token("ci", "reader", created_by="ana", expires="30m")
    _, new = svc.access.rotate_token(old.token_id, actor="ana")
    assert new.expires_at is None


def test_rotate_of_a_revoked_or_unknown_token_is_refused_and_writes_nothing(
        svc: RegistryService, clock: Clock) -> None:
    _, old = svc.access.create_token("ci", "reader", created_by="ana")
    svc.access.revoke_token(old.token_id, actor="ana")
    before = (svc.access.list_tokens(), len(svc.audit.entries()))
    with pytest.raises(TransitionError) as info:
        svc.access.rotate_token(old.token_id, actor="ana")
    assert str(info.value) == (
        f"token {old.token_id} was revoked at 2027-01-01T12:00:00Z and cannot be rotated; "
        "create a new one with `llmreg token create --subject ci --role reader`")
    for unknown in ("ffffffffffff", "", "x' OR 1=1"):
        with pytest.raises(RefNotFoundError, match=r"^no token .*; see `llmreg token list`$"):
            svc.access.rotate_token(unknown, actor="ana")
    with pytest.raises(InvalidRequestError, match="expires '0h' is not a positive"):
        _, live = svc.access.create_token("cd", "reader", created_by="ana")
        before = (svc.access.list_tokens(), len(svc.audit.entries()))
        svc.access.rotate_token(live.token_id, actor="ana", expires="0h")
    assert (svc.access.list_tokens(), len(svc.audit.entries())) == before


def test_revoke_says_whether_it_changed_anything(svc: RegistryService, clock: Clock) -> None:
    _, info = svc.access.create_token("ci", "reader", created_by="ana")
    first, changed = svc.access.revoke(info.token_id, actor="ana")
    assert changed and first.revoked_at == NOW
    clock.now = NOW + timedelta(minutes=5)
    again, changed = svc.access.revoke(info.token_id, actor="ana")
    assert not changed and again.revoked_at == NOW  # the first revocation's time
    assert [e.action for e in svc.audit.entries()] == ["token-create", "token-revoke"]


@pytest.mark.parametrize("token", [
    "", "nope", "llmreg_0123456789ab_short",
    "Bearer llmreg_0123456789ab_" + "a" * 43,
])
def test_a_malformed_token_is_named_as_such(svc: RegistryService, token: str) -> None:
    assert svc.access.identify(token) == (
        "the token is not an llmreg token (llmreg_<id>_<secret>); send the whole line "
        "`llmreg token create` printed")


def test_a_wrong_secret_is_unknown_and_says_nothing_of_the_token(
        svc: RegistryService) -> None:
    secret, info = svc.access.create_token("ci", "reader", created_by="ana")
    svc.access.revoke_token(info.token_id, actor="ana")
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    message = svc.access.identify(wrong)
    assert message == (f"token {info.token_id} is unknown to this registry; ask an admin "
                       "for one (`llmreg token create --subject NAME --role ROLE`)")
    assert "revoked" not in message and "ci" not in message
