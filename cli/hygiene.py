"""Commands that keep the registry clean and speak up: owners, the deprecation policy,
scheduled jobs, served traffic, alerts, environments and drift."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer

from llmreg.bundle.digest import short
from llmreg.policy import JobPeriods
from llmreg.types import DeprecationReport

from ._common import connect, handle_errors, note_audit_head, one_of
from ._output import JSON_OPTION, Output

JOBS = tuple(JobPeriods.model_fields)  # the scheduled jobs: one period each in the policy

owner_app = typer.Typer(help="Who owns each name, and how to reach them.",
                        no_args_is_help=True)
deprecation_app = typer.Typer(help="The policy's deprecation rules: plan, then run.",
                              no_args_is_help=True)
jobs_app = typer.Typer(help=f"Scheduled jobs ({', '.join(JOBS)}).",
                       no_args_is_help=True)
alerts_app = typer.Typer(help="Alerts addressed to owners (stale production slots).",
                         invoke_without_command=True)
env_app = typer.Typer(help="The environments of the policy.", no_args_is_help=True)


def register_commands(app: typer.Typer) -> None:
    """Attach this module's commands and groups to the root app."""
    owner_app.command("set")(handle_errors(owner_set))
    owner_app.command("show")(handle_errors(owner_show))
    owner_app.command("list")(handle_errors(owner_list))
    deprecation_app.command("plan")(handle_errors(deprecation_plan))
    deprecation_app.command("run")(handle_errors(deprecation_run))
    jobs_app.command("run")(handle_errors(jobs_run))
    alerts_app.callback()(handle_errors(alerts))
    alerts_app.command("ack")(handle_errors(alerts_ack))
    env_app.command("list")(handle_errors(env_list))
    app.add_typer(owner_app, name="owner")
    app.add_typer(deprecation_app, name="deprecation")
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(env_app, name="env")
    app.command("served")(handle_errors(served))
    app.command("drift")(handle_errors(drift))


NAME = typer.Argument(help="A registered name.")


def owner_set(
    name: Annotated[str, NAME],
    team: Annotated[str, typer.Option("--team", help="The owning team.")],
    contact: Annotated[list[str], typer.Option(
        "--contact", help="An email address, an http(s) URL or webhook:ID (repeatable).")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Set the team that owns NAME and how to reach it (audited)."""
    with connect() as reg:
        info = reg.set_owner(name, team=team, contacts=contact)
        note_audit_head(reg)
    Output(as_json).result(info, f"{info.name} is owned by {info.team} "
                                 f"({', '.join(info.contacts)})")


def owner_show(name: Annotated[str, NAME], as_json: bool = JSON_OPTION) -> None:
    """Show who owns NAME."""
    with connect() as reg:
        info = reg.owner(name)
    out = Output(as_json)
    out.json({"name": name, "owner": info})
    out.line(f"{name}: {info.team} ({', '.join(info.contacts)}), set by {info.updated_by}"
             if info else f"{name} has no owner; see `llmreg owner set --help`", markup=False)


def owner_list(as_json: bool = JSON_OPTION) -> None:
    """List every name's owner."""
    with connect() as reg:
        owners = reg.owners()
    Output(as_json).table(owners, ("name", "team", "contacts", "since", "by"),
                          lambda o: (o.name, o.team, ", ".join(o.contacts), o.updated_at,
                                     o.updated_by),
                          empty="no owners yet; see `llmreg owner set --help`")


# Rules that keep a version keep_last would otherwise archive: each such version is
# listed with its reason; the versions kept because an environment holds them or they
# are among the newest are counted.
_ROLLBACK_RULES = ("keep_rollback", "archive_grace_days", "restored")


def _print_plan(out: Output, applied: bool, report: DeprecationReport) -> None:
    verb = "did" if applied else "would do"
    digest = short(report.policy_digest)
    if not report.actions:
        out.line(f"nothing to do under policy {digest}")
    else:
        out.line(f"the deprecation policy ({digest}) {verb} {len(report.actions)} action(s):")
    for a in report.actions:
        out.line(f"  {a.action} {a.name}@{a.version}  [{a.rule}] {a.reason}", markup=False)
    for a in report.skipped:
        out.line(f"  {a.action} {a.name}@{a.version}  [{a.rule}] {a.reason}", markup=False)
    for k in (k for k in report.kept if k.rule in _ROLLBACK_RULES):
        out.line(f"  keep {k.name}@{k.version}  [{k.rule}] {k.reason}", markup=False)
    rest = Counter(k.rule for k in report.kept if k.rule not in _ROLLBACK_RULES)
    if rest:
        out.line("  also kept: " + ", ".join(f"{n} by {rule}" for rule, n in sorted(rest.items()))
                 + " (--json lists each)", markup=False)


def deprecation_plan(as_json: bool = JSON_OPTION) -> None:
    """Show what the deprecation rules would do now, and why (changes nothing)."""
    with connect() as reg:
        report = reg.deprecation_plan()
    out = Output(as_json)
    out.json(report)
    out.view(_print_plan, False, report)


def deprecation_run(as_json: bool = JSON_OPTION) -> None:
    """Apply the deprecation rules now (idempotent; concurrent runs act once)."""
    with connect() as reg:
        report = reg.deprecation_run()
        if report.actions:
            note_audit_head(reg)
    out = Output(as_json)
    out.json(report)
    out.view(_print_plan, True, report)


def jobs_run(
    job: Annotated[list[str] | None, typer.Option(
        "--job", help=f"Only this job: {one_of(JOBS)} (repeatable).")
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run every scheduled job that is due (the cron entry of an embedded registry)."""
    with connect() as reg:
        runs = reg.run_jobs(job)
    Output(as_json).table(runs, ("job", "period", "runner", "result"),
                          lambda r: (r.job, r.period or "continuous", r.runner,
                                     ", ".join(f"{k}={v}" for k, v in r.result.items())),
                          empty="no job was due (each runs once per period)")


def served(
    name: Annotated[str | None, typer.Argument(help="Only this name.")] = None,
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Per slot and version: when it last served, requests in the last day and week."""
    with connect() as reg:
        rows = reg.served(name, env)
    Output(as_json).table(
        rows, ("name", "env", "version", "digest", "holds slot", "last served", "day",
               "week"),
        lambda r: (r.name, r.env, r.version, short(r.digest), "yes" if r.in_slot else "no",
                   r.last_served or "never", r.day, r.week),
        empty="nothing is promoted or served yet")


def alerts(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option(
        "--check", help="Exit 1 while any alert is open (for cron and CI).")] = False,
    include_closed: Annotated[bool, typer.Option("--all", help="Include closed alerts.")
                              ] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """List alerts (open and acknowledged); `llmreg alerts ack ID --reason …`."""
    if ctx.invoked_subcommand is not None:
        return
    with connect() as reg:
        rows = reg.alerts(include_closed=include_closed)
    out = Output(as_json)
    out.table(rows, ("id", "state", "name", "env", "version", "owner", "opened", "reminders",
                     "message"),
              lambda a: (a.id, a.state, a.name, a.env, a.version, a.team or "(no owner)",
                         a.opened_at, a.reminders, a.message),
              empty="no open alerts")
    if check and any(a.state == "open" for a in rows):
        raise typer.Exit(1)


def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="The alert's id (see `llmreg alerts`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why, recorded.")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Acknowledge an open alert: recorded with the reason, not reminded again."""
    with connect() as reg:
        info = reg.ack_alert(alert_id, reason=reason)
        note_audit_head(reg)
    Output(as_json).result(info, f"alert #{info.id} ({info.name}/{info.env}) acknowledged")


def env_list(as_json: bool = JSON_OPTION) -> None:
    """List each environment, its aliases and how many names it holds."""
    with connect() as reg:
        envs = reg.environments()
    Output(as_json).table(envs, ("env", "aliases", "names"),
                          lambda e: (e.env, ", ".join(e.aliases) or "-", e.names))


def drift(
    a: Annotated[str, typer.Argument(help="An environment, e.g. staging.")],
    b: Annotated[str, typer.Argument(help="Another environment, e.g. production.")],
    exit_code: Annotated[bool, typer.Option(
        "--exit-code", help="Exit 1 when any name differs or is in only one of them.")
    ] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """For every name: what A and B hold and how they differ (model pin, prompt, …)."""
    with connect() as reg:
        items = reg.drift(a, b)
    Output(as_json).table(items, ("name", a, b, "drift"),
                          lambda d: (d.name, f"@{d.a_version}" if d.a_version else "-",
                                     f"@{d.b_version}" if d.b_version else "-", d.summary),
                          empty=f"neither {a} nor {b} holds anything")
    if exit_code and any(d.state != "same" for d in items):
        raise typer.Exit(1)
