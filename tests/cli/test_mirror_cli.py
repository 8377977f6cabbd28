"""`llmreg mirror keygen|rotate` and `llmreg publish`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import llmreg
from llmreg.service import RegistryService
from llmreg.settings import Settings
from llmreg_cli.main import app
from tests.mirror import register, to_production

runner = CliRunner()


def test_keygen_publish_rotate_and_resolve(tmp_path: Path) -> None:
    home = tmp_path / "home" / ".llmreg"  # LLMREG_HOME (tests/conftest.py)
    svc = RegistryService.open_home(home)
    to_production(svc, register(svc, 1))
    svc.close()
    result = runner.invoke(app, ["mirror", "keygen", "keys"])
    assert result.exit_code == 0, result.output
    assert "move keys/root.key offline now" in result.stderr
    result = runner.invoke(app, ["publish", "mirror", "--keys", "keys", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["timestamp_version"] == 1 and "metadata/timestamp.json" in report["written"]
    result = runner.invoke(app, ["publish", "mirror", "--keys", "keys"])
    assert result.exit_code == 0
    assert "0 files written (targets v1, snapshot v1, timestamp v1)" in result.stdout
    result = runner.invoke(app, ["mirror", "rotate", "keys", "--role", "timestamp"])
    assert result.exit_code == 0 and "root is now version 2" in result.stdout
    result = runner.invoke(app, ["publish", "mirror", "--keys", "keys",
                                 "--timestamp-expiry", "3600", "--json"])
    assert json.loads(result.stdout)["written"][0] == "metadata/2.root.json"
    reg = llmreg.connect(f"file://{tmp_path / 'mirror'}", trusted_root="keys/root/1.root.json",
                         settings=Settings(cache=tmp_path / "cache"))
    assert reg.resolve("chat", env="production").version == 1  # walked root 1 -> 2


def test_errors_are_one_line(tmp_path: Path) -> None:
    runner.invoke(app, ["init"])
    result = runner.invoke(app, ["publish", "mirror", "--keys", "nokeys"])
    assert result.exit_code == 1 and "holds no signed root" in result.stderr
    runner.invoke(app, ["mirror", "keygen", "keys"])
    result = runner.invoke(app, ["mirror", "keygen", "keys"])
    assert result.exit_code == 1 and "already holds mirror keys" in result.stderr
    result = runner.invoke(app, ["mirror", "rotate", "keys", "--role", "boss"])
    assert result.exit_code == 1 and "not a mirror role" in result.stderr
    result = runner.invoke(app, ["--registry", "http://127.0.0.1:9", "publish", "m",
                                 "--keys", "keys"])
    assert result.exit_code == 1 and "llmreg serve --publish DEST" in result.stderr
    result = runner.invoke(app, ["publish", "--help"])
    assert result.exit_code == 0 and "signed static mirror" in result.stdout
