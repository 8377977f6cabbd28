"""Settings: read once from LLMREG_*, every bad value named with the variable."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import pytest

from llmreg.errors import ConfigError, RegistryNotFoundError
from llmreg.settings import Secret, Settings


def test_every_variable_is_read() -> None:
    s = Settings.from_env({
        "LLMREG_HOME": "~/reg/.llmreg", "LLMREG_DATABASE_URL": "postgresql+psycopg://db/x",
        "LLMREG_STORE": "file:///srv/blobs", "LLMREG_USER": "ana",
        "LLMREG_POLICY": "policy.yaml", "LLMREG_OFFLINE": " Yes ",
        "LLMREG_URL": "https://reg.example/", "LLMREG_TOKEN": "llmreg_abc",
        "LLMREG_CACHE": "~/cache", "LLMREG_READ_AUTH": "open", "LLMREG_RESOLVE_TTL": "2.5"})
    assert s.home == Path("~/reg/.llmreg").expanduser()
    assert s.database_url == "postgresql+psycopg://db/x"
    assert s.store == "/srv/blobs"  # file:// is dropped: a folder
    assert (s.user, s.policy, s.offline) == ("ana", Path("policy.yaml"), True)
    assert s.url == "https://reg.example"  # no trailing slash
    assert s.token == Secret("llmreg_abc") and s.token.get_secret_value() == "llmreg_abc"
    assert s.cache == Path("~/cache").expanduser()
    assert (s.read_auth, s.resolve_ttl) == ("open", 2.5)


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert (s.home, s.url, s.token, s.offline, s.read_auth, s.resolve_ttl) == (
        None, None, None, False, "token", 1.0)
    assert Settings.from_env({"LLMREG_STORE": "s3://bucket/pre"}).store == "s3://bucket/pre"


@pytest.mark.parametrize(
    ("env", "message"),
    [({"LLMREG_OFFLINE": "maybe"}, "LLMREG_OFFLINE='maybe' is not a boolean; use 1 or 0"),
     ({"LLMREG_STORE": "gs://b/p"},
      "LLMREG_STORE='gs://b/p' is not a folder, file://PATH or s3://BUCKET/PREFIX "
      "(scheme 'gs' is not supported)"),
     ({"LLMREG_PUBLISH": "ftp://h/m"},
      "LLMREG_PUBLISH='ftp://h/m' is not a folder, file://PATH or s3://BUCKET/PREFIX "
      "(scheme 'ftp' is not supported)"),
     ({"LLMREG_STORE": "s3:///prefix"},
      "LLMREG_STORE='s3:///prefix' names no bucket; use s3://BUCKET/PREFIX"),
     ({"LLMREG_URL": "reg.example"},
      "LLMREG_URL='reg.example' is not an http(s) URL, e.g. http://127.0.0.1:8700"),
     ({"LLMREG_READ_AUTH": "anyone"}, "LLMREG_READ_AUTH='anyone' must be 'token' or 'open'"),
     ({"LLMREG_RESOLVE_TTL": "soon"}, "LLMREG_RESOLVE_TTL='soon' must be seconds >= 0"),
     ({"LLMREG_RESOLVE_TTL": "-1"}, "LLMREG_RESOLVE_TTL='-1' must be seconds >= 0"),
     ({"LLMREG_API_DOCS": "sure"}, "LLMREG_API_DOCS='sure' is not a boolean; use 1 or 0"),
     ({"LLMREG_API_DOCS": "1\x1b[2J"},
      "LLMREG_API_DOCS='1\\x1b[2J' is not a boolean; use 1 or 0")],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert str(caught.value) == message


def test_identity_falls_back_to_the_os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(user="ana").identity() == "ana"
    monkeypatch.setattr(getpass, "getuser", lambda: "os-user")
    assert Settings().identity() == "os-user"

    def no_passwd_entry() -> str:
        raise KeyError("getpwuid(): uid not found")

    monkeypatch.setattr(getpass, "getuser", no_passwd_entry)
    assert Settings().identity() == f"uid-{os.getuid()}"


def test_resolve_home(tmp_path: Path) -> None:
    assert Settings(home=tmp_path / "x").resolve_home() == tmp_path / "x"
    (tmp_path / "proj" / ".llmreg").mkdir(parents=True)
    (tmp_path / "proj" / "a" / "b").mkdir(parents=True)
    found = Settings().resolve_home(tmp_path / "proj" / "a" / "b")
    assert found == (tmp_path / "proj" / ".llmreg").resolve()


def test_resolve_home_without_a_registry(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    import llmreg.settings

    monkeypatch.setattr(llmreg.settings, "find_home", lambda start: None)
    with pytest.raises(RegistryNotFoundError, match=f"no .llmreg/ registry in {tmp_path}"):
        Settings().resolve_home(tmp_path)


def test_secrets_do_not_print() -> None:
    secret = Secret("llmreg_abc")
    assert repr(secret) == "Secret('**********')" and "llmreg_abc" not in str(secret)
    assert "llmreg_abc" not in repr(Settings(token=secret))
    assert secret == Secret("llmreg_abc") and secret != Secret("other")
    assert secret != "llmreg_abc"
    assert hash(secret) == hash(Secret("llmreg_abc"))


@pytest.mark.parametrize(("raw", "on"), [("", False), ("0", False), ("1", True),
                                         ("true", True), ("off", False)])
def test_the_api_docs_pages_are_off_unless_asked_for(raw: str, on: bool) -> None:
    assert Settings().api_docs is False
    assert Settings.from_env({"LLMREG_API_DOCS": raw}).api_docs is on
