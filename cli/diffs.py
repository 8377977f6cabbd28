"""Commands on changes: diff and changelog."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

import typer

from llmreg.bundle.digest import short
from llmreg.bundle.directory import looks_like_path
from llmreg.errors import InvalidRefError

from ._common import connect, handle_errors, one_of
from ._output import JSON_OPTION, Output
from ._views import markdown_changelog, print_diff, print_text_changelog

# The changelog's shapes are the CLI's own (the markdown view is in _views): this Literal
# is their one list; json is the same as --json.
ChangelogFormat = Literal["text", "markdown", "json"]
CHANGELOG_FORMATS: tuple[ChangelogFormat, ...] = get_args(ChangelogFormat)
_CHANGELOG_NOTES: dict[ChangelogFormat, str] = {"markdown": "a CHANGELOG.md"}


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
    out = Output(as_json)
    # Two folders need no registry at all; a ref needs the real one.
    folders_only = looks_like_path(old) and looks_like_path(new)
    with connect(optional=folders_only) as reg:
        result = reg.diff(old, new)
    out.json(result.to_json())
    if result.identical:
        out.line(f"identical: both are {result.old_digest}")
    elif stat:
        for line in result.stat():
            out.line(line, markup=False)
    else:
        out.view(print_diff, result, old, new)
    if exit_code and not result.identical:
        raise typer.Exit(1)


def changelog(
    name: Annotated[str, typer.Argument(help="A registered name.")],
    fmt: Annotated[str, typer.Option(
        "--format", help=one_of(CHANGELOG_FORMATS, notes=_CHANGELOG_NOTES) + ".")] = "text",
    as_json: bool = JSON_OPTION,
) -> None:
    """Print the release history of NAME: version, digest, date, author, message, changes."""
    out = Output(as_json or fmt == "json")  # --format json is --json
    if fmt not in CHANGELOG_FORMATS:
        raise InvalidRefError(f"--format {fmt!r} is not known; use {one_of(CHANGELOG_FORMATS)}")
    with connect() as reg:
        entries = reg.changelog(name)
    out.json([{**e.version.model_dump(mode="json"), "first": e.first,
               "evidence": e.evidence, "short_digest": short(e.version.digest)}
              for e in entries])
    if fmt == "markdown":
        out.raw(markdown_changelog(name, entries))
    else:
        out.view(print_text_changelog, entries)
