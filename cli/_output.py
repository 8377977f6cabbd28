"""Everything the CLI prints goes through one :class:`Output`: JSON for scripts, or Rich
lines, tables and progress bars for people (the model is huggingface_hub's cli/_output.py).

A command builds one ``Output(as_json)`` from its ``--json`` flag and hands it both views
of its result; the object prints the one its mode asks for, so no command branches on the
flag. Results go to stdout; errors and warnings go to stderr, the same in both modes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TransferSpeedColumn
from rich.table import Table

P = ParamSpec("P")
T = TypeVar("T")

# Piped output is not squeezed into 80 columns: tables stay whole for `| less` and logs.
_WIDTH = None if sys.stdout.isatty() else 200
# Registry content (prompts, messages) is printed as it is: never turned into emoji.
_STDOUT = Console(highlight=False, soft_wrap=True, width=_WIDTH, emoji=False)
_STDERR = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH, emoji=False)
BAR_ABOVE = 4 * 1024 * 1024  # files larger than this get a progress bar

JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts instead of tables.")


def when(moment: datetime) -> str:
    """A timestamp as people read it: ``when(created_at)`` is ``'2026-11-26 14:03 UTC'``."""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _encode(value: Any) -> Any:  # json.dumps asks this about what it cannot encode itself
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else str(value)


def _cell(value: Any) -> str:
    return when(value) if isinstance(value, datetime) else "" if value is None else str(value)


class Output:
    """Prints a command's result as JSON (``as_json``) or as lines and tables for people.

    Methods that take only data print in JSON mode, methods that take only text print for
    people, and :meth:`result` and :meth:`table` take both and print one of them.

    >>> Output().result({"name": "chat"}, "registered [bold]chat[/]")
    registered chat
    >>> Output(as_json=True).result({"name": "chat"}, "registered [bold]chat[/]")
    {
      "name": "chat"
    }
    >>> Output().table([("chat", 3)], ("name", "latest"), lambda row: row)
    ... # doctest: +NORMALIZE_WHITESPACE
     name  latest
     chat  3
    """

    def __init__(self, as_json: bool = False) -> None:
        self.json_mode = as_json

    def json(self, data: Any) -> None:
        """JSON mode: print ``data`` indented, keys sorted, models dumped: ``out.json(info)``."""
        if self.json_mode:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=_encode) + "\n")

    def line(self, text: RenderableType, *, markup: bool = True) -> None:
        """For people: print ``text`` (Rich markup unless ``markup=False``): ``out.line(t)``."""
        if not self.json_mode:
            if isinstance(text, Table):
                self.print_trimmed(text)
            else:
                _STDOUT.print(text, markup=markup)

    def raw(self, text: str) -> None:
        """For people: write ``text`` as it is: ``out.raw(markdown)``."""
        if not self.json_mode:
            sys.stdout.write(text)

    def result(self, data: Any, *lines: str) -> None:
        """Print ``data`` as JSON, or ``lines`` for people: ``out.result(info, "archived")``."""
        self.json(data)
        for text in lines:
            self.line(text)

    def table(self, items: Sequence[T], columns: Sequence[str],
              row: Callable[[T], Iterable[Any]], *, empty: str | None = None) -> None:
        """Print ``items`` as JSON, or for people a table of ``row(item)`` (dates by
        :func:`when`, None blank), or ``empty`` when there are none.

        Example: ``out.table(names, ("name", "updated"), lambda n: (n.name, n.updated_at))``.
        """
        if self.json_mode:
            self.json(items)
        elif not items and empty is not None:
            self.line(empty)
        else:
            table = Table(*columns, box=None)
            for item in items:
                table.add_row(*map(_cell, row(item)))
            self.print_trimmed(table)

    @staticmethod
    def print_trimmed(renderable: RenderableType) -> None:
        """Print for people with no trailing spaces on any line (Rich pads the last
        column of a table to its width): ``Output.print_trimmed(table)``."""
        with _STDOUT.capture() as captured:
            _STDOUT.print(renderable)
        sys.stdout.write("".join(line.rstrip() + "\n"
                                 for line in captured.get().splitlines()))

    def view(self, show: Callable[Concatenate[Output, P], None],
             *args: P.args, **kwargs: P.kwargs) -> None:
        """For people: run ``show(self, *args)``, a view that may do extra work such as a
        lookup: ``out.view(print_diff, diff, "chat@1", "chat@2")``."""
        if not self.json_mode:
            show(self, *args, **kwargs)

    @contextmanager
    def progress(self, verb: str) -> Iterator[Callable[[str, int, int], None]]:
        """Yield the ``progress(name, done, total)`` callback for a transfer; people see a
        bar per file over 4 MB: ``with out.progress("upload") as progress: ...``."""
        tasks: dict[str, TaskID] = {}
        with Progress("[progress.description]{task.description}", BarColumn(),
                      DownloadColumn(), TransferSpeedColumn(), console=_STDOUT,
                      transient=True, disable=self.json_mode) as bars:

            def progress(name: str, done: int, total: int) -> None:
                if total < BAR_ABOVE:
                    return
                if name not in tasks:
                    tasks[name] = bars.add_task(f"{verb} {name}", total=total)
                bars.update(tasks[name], completed=done)

            yield progress

    def note(self, message: str) -> None:
        """A side note on stderr, in both modes (stdout stays the result):
        ``out.note("audit head sha256:…")``."""
        _STDERR.print(escape(message), style="dim")

    def warning(self, message: str) -> None:
        """Print ``warning: message`` on stderr: ``out.warning("reads are open")``."""
        _STDERR.print(f"warning: {escape(message)}")

    def error(self, message: str) -> None:
        """Print ``error: message`` on stderr as one line: ``out.error(str(exc))``."""
        message = " ".join(message.split("\n"))  # brackets in a message are text, not markup
        _STDERR.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
