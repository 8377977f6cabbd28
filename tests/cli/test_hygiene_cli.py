"""Owners, deprecation, jobs, served, alerts, env list and drift from the command line,
as a new user runs them (the Must-show steps of issue 10)."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

import llmreg
from llmreg.db.models import utcnow
from tests.conftest import EXAMPLES


@pytest.fixture
def project(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LLMREG_HOME")
    os.chdir(tmp_path)
    assert run("init").exit_code == 0
    policy = tmp_path / "llmreg-policy.yaml"
    policy.write_text(policy.read_text().replace("keep_last: 10", "keep_last: 3"))
    (tmp_path / "good.json").write_text('{"accuracy": 0.93}')
    return tmp_path


def version(project: Path, name: str, i: int, model: str = "gpt-4o-2024-08-06") -> None:
    folder = project / "work" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "llmreg.yaml").write_text(
        f"name: {name}\nmodel: {{provider: openai, id: {model}}}\n"
        f"system_prompt: 'You help, take {i}.'\ntemplate: {{source: 'Q: {{{{ q }}}}', "
        "variables: [q]}\n")


def register(run, project: Path, name: str, i: int, model: str = "gpt-4o-2024-08-06") -> None:
    version(project, name, i, model)
    result = run("register", str(project / "work" / name), "-m", f"take {i}")
    assert result.exit_code == 0, result.stderr


def to_production(run, ref: str) -> None:
    assert run("eval", "attach", ref, "--suite", "regression", "--metrics", "good.json"
               ).exit_code == 0
    assert run("approve", ref, "--to", "production", user="bo").exit_code == 0
    assert run("approve", ref, "--to", "production", user="cy").exit_code == 0
    result = run("promote", ref, "--to", "production", "--reason", "ship")
    assert result.exit_code == 0, result.stderr


def test_must_show_keep_last_three_of_ten(run, project: Path) -> None:
    for i in range(1, 11):
        register(run, project, "chat", i)
    refused = run("promote", "chat@2", "--to", "staging", "--reason", "try")
    assert refused.exit_code == 1 and "has no owner" in refused.stderr
    bad = run("owner", "set", "chat", "--team", "search", "--contact", "call bob")
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1
    assert "--contact 'call bob' is not an email address" in bad.stderr
    ok = run("owner", "set", "chat", "--team", "search", "--contact", "search@example.com")
    assert ok.exit_code == 0 and "audit head" in ok.stderr
    assert "search" in run("owner", "show", "chat").stdout
    assert "search@example.com" in run("owner", "list").stdout
    assert run("promote", "chat@2", "--to", "staging", "--reason", "try").exit_code == 0
    to_production(run, "chat@2")
    assert run("promote", "chat@9", "--to", "staging", "--reason", "next").exit_code == 0
    plan = run("deprecation", "plan")
    assert plan.exit_code == 0
    listed = [line.split()[1] for line in plan.stdout.splitlines()
              if line.startswith("  archive")]
    assert listed == [f"chat@{n}" for n in (1, 3, 4, 5, 6, 7)]
    assert "also kept: 2 by held, 2 by keep_last (--json lists each)" in plan.stdout
    assert "not among the last 3 versions (@8-@10)" in plan.stdout
    data = json.loads(run("deprecation", "plan", "--json").stdout)
    assert [a["version"] for a in data["actions"]] == [1, 3, 4, 5, 6, 7]
    done = run("deprecation", "run")
    assert done.exit_code == 0 and "did 6 action(s)" in done.stdout
    again = run("deprecation", "run")
    assert again.exit_code == 0 and "nothing to do" in again.stdout
    ev = run("eval", "attach", "chat@4", "--suite", "regression", "--metrics", "good.json")
    assert ev.exit_code == 1 and "chat@4 is archived (frozen)" in ev.stderr
    pr = run("promote", "chat@4", "--to", "staging", "--reason", "revive")
    assert pr.exit_code == 1 and "archived (frozen) and cannot be promoted" in pr.stderr
    shown = run("show", "chat@4")
    assert shown.exit_code == 0 and re.search(r"status +archived by keep_last", shown.stdout)
    assert re.search(r"owner +search", shown.stdout)
    shown_json = json.loads(run("show", "chat@4", "--json").stdout)
    assert shown_json["retired"]["rule"] == "keep_last" and shown_json["owner"]["team"]
    pulled = run("pull", "chat@4", str(project / "pulled"))
    assert pulled.exit_code == 0, pulled.stderr
    assert run("audit", "verify").exit_code == 0


def test_alerts_check_served_jobs_env_and_drift(run, project: Path) -> None:
    for name, model in (("chat", "gpt-4o-2024-05-13"), ("summary", "gpt-4o-2024-05-13"),
                        ("triage", "gpt-4o-2024-08-06")):
        register(run, project, name, 1, model)
        assert run("owner", "set", name, "--team", "ops", "--contact",
                   "https://chat.example.com/ops").exit_code == 0
        assert run("promote", f"{name}@1", "--to", "staging", "--reason", "x").exit_code == 0
        to_production(run, f"{name}@1")
        register(run, project, name, 2, "gpt-4o-2024-08-06")
        assert run("promote", f"{name}@2", "--to", "staging", "--reason", "x").exit_code == 0
    drift = run("drift", "staging", "production")
    assert drift.exit_code == 0
    for name in ("chat", "summary", "triage"):
        line = next(line for line in drift.stdout.splitlines() if line.startswith(f" {name}"))
        assert "system_prompt: +1 -1 lines" in line, line
    assert "model: pin gpt-4o-2024-05-13 -> gpt-4o-2024-08-06" in drift.stdout
    assert run("drift", "staging", "production", "--exit-code").exit_code == 1
    items = json.loads(run("drift", "staging", "prod", "--json").stdout)
    assert {i["state"] for i in items} == {"differs"}
    unknown = run("drift", "staging", "live")
    assert unknown.exit_code == 1 and "'live' is not in the policy" in unknown.stderr
    envs = json.loads(run("env", "list", "--json").stdout)
    assert [(e["env"], e["names"]) for e in envs] == [("staging", 3), ("shadow", 0),
                                                      ("production", 3)]
    assert "pre-prod, preprod" in run("env", "list").stdout
    assert run("alerts", "--check").exit_code == 0
    assert "no open alerts" in run("alerts").stdout
    jobs = run("jobs", "run", "--json")
    assert {r["job"] for r in json.loads(jobs.stdout)} == {"deprecation", "alerts",
                                                           "deliveries"}
    assert "deliveries" in run("jobs", "run").stdout  # the periodic ones already ran
    with llmreg.connect() as reg:  # 31 days later, through the service's injected clock
        svc = reg._backend.service  # type: ignore[attr-defined]
        svc.alerts.check(now=utcnow() + timedelta(days=31))
    listed = json.loads(run("alerts", "--json").stdout)
    assert len(listed) == 3 and {a["team"] for a in listed} == {"ops"}
    assert run("alerts", "--check").exit_code == 1
    for alert in listed:
        assert run("alerts", "ack", str(alert["id"]), "--reason", "paused").exit_code == 0
    assert run("alerts", "--check").exit_code == 0
    assert len(json.loads(run("alerts", "--all", "--json").stdout)) == 3
    served = run("served", "chat", "--env", "production")
    assert served.exit_code == 0 and "never" in served.stdout
    who = run("audit", "--env", "production", "--json")
    assert {e["action"] for e in json.loads(who.stdout)} >= {"promote", "alert-open"}
    assert EXAMPLES.is_dir()
