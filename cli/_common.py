"""Shared CLI plumbing: state, errors to one stderr line, JSON output, consoles."""

from __future__ import annotations

import functools
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

import llmreg
from llmreg.errors import LLMRegError, RegistryNotFoundError

if TYPE_CHECKING:
    from llmreg.remote import RemoteClient

P = ParamSpec("P")
R = TypeVar("R")

# Piped output is not squeezed into 80 columns: tables stay whole for `| less` and logs.
_WIDTH = None if sys.stdout.isatty() else 200
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)


@dataclass
class State:
    """Options of the root command, shared with every sub-command."""

    traceback: bool = False
    registry: str | None = None


STATE = State()


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn an :class:`LLMRegError` into one line on stderr and exit code 1.

    ``--traceback`` re-raises instead, to show the stack.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except LLMRegError as exc:
            if STATE.traceback:
                raise
            message = " ".join(str(exc).split("\n"))
            err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def connect(create: bool = False, optional: bool = False) -> llmreg.Client | RemoteClient:
    """Connect to the registry chosen by ``--registry`` / ``LLMREG_HOME`` / upward search.

    With ``optional``, a missing registry is fine: a throwaway in-memory one is used, so
    commands that only read bundle folders (``diff DIR DIR``) work anywhere.
    """
    try:
        return llmreg.connect(STATE.registry, create=create)
    except RegistryNotFoundError:
        if not optional:
            raise
        return llmreg.connect(Path(tempfile.mkdtemp(prefix="llmreg-")), create=True)


def print_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout (no colour, stable key order)."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts instead of tables.")
