"""The root ``llmreg`` command: global options and the command list."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

import llmreg

from . import (
    bundles,
    diffs,
    hygiene,
    imports,
    inspect,
    integrity,
    lifecycle,
    mirror,
    models,
    server,
    webhooks,
)
from ._common import STATE
from ._output import Output

GLOBAL_FLAGS = ("--traceback",)


def _plain_metavars(command: Any) -> None:
    """Help shows ``--weights <Path>`` and ``directories...``, never a Python type such
    as ``<list[Path]>``."""
    for param in getattr(command, "params", []):
        if isinstance(param, TyperArgument):
            param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
        elif isinstance(param, TyperOption) and param.metavar is None and not param.is_flag:
            label = param.display_type(None)  # type: ignore[arg-type]
            if "list[" in label:
                param.metavar = re.sub(r"list\[(.*)\]", r"\1", label)
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)


class _Root(TyperGroup):
    """The root group: global flags are accepted after the subcommand too
    (``llmreg show x --traceback`` as well as ``llmreg --traceback show x``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_metavars(self)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Every refusal of bad input exits 1: the parser's usage errors (a missing
        option, a value out of range) too, which click would exit with 2."""
        try:
            return super().main(*args, **kwargs)
        except SystemExit as exc:
            if exc.code == 2:
                raise SystemExit(1) from None
            raise

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
        rest = [a for a in args[:end] if a not in GLOBAL_FLAGS] + args[end:]
        return super().parse_args(ctx, flags + rest)


app = typer.Typer(
    cls=_Root,
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


for module in (bundles, diffs, lifecycle, server, integrity, models, inspect, webhooks,
               hygiene, mirror, imports):
    module.register_commands(app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="llmreg")
