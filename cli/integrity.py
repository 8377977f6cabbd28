"""Commands that get artifacts back and check the registry's integrity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmreg.errors import IntegrityError

from ._common import connect, handle_errors
from ._output import JSON_OPTION, Output


def register_commands(app: typer.Typer) -> None:
    """Attach pull, verify, fsck and gc to the root app."""
    for command in (pull, verify, fsck, gc):
        app.command(command.__name__)(handle_errors(command))


def pull(
    ref: Annotated[str, typer.Argument(help="name@version, name@<env>, or a digest ref.")],
    directory: Annotated[Path, typer.Argument(help="Where to put the artifacts.")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Download every artifact of REF into DIRECTORY, verified (resumable)."""
    out = Output(as_json)
    with out.progress("download") as progress, connect() as reg:
        files = reg.pull(ref, directory, progress=progress)
    out.result([str(f) for f in files],
               *(f"{f}  ({f.stat().st_size} bytes, verified)" for f in files))
    if not files:
        out.line(f"{ref} has no artifacts")


def verify(
    ref: Annotated[str, typer.Argument(help="The version to re-hash.")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Re-hash a version's manifest and artifacts in the store. Exit 1 on any problem."""
    out = Output(as_json)
    with connect() as reg:
        problems = reg.verify(ref)
    out.json(problems)
    if problems:
        raise IntegrityError("; ".join(str(p) for p in problems))
    out.line(f"{ref}: manifest and artifacts verified")


def fsck(as_json: bool = JSON_OPTION) -> None:
    """Verify every blob and every reference; report each problem by digest."""
    out = Output(as_json)
    with connect() as reg:
        count, problems = reg.fsck()
    out.json({"blobs": count, "problems": problems})
    for p in problems:
        out.line(str(p), markup=False)
    out.line(f"{count} blobs checked, {len(problems)} problem(s)")
    if problems:
        raise typer.Exit(1)


def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")
                       ] = False,
    grace_hours: Annotated[float, typer.Option(
        "--grace-hours", help="Never touch blobs younger than this (uploads in flight).")
    ] = 24.0,
    as_json: bool = JSON_OPTION,
) -> None:
    """Find blobs nothing refers to (archived versions keep theirs); delete them unless
    --dry-run."""
    with connect() as reg:
        found = reg.gc(dry_run=dry_run, grace=grace_hours * 3600)
    verb = "would delete" if dry_run else "deleted"
    Output(as_json).result({"blobs": found, "deleted": not dry_run},
                           *(f"{verb} {digest}" for digest in found),
                           f"{len(found)} unreferenced blob(s) older than {grace_hours:g}h")
