"""The root ``llmreg`` command: global options and the command list."""

from __future__ import annotations

from typing import Annotated

import typer

import llmreg

from . import bundles, diffs, imports, integrity, lifecycle, models, server
from ._common import STATE
from ._output import Output

app = typer.Typer(
    name="llmreg",
    help="llmreg: register, inspect and render content-addressed LLM bundles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        Output().line(f"llmreg {llmreg.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    registry: Annotated[
        str | None,
        typer.Option("--registry",
                     help="A server URL or a registry folder (default: LLMREG_URL, else "
                          "LLMREG_HOME, else .llmreg/ found from here upward)."),
    ] = None,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the full stack trace on errors.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True,
                           help="Print the version and exit.")
    ] = False,
) -> None:
    """llmreg: register, inspect and render content-addressed LLM bundles."""
    STATE.registry = registry
    STATE.traceback = traceback


for module in (bundles, diffs, lifecycle, server, integrity, models, imports):
    module.register_commands(app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="llmreg")
