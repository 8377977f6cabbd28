"""`llmreg serve` in-process: what it checks and what it hands to uvicorn. (The real
server, with workers, is started by tests/e2e/test_serve.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmreg_cli.main import app


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    import uvicorn

    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append((target, kw)))
    # serve exports these for its worker processes; let the test undo that afterwards
    monkeypatch.setenv("LLMREG_READ_AUTH", "token")
    return calls


def run(*args: str):
    return CliRunner().invoke(app, list(args), prog_name="llmreg")


def test_serve_hands_the_factory_and_the_registry_to_uvicorn(
        uvicorn_calls: list[tuple[str, dict[str, Any]]], tmp_path: Path) -> None:
    import os

    home = tmp_path / "srv" / ".llmreg"
    assert run("init", str(home.parent)).exit_code == 0
    result = run("--registry", str(home), "serve", "--port", "8799", "--workers", "2")
    assert result.exit_code == 0, result.output
    ((target, kw),) = uvicorn_calls
    assert target == "llmreg.server.app:create_app_from_env"
    assert (kw["factory"], kw["host"], kw["port"], kw["workers"], kw["access_log"]) == (
        True, "127.0.0.1", 8799, 2, False)
    assert os.environ["LLMREG_HOME"] == str(home.resolve())
    assert os.environ["LLMREG_READ_AUTH"] == "token"
    assert result.stderr == ""


def test_open_reads_on_a_public_address_warn(
        uvicorn_calls: list[tuple[str, dict[str, Any]]], tmp_path: Path) -> None:
    home = tmp_path / "srv" / ".llmreg"
    assert run("init", str(home.parent)).exit_code == 0
    result = run("--registry", str(home), "serve", "--host", "0.0.0.0", "--read-auth", "open")
    assert result.exit_code == 0, result.output
    assert ("warning: anyone who can reach 0.0.0.0:8700 can read every bundle "
            "(--read-auth open)") in " ".join(result.stderr.split())
    assert uvicorn_calls[0][1]["host"] == "0.0.0.0"
    quiet = run("--registry", str(home), "serve", "--read-auth", "open")
    assert quiet.exit_code == 0 and quiet.stderr == ""  # loopback: no warning


@pytest.mark.parametrize(
    ("args", "message"),
    [(["serve", "--read-auth", "anyone"], "--read-auth 'anyone' must be 'token' or 'open'"),
     (["--registry", "http://127.0.0.1:8700", "serve"],
      "serve runs over a registry folder or database, not a URL")],
)
def test_serve_refuses_bad_options(uvicorn_calls: list[tuple[str, dict[str, Any]]],
                                   args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert uvicorn_calls == []
