"""Commands for running a server and managing its API tokens."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, get_args

import typer

import llmreg
from llmreg.errors import ConfigError, MissingDependencyError
from llmreg.settings import ReadAuth
from llmreg.types import ROLES

from ._common import STATE, connect, handle_errors, note_audit_head, one_of
from ._output import JSON_OPTION, Output
from .hygiene import JOBS

READ_AUTH: tuple[ReadAuth, ...] = get_args(ReadAuth)
_READ_AUTH_NOTES: dict[ReadAuth, str] = {"token": "reads need a reader token",
                                         "open": "anyone may read"}

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


def register_commands(app: typer.Typer) -> None:
    """Attach ``serve`` and the ``token`` group to the root app."""
    app.command("serve")(handle_errors(serve))
    token_app.command("create")(handle_errors(token_create))
    token_app.command("list")(handle_errors(token_list))
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
    role: Annotated[str, typer.Option("--role", help=f"{one_of(ROLES)}.")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a token; it is printed once and stored only as a hash."""
    out = Output(as_json)
    with connect() as reg:
        token, info = reg.create_token(subject, role)
        note_audit_head(reg)
    out.result({**info.model_dump(mode="json"), "token": token},
               f"created token {info.token_id} for {info.subject} (role {info.role}); "
               "store it now, it is not shown again:")
    out.line(token, markup=False)


def token_list(as_json: bool = JSON_OPTION) -> None:
    """List tokens (ids, subjects, roles; never secrets)."""
    with connect() as reg:
        tokens = reg.list_tokens()
    Output(as_json).table(tokens, ("id", "subject", "role", "created", "by", "revoked"),
                          lambda t: (t.token_id, t.subject, t.role, t.created_at, t.created_by,
                                     t.revoked_at))


def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (see `llmreg token list`).")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Revoke a token; servers stop accepting it within seconds."""
    with connect() as reg:
        info = reg.revoke_token(token_id)
        note_audit_head(reg)
    Output(as_json).result(info, f"revoked token {info.token_id} ({info.subject})")
