"""Rich progress bars for transfers larger than a few MB."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TransferSpeedColumn

from ._common import out

BAR_ABOVE = 4 * 1024 * 1024  # files larger than this get a bar


class transfer_bars:  # noqa: N801 - reads as a function at the call site
    """``with transfer_bars("upload") as progress: client.call(..., progress=progress)``.

    Yields the ``progress(name, done, total)`` callback the client calls as bytes move;
    files under 4 MB never get a bar, and ``disabled`` (for ``--json``) shows none.
    """

    def __init__(self, verb: str, *, disabled: bool = False) -> None:
        self.verb = verb
        self.bars = Progress("[progress.description]{task.description}", BarColumn(),
                             DownloadColumn(), TransferSpeedColumn(), console=out,
                             transient=True, disable=disabled)
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Callable[[str, int, int], None]:
        self.bars.__enter__()

        def callback(name: str, done: int, total: int) -> None:
            if total < BAR_ABOVE:
                return
            if name not in self.tasks:
                self.tasks[name] = self.bars.add_task(f"{self.verb} {name}", total=total)
            self.bars.update(self.tasks[name], completed=done)

        return callback

    def __exit__(self, *exc: Any) -> None:
        self.bars.__exit__(*exc)
