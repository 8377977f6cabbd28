"""`llmreg webhook …` as a user runs it: one-line errors that change nothing, the secret
printed once, test sends, deliveries and redelivery."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from standardwebhooks import Webhook as Verifier
from typer.testing import CliRunner

import llmreg
from llmreg.policy import DEFAULT_POLICY_YAML
from llmreg_cli.main import app
from tests.receiver import Receiver


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), prog_name="llmreg")


@pytest.fixture
def home() -> Path:
    path = Path(os.environ["LLMREG_HOME"])
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "llmreg-policy.yaml").write_text(
        DEFAULT_POLICY_YAML.replace("allow_hosts: []", "allow_hosts: [127.0.0.1]"))
    with llmreg.connect(path, create=True):  # only init (or create=True) makes a registry
        pass
    return path


@pytest.mark.parametrize(("args", "error"), [
    (["http://127.0.0.1:9/x", "--events", "promotion,deploy"],
     "error: --events: 'deploy' is not an event; use one or more of registration,promotion,"
     "rollback,gate_failed,approval,archive,owner_change,stale_production"),
    (["http://127.0.0.1:9/x", "--events", ","],
     "error: --events is empty; use one or more of registration,"),
    (["http://10.20.30.40/hook", "--events", "promotion"],
     "error: url 'http://10.20.30.40/hook': host 10.20.30.40 is a private address "
     "(10.20.30.40); webhooks may not reach it unless the policy's webhooks.allow_hosts "
     "lists '10.20.30.40'"),
    (["http://[fd00::1]/hook", "--events", "promotion"],
     "error: url 'http://[fd00::1]/hook': host fd00::1 is a private (unique local) "
     "address"),
    (["http://127.0.0.1:9/x", "--events", "promotion", "--format", "teams"],
     "error: format 'teams' is not one of cloudevents, slack; use --format cloudevents or "
     "--format slack"),
])
def test_bad_input_is_one_line_and_changes_nothing(home: Path, args: list[str],
                                                   error: str) -> None:
    result = run("webhook", "add", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.strip().startswith(error), result.stderr
    listed = run("webhook", "list", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []


def test_add_test_deliveries_redeliver_remove(home: Path, receiver: Receiver,
                                              examples: Path) -> None:
    added = run("webhook", "add", receiver.url, "--events", "registration,promotion")
    assert added.exit_code == 0, added.stderr
    lines = added.stdout.splitlines()
    assert lines[0] == (f"added webhook 1 (cloudevents: registration, promotion) -> "
                        f"{receiver.url}; its signing secret, shown only now:")
    secret = lines[1]
    assert secret.startswith("whsec_") and "audit head" in added.stderr
    assert secret not in run("webhook", "list").stdout
    assert "registration,promotion" in run("webhook", "list").stdout

    tested = run("webhook", "test", "1")
    assert tested.exit_code == 0, tested.stderr
    assert tested.stdout.startswith("delivered a test event to webhook 1 (HTTP 204, webhook-id")
    got = receiver.received()[0]
    assert Verifier(secret).verify(got.body, got.headers)["type"] == "dev.llmreg.test"

    assert run("register", str(examples / "support-rag"), "-m", "first").exit_code == 0
    receiver.status = 500
    from llmreg import connect

    with connect() as reg:
        reg._backend.service.notify.deliver_due()  # type: ignore[attr-defined]
    failed = run("webhook", "deliveries", "--failed", "--json")
    (row,) = json.loads(failed.stdout)
    assert (row["event"], row["status"], row["last_error"]) == ("registration", "pending",
                                                                "HTTP 500: ok")
    table = run("webhook", "deliveries")
    assert "HTTP 500: ok" in table.stdout and "registration" in table.stdout

    receiver.status = 204
    again = run("webhook", "redeliver", str(row["id"]))
    assert again.exit_code == 0
    assert again.stdout.strip() == f"queued delivery {row['id']} again (webhook-id " \
                                   f"{row['message_id']})"
    with connect() as reg:
        reg._backend.service.notify.deliver_due()  # type: ignore[attr-defined]
    assert run("webhook", "deliveries", "--failed").stdout.strip() == "no failed deliveries"
    assert len({g.headers["webhook-id"] for g in receiver.received()[1:]}) == 1

    receiver.status = 410
    refused = run("webhook", "test", "1")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == "error: webhook 1 did not take the test event: HTTP 410: ok"

    removed = run("webhook", "remove", "1")
    assert removed.exit_code == 0 and removed.stdout.startswith("removed webhook 1 (")
    assert run("webhook", "list").stdout.strip() == (
        "no webhooks; add one with `llmreg webhook add URL --events …`")
    missing = run("webhook", "remove", "1")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "error: no webhook 1; see `llmreg webhook list`"
    assert run("webhook", "deliveries", "--json", "--limit", "1").exit_code == 0


def test_help_names_every_command() -> None:
    result = run("webhook", "--help")
    for command in ("add", "list", "remove", "test", "deliveries", "redeliver"):
        assert command in result.stdout
