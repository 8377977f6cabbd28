"""Commands for running a server and managing its API tokens."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, get_args

import typer

import llmreg
from llmreg.errors import ConfigError, InvalidRefError, MissingDependencyError
from llmreg.settings import ReadAuth
from llmreg.teams import parse_teams
from llmreg.types import ROLES, TokenInfo

from ._common import STATE, connect, handle_errors, note_audit_head, one_of
from ._output import JSON_OPTION, Output
from .hygiene import JOBS

READ_AUTH: tuple[ReadAuth, ...] = get_args(ReadAuth)
_READ_AUTH_NOTES: dict[ReadAuth, str] = {"token": "reads need a reader token",
                                         "open": "anyone may read"}

token_app = typer.Typer(help="Create, list, rotate and revoke API tokens.", no_args_is_help=True)
_EXPIRES_HELP = ("When the token stops working: a duration (30m, 12h, 7d, 90d, 8w) or an ISO "
                 "date or time (2027-03-01, 2027-03-01T12:00:00Z; UTC unless it names an "
                 "offset), at most 5 years ahead. Left out: the token never expires.")


def register_commands(app: typer.Typer) -> None:
    """Attach ``serve`` and the ``token`` group to the root app."""
    app.command("serve")(handle_errors(serve))
    token_app.command("create")(handle_errors(token_create))
    token_app.command("list")(handle_errors(token_list))
    token_app.command("rotate")(handle_errors(token_rotate))
    token_app.command("revoke")(handle_errors(token_revoke))
    app.add_typer(token_app, name="token")


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535,
                                      help="Port to listen on.")] = 8700,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64,
                                         help="Worker processes.")] = 1,
    read_auth: Annotated[str, typer.Option(
        "--read-auth", help=one_of(READ_AUTH, notes=_READ_AUTH_NOTES) + ".")] = "token",
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")
                          ] = False,
    jobs: Annotated[bool, typer.Option(
        "--jobs/--no-jobs", help=f"Run the scheduled jobs ({', '.join(JOBS)}) in the "
                                 "background, once per period across replicas.")] = True,
    publish: Annotated[str | None, typer.Option(
        "--publish", help="Publish the signed mirror to this folder or s3://BUCKET/PREFIX "
                          "at start and after every promotion or rollback.")] = None,
    mirror_keys: Annotated[Path | None, typer.Option(
        "--mirror-keys", help="The mirror's keys folder (default LLMREG_MIRROR_KEYS, else "
                              "mirror-keys).")] = None,
) -> None:
    """Serve the registry over HTTP (FastAPI on uvicorn); OpenAPI at /openapi.json."""
    try:
        import fastapi  # noqa: F401  (the workers import it; say so here, not in a traceback)
        import uvicorn
    except ImportError:
        raise MissingDependencyError("`llmreg serve` needs the server extra: "
                                     "pip install 'llmreg[server]'") from None
    if read_auth not in READ_AUTH:
        raise ConfigError(f"--read-auth {read_auth!r} must be {one_of(READ_AUTH, quote=True)}")
    if STATE.registry and "://" in STATE.registry:
        raise ConfigError("serve runs over a registry folder or database, not a URL")
    settings = llmreg.Settings.from_env()
    home = Path(STATE.registry) if STATE.registry else settings.resolve_home()
    # Workers are separate processes: they read their settings from the environment.
    os.environ["LLMREG_HOME"] = str(home.resolve())
    os.environ["LLMREG_READ_AUTH"] = read_auth
    os.environ["LLMREG_JOBS"] = "1" if jobs else "0"
    if publish:
        os.environ["LLMREG_PUBLISH"] = publish
    if mirror_keys is not None:
        os.environ["LLMREG_MIRROR_KEYS"] = str(mirror_keys.resolve())
    with llmreg.connect(home) as reg:  # migrate once, before the workers start
        if publish:  # and check the keys: a server that cannot publish does not start
            reg.publish(publish, keys=mirror_keys)
    if host not in ("127.0.0.1", "localhost", "::1") and read_auth == "open":
        Output().warning(f"anyone who can reach {host}:{port} can read every bundle "
                         "(--read-auth open)")
    made = _metrics_folder(settings.metrics, workers)
    try:
        # The httptools parser, behind llmreg's bounds on request heads (size, number of
        # fields, deadline) and on what a refused body may still send: uvicorn has none.
        uvicorn.run("llmreg.server.app:create_app_from_env", factory=True, host=host,
                    port=port, workers=workers, access_log=access_log, log_level="info",
                    loop="auto", http="llmreg.server.connection:BoundedHttpToolsProtocol")
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def _metrics_folder(mode: str, workers: int) -> str | None:
    """With several workers, metrics go through files in PROMETHEUS_MULTIPROC_DIR so a
    scrape of any worker counts them all. Use the folder given (emptied: values of an
    earlier run must not count), else a fresh one, removed at exit (returned)."""
    if mode == "off" or workers < 2:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return None
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.db"):
            old.unlink()
        return None
    made = tempfile.mkdtemp(prefix="llmreg-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made


def token_create(
    subject: Annotated[str, typer.Option("--subject", help="Who or what the token is for.")],
    role: Annotated[str | None, typer.Option(
        "--role", help=f"The registry-wide role: {one_of(ROLES)}. Without --team it applies "
                       "to every name (an unscoped token); with --team leave it out, unless the "
                       "token administers the whole registry.")] = None,
    team: Annotated[list[str] | None, typer.Option(
        "--team", help="TEAM:ROLE, repeatable: the token acts on the names TEAM owns with "
                       "ROLE (reader, publisher or approver). See docs/teams.md.")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help=_EXPIRES_HELP)] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a token; it is printed once (last line) and stored only as a hash."""
    out = Output(as_json)
    if role is None and not team:
        raise InvalidRefError("give --team TEAM:ROLE (e.g. --team search:publisher), or --role "
                              "ROLE for a registry-wide token")
    teams = parse_teams(team or [])
    with connect() as reg:
        token, info = reg.create_token(subject, role or "reader", expires=expires, teams=teams)
        note_audit_head(reg)
    out.result({**info.model_dump(mode="json"), "token": token},
               f"created token {info.token_id} for {info.subject} ({_scope(info)}), "
               f"{_lifetime(info)}; store it now, it is not shown again:")
    out.line(token, markup=False)


def _scope(info: TokenInfo) -> str:
    """``role publisher`` (unscoped), or ``search: publisher; reader elsewhere``."""
    if not info.teams:
        return f"role {info.role}"
    teams = ", ".join(f"{t}: {r}" for t, r in sorted(info.teams.items()))
    return f"{teams}; {info.role} elsewhere"


def token_rotate(
    token_id: Annotated[str, typer.Argument(help="The token's id (see `llmreg token list`).")],
    expires: Annotated[str | None, typer.Option("--expires", help=_EXPIRES_HELP)] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Replace a token: a new secret for the same subject, role and teams (printed once,
    last line), and the old token revoked. An expired token may be rotated."""
    out = Output(as_json)
    with connect() as reg:
        token, info = reg.rotate_token(token_id, expires=expires)
        note_audit_head(reg)
    out.result({**info.model_dump(mode="json"), "token": token, "rotated_from": token_id},
               f"rotated token {token_id}: it is revoked; the new token {info.token_id} for "
               f"{info.subject} ({_scope(info)}), {_lifetime(info)}; hand it over now, it "
               "is not shown again:")
    out.line(token, markup=False)


def _lifetime(info: TokenInfo) -> str:
    if info.expires_at is None:
        return "never expires (give --expires 90d for one that does)"
    return f"expires at {info.expires_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _status(t: TokenInfo, now: datetime) -> str:
    if t.revoked_at is not None:
        return "revoked"
    return "expired" if t.expires_at is not None and t.expires_at <= now else "active"


def token_list(as_json: bool = JSON_OPTION) -> None:
    """List tokens (ids, subjects, roles, expiry, status; never secrets)."""
    with connect() as reg:
        tokens = reg.list_tokens()
    now = datetime.now(UTC)
    out = Output(as_json)
    out.table(
        tokens, ("id", "subject", "role", "teams", "status", "created", "by", "expires",
                 "revoked"),
        lambda t: (t.token_id, t.subject, t.role,
                   ", ".join(f"{k}:{v}" for k, v in sorted(t.teams.items()))
                   or ("(unscoped)" if t.role in ("publisher", "approver") else "-"),
                   _status(t, now), t.created_at, t.created_by, t.expires_at or "never",
                   t.revoked_at),
        empty="no tokens yet; create one with `llmreg token create --subject NAME --team "
              "TEAM:ROLE`")
    unscoped = [t.token_id for t in tokens if not t.teams and t.role not in ("reader", "admin")
                and _status(t, now) == "active"]
    if unscoped:
        out.line(f"{len(unscoped)} active token{'s are' if len(unscoped) > 1 else ' is'} "
                 f"unscoped (the role applies to every name): {', '.join(unscoped)}; give "
                 "each team its own (`llmreg token create --team TEAM:ROLE`) and revoke "
                 "these (docs/teams.md)", markup=False)


def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (see `llmreg token list`).")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Revoke a token: servers refuse it within 5 seconds and its web sessions end. It
    cannot be renewed; its holder needs a new token."""
    with connect() as reg:
        info = reg.revoke_token(token_id)
        note_audit_head(reg)
    again = f"`llmreg token create --subject {info.subject} --role {info.role}`"
    if not getattr(info, "revoked_now", True):
        assert info.revoked_at is not None
        Output(as_json).result(
            info, f"token {info.token_id} ({info.subject}) was already revoked at "
                  f"{info.revoked_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}; nothing changed")
        return
    Output(as_json).result(
        info, f"revoked token {info.token_id} ({info.subject}): every server refuses it "
              "within 5 seconds (one you revoked it through, at once) and its web sessions "
              f"end. A revoked token cannot be rotated; if {info.subject} still needs "
              f"access, create a new one: {again}")
