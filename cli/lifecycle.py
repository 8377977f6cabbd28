"""Commands of the promotion flow: evidence, approvals, gates, promotion, rollback,
deprecation, status, policy and audit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

import llmreg
from llmreg.bundle.digest import short
from llmreg.bundle.parse import load_json
from llmreg.errors import GateFailedError, InvalidEvidenceError, InvalidRefError, shown
from llmreg.policy import POLICY_FILENAME, Policy, find_policy, load_policy

from ._common import STATE, connect, handle_errors, note_audit_head
from ._output import JSON_OPTION, Output

eval_app = typer.Typer(help="Attach eval results to a version's digest.", no_args_is_help=True)
shadow_app = typer.Typer(help="Report shadow-deployment metrics.", no_args_is_help=True)
gate_app = typer.Typer(help="Check promotion gates without moving anything.",
                       no_args_is_help=True)
policy_app = typer.Typer(help="Validate and explain the promotion policy.",
                         no_args_is_help=True)

TO = typer.Option("--to", help="Target environment (aliases accepted, e.g. pre-prod).")
REF = typer.Argument(help="name@version, name@sha256:…, or name@<env>.")


def register_commands(app: typer.Typer) -> None:
    """Attach this module's commands and groups to the root app."""
    eval_app.command("attach")(handle_errors(eval_attach))
    shadow_app.command("report")(handle_errors(shadow_report))
    gate_app.command("check")(handle_errors(gate_check))
    policy_app.command("check")(handle_errors(policy_check))
    app.add_typer(eval_app, name="eval")
    app.add_typer(shadow_app, name="shadow")
    app.add_typer(gate_app, name="gate")
    app.add_typer(policy_app, name="policy")
    for command in (approve, promote, rollback, deprecate, archive, restore, status, audit):
        app.command(command.__name__)(handle_errors(command))


def _metrics(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidEvidenceError(f"--metrics {shown(str(path))} cannot be read: "
                                   f"{exc.strerror}") from None
    except ValueError as exc:
        raise InvalidEvidenceError(f"--metrics {shown(str(path))} is not JSON: {exc}") from None
    # parsed as manifests are: a key named twice is refused, never "last one wins"
    data = load_json(text, f"--metrics {shown(str(path))}", error=InvalidEvidenceError)
    if not isinstance(data, dict):
        raise InvalidEvidenceError(f'--metrics {shown(str(path))} must hold a flat JSON object, '
                                   'e.g. {"accuracy": 0.93}')
    return data


def eval_attach(
    ref: Annotated[str, REF],
    suite: Annotated[str, typer.Option("--suite", help="The eval suite's name.")],
    metrics: Annotated[Path, typer.Option("--metrics", help="A flat JSON object of numbers.")],
    report: Annotated[Path | None, typer.Option("--report", help="A report file to store.")
                      ] = None,
    link: Annotated[list[str] | None, typer.Option("--link", help="A URL (repeatable).")
                    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="The harness judged the run failed.")
                      ] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """Attach an eval of SUITE to the digest REF resolves to (not to its version number)."""
    with connect() as reg:
        ev = reg.log_eval(ref, suite=suite, metrics=_metrics(metrics), report=report,
                          links=link, passed=False if failed else None)
        note_audit_head(reg)
    shown = ", ".join(f"{k}={v:g}" for k, v in ev.metrics.items())
    Output(as_json).result(ev, f"attached eval #{ev.id} '{suite}' to {short(ev.digest)}: {shown}")


def shadow_report(
    ref: Annotated[str, REF],
    metrics: Annotated[Path, typer.Option("--metrics", help="A flat JSON object of numbers.")],
    report: Annotated[Path | None, typer.Option("--report", help="A report file to store.")
                      ] = None,
    link: Annotated[list[str] | None, typer.Option("--link", help="A URL (repeatable).")
                    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Attach shadow-deployment metrics (traffic-derived; never counted as an eval)."""
    with connect() as reg:
        ev = reg.log_shadow_metrics(ref, metrics=_metrics(metrics), report=report, links=link)
        note_audit_head(reg)
    shown = ", ".join(f"{k}={v:g}" for k, v in ev.metrics.items())
    Output(as_json).result(ev, f"attached shadow metrics #{ev.id} to {short(ev.digest)}: {shown}")


def approve(
    ref: Annotated[str, REF],
    to: Annotated[str, TO],
    comment: Annotated[str, typer.Option("--comment", help="Why you approve.")] = "",
    as_json: bool = JSON_OPTION,
) -> None:
    """Approve REF for an environment, as LLMREG_USER (or the OS user)."""
    with connect() as reg:
        a = reg.approve(ref, to=to, comment=comment)
        note_audit_head(reg)
    Output(as_json).result(a, f"{a.approver} approved {a.name} ({short(a.digest)}) for {a.env}")


def _print_report(out: Output, report: llmreg.GateReport) -> None:
    head = f"{report.name}@{report.version} ({report.from_status}) -> {report.to_env}"
    out.line(f"[bold]{head}[/]  policy {short(report.policy_digest)}")
    for r in report.results:
        mark = "[green]✓[/]" if r.passed else "[red]✗[/]"
        out.line(f"  {mark} {r.gate}: {r.detail}")


def gate_check(
    ref: Annotated[str, REF],
    to: Annotated[str, TO],
    as_json: bool = JSON_OPTION,
) -> None:
    """Judge every gate of promoting REF, changing nothing. Exit 0 if all pass, else 1."""
    out = Output(as_json)
    with connect() as reg:
        report = reg.check_gates(ref, to=to)
    out.json({**report.model_dump(mode="json"), "passed": report.passed})
    out.view(_print_report, report)
    if not report.passed:
        raise typer.Exit(1)


def promote(
    ref: Annotated[str, REF],
    to: Annotated[str, TO],
    reason: Annotated[str, typer.Option("--reason", help="Why this version, recorded.")],
    expect_current: Annotated[str | None, typer.Option(
        "--expect-current", help="Only if the slot still holds this ref (compare-and-set).")
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Promote REF to an environment if every gate of the policy is met."""
    out = Output(as_json)
    with connect() as reg:
        try:
            event = reg.promote(ref, to=to, reason=reason, expect_current=expect_current)
        except GateFailedError as exc:
            if isinstance(exc.report, llmreg.GateReport):  # scripts get the report
                out.json({**exc.report.model_dump(mode="json"), "passed": False})
            raise
        note_audit_head(reg)
    was = f" (was @{event.from_version})" if event.from_version else ""
    out.result(event, f"promoted {event.name}@{event.to_version} to {event.env}{was}")


def rollback(
    name: Annotated[str, typer.Argument(help="A registered name.")],
    env: Annotated[str, typer.Option("--env", help="The environment to roll back.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, recorded.")],
    to: Annotated[str | None, typer.Option(
        "--to", help="@N: any version the slot held before (default: the one before the "
                     "current one).")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Return an environment slot to a version it held before (by default, the one
    before the current one)."""
    number = None
    if to is not None:
        text = to.removeprefix("@")
        if not (text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) < 2**31):
            raise InvalidRefError(f"--to {shown(to)} is not a version; give @N, e.g. --to @3 "
                                  f"(`llmreg history {name} --env {env}` lists them)")
        number = int(text)
    with connect() as reg:
        event = reg.rollback(name, env=env, reason=reason, to=number)
        note_audit_head(reg)
    Output(as_json).result(event, f"rolled {event.name}/{event.env} back to "
                                  f"@{event.to_version} (was @{event.from_version})")


def deprecate(
    ref: Annotated[str, REF],
    reason: Annotated[str, typer.Option("--reason", help="Why, recorded.")] = "",
    as_json: bool = JSON_OPTION,
) -> None:
    """Mark a version deprecated (it must run nowhere)."""
    with connect() as reg:
        info = reg.deprecate(ref, reason=reason)
        note_audit_head(reg)
    Output(as_json).result(info, f"{info.ref} is deprecated")


def archive(
    ref: Annotated[str, REF],
    reason: Annotated[str, typer.Option("--reason", help="Why, recorded.")] = "",
    as_json: bool = JSON_OPTION,
) -> None:
    """Archive a version: frozen and tagged, never deleted, never promoted again."""
    with connect() as reg:
        info = reg.archive(ref, reason=reason)
        note_audit_head(reg)
    Output(as_json).result(info, f"{info.ref} is archived")


def restore(
    ref: Annotated[str, REF],
    reason: Annotated[str, typer.Option("--reason", help="Why, recorded (required).")] = "",
    as_json: bool = JSON_OPTION,
) -> None:
    """Take an archived version out of the archive (admin): registered again."""
    with connect() as reg:
        info = reg.restore(ref, reason=reason)
        note_audit_head(reg)
    Output(as_json).result(info, f"{info.ref} is restored ({info.status}); moving it still "
                                 "meets the policy's gates")


def status(
    name: Annotated[str | None, typer.Argument(help="Only this name.")] = None,
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """What runs where: name, environment, version, digest, since, by whom, gates passed."""
    with connect() as reg:
        rows = reg.status(name, env)
    Output(as_json).table(
        rows, ("name", "env", "version", "digest", "since", "promoted by", "gates passed",
               "owner"),
        lambda r: (r.name, r.env, r.version, short(r.digest), r.since, r.promoted_by,
                   ", ".join(g.gate for g in r.gates if g.gate != "transition") or "-",
                   r.owner or "-"),
        empty="nothing is promoted yet; see `llmreg promote --help`")


def audit(
    name: Annotated[str | None, typer.Argument(
        help="Only entries about this name; 'verify' checks the hash chain instead.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1,
                                              help="Only the last N entries.")] = None,
    anchor: Annotated[str | None, typer.Option(
        "--head", help="With verify: a head printed earlier (or carried by a webhook "
                       "event); the log must still hold it.")] = None,
    mirror: Annotated[str | None, typer.Option(
        "--mirror", help="With verify: a signed mirror (URL or folder); the log must still "
                         "hold the audit head it signed.")] = None,
    trusted_root: Annotated[Path | None, typer.Option(
        "--trusted-root", help="The mirror's root.json (default: LLMREG_TRUSTED_ROOT).")
                            ] = None,
    env: Annotated[str | None, typer.Option(
        "--env", help="Only entries about this environment, across names (who moved it).")
                   ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """List the audit log, or `llmreg audit verify` to recompute its hash chain."""
    out = Output(as_json)
    with connect() as reg:
        if name == "verify":
            verify_audit(reg, out, anchor, mirror, trusted_root)
            return
        entries = reg.audit(name, limit, env=env)
    out.table(entries, ("#", "when", "who", "action", "target", "env", "detail"),
              lambda e: (e.seq, e.at, e.actor, e.action, e.target, e.env, e.summary()))


def verify_audit(reg: llmreg.Client, out: Output, head: str | None, mirror: str | None,
                 trusted_root: Path | None) -> None:
    """``llmreg audit verify``: the chain, the rows it covers, and each anchor given."""
    from llmreg.errors import AuditChainError

    from ._anchor import signed_head

    anchors: list[tuple[str, str | None]] = []
    if head is not None:
        anchors.append((f"the head given ({short(head)})", head))
    if mirror is not None:
        signed = signed_head(mirror, trusted_root or reg.settings.trusted_root)
        anchors.append((f"the head {signed.url} signed (#{signed.seq})", signed.head))
    # The backend's answer in full (rows checked, rows only counted), not just the count
    # Client.verify_audit returns. One verification per anchor (at least one).
    call = reg._backend.call
    found = None
    for label, value in anchors or [("", None)]:
        try:
            found = call("audit_verify", head=value)
        except AuditChainError as exc:
            if not str(exc).startswith("the audit log does not contain head"):
                raise
            raise AuditChainError(f"checked against {label}: {exc}") from None
    assert found is not None
    text = (f"audit log verified: {found.verified} entries chain correctly, {found.rows} "
            "rows equal their audited fields")
    if found.unrecorded:
        text += (f", {found.unrecorded} rows written before rows were audited (checked "
                 "by counts only)")
    if found.head:
        text += f"; head {found.head}"
    text += ("; anchored to " + " and ".join(label for label, _ in anchors) if anchors
             else "; no anchor (a consistent rewrite of the whole log would pass: give "
                  "--mirror URL or --head HASH)")
    out.result({"verified": found.verified, "head": found.head, "rows": found.rows,
                "unrecorded": found.unrecorded,
                "anchors": [{"what": label, "head": value} for label, value in anchors]},
               text)


def policy_check(
    file: Annotated[Path | None, typer.Argument(
        help=f"Policy file (default: the one in force, e.g. ./{POLICY_FILENAME}).")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate a policy file and print the promotion flow it defines."""
    out = Output(as_json)
    if file is not None:
        policy, source = load_policy(file), str(file)
    else:
        policy, source = _policy_in_force()
    out.result({"source": source, "digest": policy.digest, "flow": policy.describe(),
                "policy": policy.canonical_dict()},
               f"{source}: valid, digest {policy.digest}",
               f"environments: {policy.environment_names()}")
    for line in policy.describe():
        out.line(f"  {line}", markup=False)


def _policy_in_force() -> tuple[Policy, str]:
    settings = llmreg.Settings.from_env()
    if settings.policy is not None:
        return load_policy(settings.policy), str(settings.policy)
    home = Path(STATE.registry) if STATE.registry and "://" not in STATE.registry \
        else llmreg.settings.find_home(Path.cwd())
    if home is not None and (home.parent / POLICY_FILENAME).is_file():
        return find_policy(None, home), str(home.parent / POLICY_FILENAME)
    if Path(POLICY_FILENAME).is_file():
        return load_policy(POLICY_FILENAME), POLICY_FILENAME
    return Policy.default(), "(built-in default policy)"
