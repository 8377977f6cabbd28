"""``llmreg whoami``, ``llmreg evidence REF``, and the registry's side of ``show``: where a
version runs now, its evidence and its approvals."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

import typer

import llmreg
from llmreg.bundle.digest import short

from ._common import STATE, connect, handle_errors
from ._output import JSON_OPTION, Output


def register_commands(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    for command in (whoami, evidence):
        app.command(command.__name__)(handle_errors(command))


def whoami(as_json: bool = JSON_OPTION) -> None:
    """Show who you are to the registry (the identity on every write), your roles, and
    on a server the token you use and when it expires."""
    with connect() as reg:
        actor = reg.actor
        where = STATE.registry or _where(reg)
    roles = sorted(actor.roles) if actor.roles is not None else None
    out = Output(as_json)
    data = {"name": actor.name, "roles": roles, "registry": where,
            "token_id": actor.token_id, "teams": actor.teams,
            "expires_at": actor.expires_at.isoformat() if actor.expires_at else None}
    if roles is None:
        out.result(data, f"{actor.name}  roles: all (embedded)  registry: {where}",
                   "the embedded registry trusts LLMREG_USER (or your OS user) with every "
                   "role: whoever can write its folder is trusted; tokens apply on a server")
        return
    if actor.token_id is None:
        token = "token: none (reads are open)"
    elif actor.expires_at is None:
        token = f"token: {actor.token_id}, never expires"
    else:
        token = (f"token: {actor.token_id}, expires at "
                 f"{actor.expires_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}")
    out.result(data, f"{actor.name}  {_teams(actor.teams, roles)}  {token}  registry: {where}")


def _teams(teams: dict[str, str] | None, roles: list[str]) -> str:
    """``teams: search publisher; reader elsewhere`` (or ``roles: …`` for an unscoped
    token, whose roles apply to every name)."""
    if teams is None:
        return f"roles: {', '.join(roles)}"
    named = {t: r for t, r in teams.items() if t != "*"}
    if not named:  # a reader reads, and an admin acts, on every name anyway
        scoped = teams.get("*") in ("publisher", "approver")
        return f"roles: {', '.join(roles)}" + (" (on every name: unscoped)" if scoped else "")
    listed = ", ".join(f"{t} {r}" for t, r in sorted(named.items()))
    return f"teams: {listed}; {teams.get('*', 'reader')} elsewhere"


def _where(reg: Any) -> str:
    backend = getattr(reg, "_backend", None)
    home = getattr(backend, "home", None)
    return str(home) if home is not None else str(getattr(reg, "url", "?"))


def evidence(
    ref: Annotated[str, typer.Argument(help="name@version, name@env or a digest.")],
    as_json: bool = JSON_OPTION,
) -> None:
    """List the evals and shadow metrics attached to a version's digest."""
    with connect() as reg:
        items = reg.evidence(ref)
    Output(as_json).table(
        items, ("id", "type", "suite", "metrics", "passed", "report", "by", "at"),
        lambda e: (e.id, e.type, e.suite,
                   ", ".join(f"{k}={v:g}" for k, v in sorted(e.metrics.items())),
                   "-" if e.passed is None else "yes" if e.passed else "no",
                   short(e.report_digest) if e.report_digest else "-", e.created_by,
                   e.created_at),
        empty=f"no evidence is attached to {ref}; see `llmreg eval attach --help`")


def registry_sections(reg: Any, bundle: llmreg.Bundle) -> dict[str, Any]:
    """For ``show``: where the version runs now, its evidence and approvals.

    >>> registry_sections(None, llmreg.Bundle.from_dict({"model": {"provider": "openai",
    ...     "id": "gpt-4o-2024-08-06"}, "template": {"source": "{{ q }}", "variables": ["q"]}}))
    {}
    """
    if bundle.name is None or bundle.version is None or reg is None:
        return {}
    # The registry's record (the read-only path's Bundle.info may lack the archive tag).
    info = reg.info(f"{bundle.name}@{bundle.version}")
    envs = [s.env for s in reg.status(bundle.name) if s.version == bundle.version]
    label = f"{bundle.name}@{bundle.version}"
    approvals = [
        {"env": a.env, "approver": a.approver, "comment": a.comment,
         "at": a.created_at.isoformat()}
        for env in reg.environments() for a in reg.approvals(label, env.env)]
    owner = reg.owner(bundle.name)
    return {
        "status": info.status if info is not None else None,
        "retired": ({"at": info.retired_at.isoformat(), "rule": info.retire_rule,
                     "policy": info.retire_policy}
                    if info is not None and info.retired_at else None),
        "owner": owner.model_dump(mode="json") if owner is not None else None,
        "environments": envs,
        "evidence": [e.model_dump(mode="json") for e in reg.evidence(label)],
        "approvals": approvals,
    }


def print_registry_sections(out: Output, sections: dict[str, Any]) -> None:
    """The lines ``show`` prints after the bundle's own sections."""
    if not sections:
        return
    owner, retired = sections["owner"], sections["retired"]
    out.line(f"{'owner':<15}{owner['team']} ({', '.join(owner['contacts'])})" if owner
             else f"{'owner':<15}none; set one with `llmreg owner set NAME --team … --contact …`",
             markup=False)
    tag = (f" by {retired['rule']} on {retired['at'][:16].replace('T', ' ')} UTC under policy "
           f"{retired['policy'][:19]}" if retired else "")
    out.line(f"{'status':<15}{sections['status']}{tag}", markup=False)
    envs = sections["environments"]
    out.line(f"{'runs in':<15}" + (", ".join(envs) if envs
                                   else f"nowhere now (status {sections['status']})"))
    for e in sections["evidence"]:
        metrics = ", ".join(f"{k}={v:g}" for k, v in sorted(e["metrics"].items()))
        out.line(f"{'evidence':<15}#{e['id']} {e['type']} {e['suite']}: {metrics}"
                 f"  by {e['created_by']}", markup=False)
    if not sections["evidence"]:
        out.line(f"{'evidence':<15}none")
    for a in sections["approvals"]:
        out.line(f"{'approval':<15}{a['env']} by {a['approver']}"
                 + (f": {a['comment']}" if a["comment"] else ""), markup=False)
    if not sections["approvals"]:
        out.line(f"{'approvals':<15}none")

