"""``llmreg token create --expires``, ``token rotate``, ``token list`` and ``whoami``: the
expiry is shown, refused when absurd (one line, exit 1, nothing written), and a rotation
hands out a new secret once and revokes the old one."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.server.conftest import Server, server  # noqa: F401  (the fixture)

TOKEN_RE = re.compile(r"llmreg_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def created(run: Any, *args: str) -> tuple[str, str, str]:
    """(first line, token id, secret) of a ``token create``/``rotate`` that succeeded."""
    r = run("token", *args)
    assert r.exit_code == 0, r.output
    first, secret = lines(r.stdout)
    match = TOKEN_RE.fullmatch(secret)
    assert match is not None, secret
    return first, match.group(1), secret


@pytest.mark.parametrize(("expires", "lifetime"), [
    ("90d", timedelta(days=90)), ("12h", timedelta(hours=12)),
    ("30m", timedelta(minutes=30)), ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2)),
])
def test_create_with_a_duration_says_when_it_expires(
        run: Any, expires: str, lifetime: timedelta) -> None:
    assert run("init").exit_code == 0
    before = datetime.now(UTC)
    r = run("token", "create", "--subject", "ci", "--role", "publisher", "--expires", expires,
            "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    at = datetime.fromisoformat(data["expires_at"])
    assert before + lifetime - timedelta(seconds=1) <= at <= datetime.now(UTC) + lifetime
    assert TOKEN_RE.fullmatch(data["token"])
    first, token_id, _ = created(run, "create", "--subject", "cd", "--role", "reader",
                                 "--expires", expires)
    assert re.fullmatch(rf"created token {token_id} for cd \(role reader\), expires at "
                        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; store it now, it is not shown "
                        r"again:", first), first


@pytest.mark.parametrize(("expires", "at"), [
    ("2031-06-30", "2031-06-30T00:00:00Z"),
    ("2031-06-30T18:45:00Z", "2031-06-30T18:45:00Z"),
    ("2031-06-30T20:45:00+02:00", "2031-06-30T18:45:00Z"),
])
def test_create_with_an_iso_date(run: Any, expires: str, at: str) -> None:
    assert run("init").exit_code == 0
    first, token_id, _ = created(run, "create", "--subject", "ci", "--role", "reader",
                                 "--expires", expires)
    assert f"expires at {at};" in first
    listed = json.loads(run("token", "list", "--json").stdout)
    assert [(t["token_id"], t["expires_at"][:19]) for t in listed] == [(token_id, at[:19])]
    row = " ".join(lines(run("token", "list").stdout)[1].split())
    assert row.startswith(f"{token_id} ci reader - active ") and at[:10] in row


def test_create_without_expires_says_it_never_expires(run: Any) -> None:
    assert run("init").exit_code == 0
    first, _, _ = created(run, "create", "--subject", "ci", "--role", "reader")
    assert ", never expires (give --expires 90d for one that does);" in first
    [info] = json.loads(run("token", "list", "--json").stdout)
    assert info["expires_at"] is None


@pytest.mark.parametrize(("expires", "why"), [
    ("0d", "is not a positive duration"), ("-3h", "is not a positive duration"),
    ("6000d", "is more than 5 years ahead"), ("2040-01-01", "is more than 5 years ahead"),
    ("2020-01-01", "is not in the future"), ("90days", "is neither a duration nor"),
    ("next week", "is neither a duration nor"),
])
def test_a_bad_expires_is_one_line_exit_1_and_writes_nothing(
        run: Any, expires: str, why: str) -> None:
    assert run("init").exit_code == 0
    r = run("token", "create", "--subject", "ci", "--role", "reader", "--expires", expires)
    assert r.exit_code == 1 and r.stdout == ""
    [line] = r.stderr.splitlines()
    assert line.startswith(f"error: expires {expires!r} {why}"), line
    assert line.endswith("leave --expires out for a token that never expires")
    assert json.loads(run("token", "list", "--json").stdout) == []


def test_rotate_prints_the_new_secret_once_and_revokes_the_old(run: Any) -> None:
    assert run("init").exit_code == 0
    _, old_id, old_secret = created(run, "create", "--subject", "ci", "--role", "approver",
                                    "--expires", "1h")
    first, new_id, new_secret = created(run, "rotate", old_id, "--expires", "90d")
    assert re.fullmatch(rf"rotated token {old_id}: it is revoked; the new token {new_id} for ci "
                        r"\(role approver\), expires at \S+Z; hand it over now, it is not "
                        r"shown again:", first), first
    assert new_secret != old_secret
    by_id = {t["token_id"]: t for t in json.loads(run("token", "list", "--json").stdout)}
    assert by_id[old_id]["revoked_at"] is not None and by_id[new_id]["revoked_at"] is None
    assert (by_id[new_id]["subject"], by_id[new_id]["role"]) == ("ci", "approver")
    rows = lines(run("token", "list").stdout)
    table = {row.split()[0]: row.split()[4] for row in rows[1:3]}
    assert table == {old_id: "revoked", new_id: "active"}
    assert rows[3] == (f"1 active token is unscoped (the role applies to every name): {new_id}; "
                       "give each team its own (`llmreg token create --team TEAM:ROLE`) and "
                       "revoke these (docs/teams.md)")
    as_json = run("token", "rotate", new_id, "--json")
    data = json.loads(as_json.stdout)
    assert data["rotated_from"] == new_id and data["expires_at"] is None
    assert TOKEN_RE.fullmatch(data["token"]) and data["token_id"] != new_id
    assert run("audit", "verify").exit_code == 0


@pytest.mark.parametrize("case", ["revoked", "unknown", "bad expires"])
def test_rotate_refusals_are_one_line_and_exit_1(run: Any, case: str) -> None:
    assert run("init").exit_code == 0
    _, token_id, _ = created(run, "create", "--subject", "ci", "--role", "reader")
    args, want = {
        "revoked": ([token_id], f"error: token {token_id} was revoked at "),
        "unknown": (["0123456789ab"], "error: no token '0123456789ab'; see `llmreg token list`"),
        "bad expires": ([token_id, "--expires", "0m"], "error: expires '0m' is not a positive"),
    }[case]
    if case == "revoked":
        assert run("token", "revoke", token_id).exit_code == 0
    before = run("token", "list", "--json").stdout
    r = run("token", "rotate", *args)
    assert r.exit_code == 1 and r.stdout == ""
    [line] = r.stderr.splitlines()
    assert line.startswith(want), line
    if case == "revoked":
        assert line.endswith("cannot be rotated; create a new one with `llmreg token create "
                             "--subject ci --role reader`")
    assert run("token", "list", "--json").stdout == before


def test_whoami_on_the_embedded_registry_says_it_trusts_llmreg_user(run: Any) -> None:
    assert run("init").exit_code == 0
    out = lines(run("whoami", user="bo").stdout)
    assert out[0].startswith("bo  roles: all (embedded)  registry: ")
    assert out[1] == ("the embedded registry trusts LLMREG_USER (or your OS user) with every "
                      "role: whoever can write its folder is trusted; tokens apply on a server")
    data = json.loads(run("whoami", "--json", user="bo").stdout)
    assert (data["name"], data["roles"], data["token_id"], data["expires_at"]) == (
        "bo", None, None, None)


def test_whoami_on_a_server_shows_subject_roles_and_expiry(
        run: Any, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import llmreg_cli.inspect as inspect

    secret, info = server.service.access.create_token("ci", "approver", created_by="ada",
                                                      expires="90d")
    server.tokens["ci"] = secret
    monkeypatch.setattr(inspect, "connect", lambda: server.client("ci"))
    r = run("whoami")
    assert r.exit_code == 0, r.output
    assert info.expires_at is not None
    assert lines(r.stdout) == [
        f"ci  roles: approver, publisher, reader (on every name: unscoped)  token: "
        f"{info.token_id}, expires at "
        f"{info.expires_at:%Y-%m-%dT%H:%M:%SZ}  registry: http://registry.test"]
    data = json.loads(run("whoami", "--json").stdout)
    assert (data["token_id"], datetime.fromisoformat(data["expires_at"])) == (
        info.token_id, info.expires_at)
    monkeypatch.setattr(inspect, "connect", lambda: server.client("rita"))
    rita = lines(run("whoami").stdout)[0]
    assert rita.startswith("rita  roles: reader  token: ") and ", never expires" in rita
