"""Commands on changes: diff and changelog."""

from __future__ import annotations

from typing import Annotated

import typer

from llmreg.bundledir import looks_like_path
from llmreg.digest import short
from llmreg.errors import InvalidRefError

from ._common import JSON_OPTION, connect, handle_errors, out, print_json
from ._diffview import print_diff, print_markdown_changelog, print_text_changelog


def register_commands(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    for command in (diff, changelog):
        app.command(command.__name__)(handle_errors(command))


def diff(
    old: Annotated[str, typer.Argument(help="A ref (name@3, name@sha256:…) or a bundle folder.")],
    new: Annotated[str, typer.Argument(help="A ref or a bundle folder.")],
    stat: Annotated[bool, typer.Option("--stat", help="One summary line per section.")] = False,
    exit_code: Annotated[bool, typer.Option(
        "--exit-code", help="Exit 1 when the bundles differ (for CI).")] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show what changed from OLD to NEW, section by section, in the bundle's terms."""
    # Two folders need no registry at all; a ref needs the real one.
    folders_only = looks_like_path(old) and looks_like_path(new)
    with connect(optional=folders_only) as reg:
        result = reg.diff(old, new)
    if as_json:
        print_json(result.to_json())
    elif result.identical:
        out.print(f"identical: both are {result.old_digest}")
    elif stat:
        for line in result.stat():
            out.print(line, markup=False)
    else:
        print_diff(result, old, new)
    if exit_code and not result.identical:
        raise typer.Exit(1)


def changelog(
    name: Annotated[str, typer.Argument(help="A registered name.")],
    fmt: Annotated[str, typer.Option(
        "--format", help="text, markdown (a CHANGELOG.md) or json.")] = "text",
    as_json: bool = JSON_OPTION,
) -> None:
    """Print the release history of NAME: version, digest, date, author, message, changes."""
    if as_json:
        fmt = "json"
    if fmt not in ("text", "markdown", "json"):
        raise InvalidRefError(f"--format {fmt!r} is not known; use text, markdown or json")
    with connect() as reg:
        entries = reg.changelog(name)
    if fmt == "json":
        print_json([{**e.version.model_dump(mode="json"), "first": e.first,
                     "evidence": e.evidence, "short_digest": short(e.version.digest)}
                    for e in entries])
    elif fmt == "markdown":
        print_markdown_changelog(name, entries)
    else:
        print_text_changelog(entries)
