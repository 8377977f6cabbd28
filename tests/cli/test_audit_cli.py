"""`llmreg audit verify`: the rows the chain covers, and the anchors it checks against —
a head given by hand, or the head a signed mirror published."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmreg.service import RegistryService
from llmreg.service.mirror.keys import keygen
from llmreg.service.mirror.publisher import publish
from llmreg_cli.main import app
from tests.mirror import register, to_production

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An embedded registry at LLMREG_HOME with a slot in production and a published,
    signed mirror at ``mirror/`` (keys in ``keys/``)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMREG_CACHE", str(tmp_path / "cache"))
    home = tmp_path / "home" / ".llmreg"  # LLMREG_HOME (tests/conftest.py)
    svc = RegistryService.open_home(home)
    to_production(svc, register(svc, 1))
    publish(svc, tmp_path / "mirror", keygen(tmp_path / "keys"))
    svc.close()
    return home


def verify(*args: str) -> object:
    return runner.invoke(app, ["audit", "verify", *args])


def mirror() -> list[str]:
    return ["--mirror", "file://" + str(Path("mirror").resolve()),
            "--trusted-root", "keys/root.json"]


def test_a_mirror_folder_is_read_as_its_file_url(home: Path, tmp_path: Path) -> None:
    done = verify("--mirror", "mirror", "--trusted-root", "keys/root.json")
    assert done.exit_code == 0, done.output
    assert f"anchored to the head file://{tmp_path / 'mirror'} signed (#" in done.stdout


def test_an_intact_registry_verifies_against_the_mirror_it_published(home: Path) -> None:
    plain = verify()
    assert plain.exit_code == 0, plain.output
    assert "entries chain correctly, 7 rows equal their audited fields" in plain.stdout
    assert "no anchor (a consistent rewrite of the whole log would pass" in plain.stdout
    anchored = verify(*mirror(), "--json")
    assert anchored.exit_code == 0, anchored.output
    body = json.loads(anchored.stdout)
    [signed] = body["anchors"]
    assert signed["head"] == body["head"]  # nothing was written after the publish
    assert signed["what"].startswith("the head file://") and signed["what"].endswith(
        f"signed (#{body['verified']})")
    text = verify(*mirror()).stdout
    assert "; anchored to the head file://" in text


def test_a_log_rewritten_consistently_is_caught_by_the_mirrors_head(home: Path) -> None:
    db = home / "registry.db"
    with sqlite3.connect(db) as conn:  # cut the newest entries and the state they record
        newest = conn.execute("SELECT max(seq) FROM audit_log").fetchone()[0]
        conn.execute("DELETE FROM audit_log WHERE seq >= ?", (newest - 1,))
        conn.execute("DELETE FROM slot_events WHERE env = 'production'")
        conn.execute("DELETE FROM slots WHERE env = 'production'")
        conn.execute("UPDATE versions SET status = 'staging'")
        conn.execute("DELETE FROM approvals WHERE approver = 'cy'")
    found = verify()
    # consistent with itself (the last entries were the approval and the promotion)...
    assert found.exit_code == 0, found.output
    gone = verify(*mirror())  # ...but not with the head the mirror signed
    assert gone.exit_code == 1
    assert gone.stderr.startswith("error: checked against the head file://")
    assert f"signed (#{newest}): the audit log does not contain head sha256:" in gone.stderr
    assert gone.stderr.count("\n") == 1


def test_an_edited_slot_is_named_from_the_command_line(home: Path) -> None:
    with sqlite3.connect(home / "registry.db") as conn:
        conn.execute("UPDATE tokens SET role = 'admin'")  # no tokens: changes nothing
        conn.execute("UPDATE slots SET updated_by = 'mallory' WHERE env = 'production'")
    edited = verify(*mirror())
    assert edited.exit_code == 1
    assert ("slots row chat/production: updated_by is 'mallory' but audit entry #"
            in edited.stderr)
    assert edited.stderr.rstrip().endswith("set it back to the audited value")


def test_a_mirror_needs_its_root_and_must_sign_a_head(home: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMREG_TRUSTED_ROOT", raising=False)
    no_root = verify("--mirror", "file://" + str(tmp_path / "mirror"))
    assert no_root.exit_code == 1
    assert "needs the mirror's root: give --trusted-root PATH" in no_root.stderr
    wrong = verify("--mirror", "file://" + str(tmp_path / "mirror"),
                   "--trusted-root", str(tmp_path / "nowhere.json"))
    assert wrong.exit_code == 1 and "cannot be read" in wrong.stderr
    # the signed file is gone from the mirror: it cannot be read, so it is no anchor
    for path in (tmp_path / "mirror" / "targets" / "audit").iterdir():
        path.unlink()
    missing = verify(*mirror())
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: cannot read the mirror file://")
    # a mirror published before the audit head was signed (an older llmreg)
    from llmreg.service.mirror import publisher

    small = publisher._Publisher._small_files
    monkeypatch.setattr(publisher._Publisher, "_small_files", lambda self: {
        k: v for k, v in small(self).items() if k != publisher.AUDIT_HEAD})
    svc = RegistryService.open_home(home)
    publish(svc, tmp_path / "old", keygen(tmp_path / "old-keys"))
    svc.close()
    unsigned = verify("--mirror", "file://" + str(tmp_path / "old"),
                      "--trusted-root", str(tmp_path / "old-keys" / "root.json"))
    assert unsigned.exit_code == 1
    assert unsigned.stderr == (f"error: the mirror file://{tmp_path / 'old'} signs no audit "
                               "head (audit/head.json); publish it again with this version "
                               "of llmreg (`llmreg publish`)\n")


def test_a_forged_head_on_the_mirror_is_refused(home: Path, tmp_path: Path) -> None:
    [signed] = (tmp_path / "mirror" / "targets" / "audit").iterdir()
    head = json.loads(signed.read_text())["head"]  # the same length, another head
    signed.write_text(signed.read_text().replace(head, "sha256:" + "0" * 64))
    forged = verify(*mirror())
    assert forged.exit_code == 1
    assert "failed verification: tampered content" in forged.stderr
