"""Shared CLI plumbing: the root options, errors as one stderr line, the connection."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer

import llmreg
from llmreg.errors import LLMRegError, RegistryNotFoundError

from ._output import Output

if TYPE_CHECKING:
    from llmreg.client.remote import RemoteClient

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=str)


@dataclass
class State:
    """Options of the root command, shared with every sub-command."""

    traceback: bool = False
    registry: str | None = None


STATE = State()


def one_of(choices: Iterable[S], *, notes: Mapping[S, str] | None = None,
           quote: bool = False) -> str:
    """``a, b or c``: choices for a help or error text, read from the library's own list
    (a ``Literal`` through ``typing.get_args``, or a tuple), never typed out again.

    ``notes`` explain some choices; a choice the library adds later shows up without one.

    Example:
        >>> one_of(["token", "open"], quote=True)
        "'token' or 'open'"
        >>> one_of(["text", "markdown", "json"], notes={"markdown": "a CHANGELOG.md"})
        'text, markdown (a CHANGELOG.md) or json'
    """
    shown = [(repr(c) if quote else str(c)) + (f" ({notes[c]})" if notes and c in notes else "")
             for c in choices]
    return " or ".join(shown) if len(shown) < 3 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn an :class:`LLMRegError` into one line on stderr and exit code 1.

    ``--traceback`` re-raises instead, to show the stack. Every command is registered
    through it: ``app.command("show")(handle_errors(show))``.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except LLMRegError as exc:
            if STATE.traceback:
                raise
            Output().error(str(exc))
            raise typer.Exit(1) from None

    return wrapper


def note_audit_head(reg: llmreg.Client) -> None:
    """After a write, print the audit log's head on stderr: kept somewhere else, it lets
    ``llmreg audit verify --head HASH`` prove later that no entry was cut from the log."""
    newest = reg.audit(limit=1)
    if newest:
        Output().note(f"audit head {newest[-1].hash}")


def connect(create: bool = False, optional: bool = False) -> llmreg.Client | RemoteClient:
    """``with connect() as reg:`` the registry chosen by ``--registry`` / ``LLMREG_HOME`` /
    upward search.

    With ``optional``, a missing registry is fine: a throwaway in-memory one is used, so
    commands that only read bundle folders (``diff DIR DIR``) work anywhere.
    """
    try:
        return llmreg.connect(STATE.registry, create=create)
    except RegistryNotFoundError:
        if not optional:
            raise
        return llmreg.connect(Path(tempfile.mkdtemp(prefix="llmreg-")), create=True)

