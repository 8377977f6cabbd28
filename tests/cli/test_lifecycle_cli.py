"""The promotion flow from the command line, as a new user runs it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.fixture
def project(run, examples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LLMREG_HOME")
    os.chdir(tmp_path)
    assert run("init").exit_code == 0
    assert (tmp_path / "llmreg-policy.yaml").is_file()
    assert run("register", str(examples / "support-rag"), "-m", "first").exit_code == 0
    # init's policy has require_owner: true
    assert run("owner", "set", "support-rag", "--team", "search",
               "--contact", "search@example.com").exit_code == 0
    (tmp_path / "low.json").write_text('{"accuracy": 0.85}')
    (tmp_path / "good.json").write_text('{"accuracy": 0.93}')
    (tmp_path / "shadow.json").write_text('{"error_rate": 0.004}')
    return tmp_path


def test_scripted_flow_with_the_default_policy(run, project: Path) -> None:
    assert run("promote", "support-rag@1", "--to", "staging", "--reason", "try").exit_code == 0
    refused = run("promote", "support-rag@1", "--to", "production", "--reason", "ship")
    assert refused.exit_code == 1
    assert "no 'regression' eval is attached" in refused.stderr
    assert "0 of 2 approvals" in refused.stderr
    assert run("eval", "attach", "support-rag@1", "--suite", "regression",
               "--metrics", "low.json").exit_code == 0
    check = run("gate", "check", "support-rag@1", "--to", "production", "--json")
    assert check.exit_code == 1
    report = json.loads(check.stdout)
    assert report["passed"] is False
    assert [r["gate"] for r in report["results"] if not r["passed"]] == ["eval:regression",
                                                                         "approvals"]
    assert run("eval", "attach", "support-rag@1", "--suite", "regression",
               "--metrics", "good.json", "--link", "https://ci.example.com/runs/1"
               ).exit_code == 0
    own = run("approve", "support-rag@1", "--to", "production")
    assert own.exit_code == 1 and "ana is the author" in own.stderr
    assert run("approve", "support-rag@1", "--to", "production", user="bo").exit_code == 0
    assert run("approve", "support-rag@1", "--to", "prod", user="cy").exit_code == 0
    assert run("gate", "check", "support-rag@1", "--to", "production").exit_code == 0
    done = run("promote", "support-rag@1", "--to", "production", "--reason", "passes")
    assert done.exit_code == 0, done.output
    status = json.loads(run("status", "--json").stdout)
    prod = [s for s in status if s["env"] == "production"]
    assert len(prod) == 1
    assert prod[0]["name"] == "support-rag" and prod[0]["version"] == 1
    assert prod[0]["digest"] == json.loads(run("show", "support-rag@1", "--json").stdout)["digest"]
    assert {g["gate"] for g in prod[0]["gates"]} == {"transition", "eval:regression", "approvals"}
    assert "support-rag  production" in run("status").stdout.replace("   ", "  ")
    verify = run("audit", "verify")
    assert verify.exit_code == 0 and "entries chain correctly" in verify.stdout


def test_alias_and_unknown_environment(run, project: Path) -> None:
    assert run("promote", "support-rag@1", "--to", "pre-prod", "--reason", "x").exit_code == 0
    assert json.loads(run("status", "--json").stdout)[0]["env"] == "staging"
    before = run("audit", "--json").stdout
    bad = run("promote", "support-rag@1", "--to", "qa", "--reason", "x")
    assert bad.exit_code == 1
    assert "environment 'qa' is not in the policy; use one of staging (pre-prod, preprod), " \
           "shadow, production (prod)" in bad.stderr
    assert run("audit", "--json").stdout == before
    assert len(json.loads(run("status", "--json").stdout)) == 1


def test_shadow_flow(run, project: Path) -> None:
    run("promote", "support-rag@1", "--to", "staging", "--reason", "x")
    run("approve", "support-rag@1", "--to", "shadow", user="bo")
    assert run("promote", "support-rag@1", "--to", "shadow", "--reason", "x").exit_code == 0
    status = run("status", "support-rag", "--json")
    assert [s["env"] for s in json.loads(status.stdout)] == ["staging", "shadow"]
    run("eval", "attach", "support-rag@1", "--suite", "regression", "--metrics", "good.json")
    run("approve", "support-rag@1", "--to", "production", user="bo")
    run("approve", "support-rag@1", "--to", "production", user="cy")
    refused = run("promote", "support-rag@1", "--to", "production", "--reason", "x")
    assert refused.exit_code == 1 and "no shadow metrics" in refused.stderr
    assert run("shadow", "report", "support-rag@1", "--metrics", "shadow.json").exit_code == 0
    assert run("promote", "support-rag@1", "--to", "production", "--reason", "x").exit_code == 0


def test_rollback_history_deprecate_archive(run, project: Path, examples: Path) -> None:
    (examples / "support-rag" / "system.md").write_text("Shorter prompt.\n")
    run("register", str(examples / "support-rag"), "-m", "shorter")
    run("promote", "support-rag@1", "--to", "staging", "--reason", "a")
    stale = run("promote", "support-rag@2", "--to", "staging", "--reason", "b",
                "--expect-current", "support-rag@2")
    assert stale.exit_code == 1 and "holds @1, not @2 as expected" in stale.stderr
    assert run("promote", "support-rag@2", "--to", "staging", "--reason", "b",
               "--expect-current", "support-rag@1").exit_code == 0
    back = run("rollback", "support-rag", "--env", "pre-prod", "--reason", "worse answers")
    assert back.exit_code == 0 and "back to @1" in back.stdout
    moves = json.loads(run("history", "support-rag", "--env", "staging", "--json").stdout)
    assert [(m["action"], m["from_version"], m["to_version"]) for m in moves] == [
        ("promote", None, 1), ("promote", 1, 2), ("rollback", 2, 1)]
    assert moves[-1]["reason"] == "worse answers"
    for bad in ("two", "@0", "@-1", "@" + "9" * 40, "@１"):
        refused = run("rollback", "support-rag", "--env", "staging", "--reason", "x",
                      "--to", bad)
        assert refused.exit_code == 1 and refused.stderr.count("\n") == 1, bad
        assert "is not a version; give @N, e.g. --to @3" in refused.stderr, bad
    never = run("rollback", "support-rag", "--env", "staging", "--reason", "x", "--to", "@7")
    assert never.exit_code == 1 and "staging never held support-rag@7" in never.stderr
    forward = run("rollback", "support-rag", "--env", "staging", "--reason", "again",
                  "--to", "@2")
    assert forward.exit_code == 0 and "back to @2 (was @1)" in forward.stdout
    assert run("rollback", "support-rag", "--env", "staging", "--reason", "x", "--to",
               "1").exit_code == 0  # N or @N
    busy = run("archive", "support-rag@1")
    assert busy.exit_code == 1 and "runs in staging" in busy.stderr
    assert run("deprecate", "support-rag@2", "--reason", "superseded").exit_code == 0
    assert run("archive", "support-rag@2").exit_code == 0
    frozen = run("promote", "support-rag@2", "--to", "staging", "--reason", "x")
    assert frozen.exit_code == 1 and "archived" in frozen.stderr
    actions = [e["action"] for e in json.loads(run("audit", "support-rag", "--json").stdout)]
    assert actions == ["register", "owner", "register", "promote", "promote", "rollback",
                       "rollback", "rollback", "deprecate", "archive"]
    # Out of the archive, registered again (it was deprecated), and movable again through the gates.
    no_reason = run("restore", "support-rag@2")
    assert no_reason.exit_code == 1 and no_reason.stderr.count("\n") == 1
    assert "--reason is empty" in no_reason.stderr
    back = run("restore", "support-rag@2", "--reason", "incident 42")
    assert back.exit_code == 0, back.stderr
    assert "support-rag@2 is restored (registered); moving it still meets the policy's gates" \
        in back.stdout
    again = run("restore", "support-rag@2", "--reason", "twice")
    assert again.exit_code == 1
    assert "support-rag@2 is registered, not archived; only an archived version can be " \
        "restored" in again.stderr
    moved = run("promote", "support-rag@2", "--to", "staging", "--reason", "x")
    assert moved.exit_code == 0, moved.stderr
    last = json.loads(run("audit", "support-rag", "--limit", "2", "--json").stdout)
    assert [(e["action"], e["detail"].get("to")) for e in last] == [
        ("restore", "registered"), ("promote", None)]


def test_policy_check(run, project: Path) -> None:
    ok = run("policy", "check")
    assert ok.exit_code == 0
    assert "staging -> production: eval 'regression' with accuracy >= 0.9" in ok.stdout
    (project / "bad.yaml").write_text("version: 1\nenvironments: {prod: {}}\ntransitions:\n"
                                      "  - {from: registered, to: qa}\n")
    bad = run("policy", "check", "bad.yaml")
    assert bad.exit_code == 1
    assert "bad.yaml line 4: transitions[0].to: 'qa' is not an environment" in bad.stderr


def test_bad_evidence_input(run, project: Path) -> None:
    (project / "bad.json").write_text('{"accuracy": "high"}')
    bad = run("eval", "attach", "support-rag@1", "--suite", "regression", "--metrics",
              "bad.json")
    assert bad.exit_code == 1 and "metrics['accuracy'] = 'high' is not a number" in bad.stderr
    missing = run("eval", "attach", "support-rag@1", "--suite", "regression", "--metrics",
                  "nope.json")
    assert missing.exit_code == 1 and "cannot be read" in missing.stderr
    assert json.loads(run("audit", "--json").stdout)[-1]["action"] == "owner"  # the fixture's


def test_audit_verify_names_an_edited_row(run, project: Path) -> None:
    import sqlite3

    run("promote", "support-rag@1", "--to", "staging", "--reason", "x")
    assert run("audit", "verify").exit_code == 0
    with sqlite3.connect(project / ".llmreg" / "registry.db") as conn:
        conn.execute("UPDATE audit_log SET detail = '{\"reason\": \"edited\"}' WHERE seq = 4")
    broken = run("audit", "verify")
    assert broken.exit_code == 1
    assert "audit entry #4 (promote support-rag@1 by ana) was altered" in broken.stderr


def test_every_write_prints_the_audit_head_and_verify_holds_it(run, project: Path) -> None:
    import re
    import sqlite3

    promoted = run("promote", "support-rag@1", "--to", "staging", "--reason", "x")
    assert promoted.exit_code == 0
    assert promoted.stdout == "promoted support-rag@1 to staging\n"  # the result stays alone
    [head] = re.findall(r"audit head (sha256:[0-9a-f]{64})", promoted.stderr)
    assert run("audit", "verify", "--head", head).exit_code == 0
    approved = run("approve", "support-rag@1", "--to", "production", user="bo")
    [newest] = re.findall(r"audit head (sha256:[0-9a-f]{64})", approved.stderr)
    db = project / ".llmreg" / "registry.db"
    with sqlite3.connect(db) as conn:  # cut the newest entry
        conn.execute("DELETE FROM audit_log WHERE hash = ?", (newest,))
    cut = run("audit", "verify")
    assert cut.exit_code == 1
    assert "records 0 approval entries but the registry holds 1 approvals" in cut.stderr
    with sqlite3.connect(db) as conn:  # cut the approval too: the log agrees with the state
        conn.execute("DELETE FROM approvals")
    assert run("audit", "verify").exit_code == 0
    gone = run("audit", "verify", "--head", newest)  # but not with the head noted earlier
    assert gone.exit_code == 1 and f"does not contain head {newest}" in gone.stderr


def test_every_lifecycle_command_speaks_json(run, project: Path, examples: Path) -> None:
    empty = run("status")
    assert empty.exit_code == 0
    assert empty.stdout.strip() == "nothing is promoted yet; see `llmreg promote --help`"
    assert json.loads(run("status", "--json").stdout) == []
    staged = json.loads(run("promote", "support-rag@1", "--to", "staging", "--reason", "try",
                            "--json").stdout)
    assert (staged["action"], staged["env"], staged["to_version"]) == ("promote", "staging", 1)
    refused = run("promote", "support-rag@1", "--to", "production", "--reason", "x", "--json")
    assert refused.exit_code == 1
    report = json.loads(refused.stdout)
    assert report["passed"] is False and "0 of 2 approvals" in refused.stderr
    ev = json.loads(run("eval", "attach", "support-rag@1", "--suite", "regression",
                        "--metrics", "good.json", "--json").stdout)
    assert (ev["type"], ev["suite"], ev["metrics"]) == ("eval", "regression", {"accuracy": 0.93})
    shadow = json.loads(run("shadow", "report", "support-rag@1", "--metrics", "shadow.json",
                            "--json").stdout)
    assert (shadow["type"], shadow["metrics"]) == ("shadow-metrics", {"error_rate": 0.004})
    approval = json.loads(run("approve", "support-rag@1", "--to", "production", "--json",
                              user="bo").stdout)
    assert (approval["approver"], approval["env"]) == ("bo", "production")
    (examples / "support-rag" / "system.md").write_text("Shorter prompt.\n")
    assert run("register", str(examples / "support-rag"), "-m", "shorter").exit_code == 0
    run("promote", "support-rag@2", "--to", "staging", "--reason", "b")
    back = json.loads(run("rollback", "support-rag", "--env", "staging", "--reason", "worse",
                          "--json").stdout)
    assert (back["action"], back["from_version"], back["to_version"]) == ("rollback", 2, 1)
    deprecated = json.loads(run("deprecate", "support-rag@2", "--reason", "old",
                                "--json").stdout)
    assert (deprecated["version"], deprecated["status"]) == (2, "deprecated")
    archived = json.loads(run("archive", "support-rag@2", "--json").stdout)
    assert (archived["version"], archived["status"]) == (2, "archived")
    verified = json.loads(run("audit", "verify", "--json").stdout)
    entries = json.loads(run("audit", "--json").stdout)
    assert verified == {"verified": len(entries), "head": entries[-1]["hash"], "rows": 8,
                        "unrecorded": 0, "anchors": []}  # versions 2, evidence 2, slot,
    # approval, owner, policy
    last_two = json.loads(run("audit", "--limit", "2", "--json").stdout)
    assert [e["action"] for e in last_two] == ["deprecate", "archive"]
    table = [" ".join(line.split()) for line in run("audit", "support-rag").stdout.splitlines()]
    assert table[0] == "# when who action target env detail"
    assert [row.split()[5] for row in table[1:]] == [e["action"] for e in entries
                                                     if e["target"] and "support-rag" in
                                                     e["target"]]
    policy = json.loads(run("policy", "check", "--json").stdout)
    assert policy["source"].endswith("llmreg-policy.yaml") and policy["digest"].startswith(
        "sha256:")
