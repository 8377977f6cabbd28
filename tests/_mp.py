"""Worker processes for the multi-process tests, started cheaply.

``spawn`` starts a fresh interpreter per worker, and each one re-imports llmreg, SQLModel,
Typer and Rich — most of a multi-process test's time on a busy machine. A forkserver
that imported them once forks each worker from that warm, single-threaded process
instead: the workers are still separate processes with their own connections, only
their start is cheaper.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext

PRELOAD = ["llmreg", "llmreg.client.core", "llmreg.service.registry", "llmreg_cli.main",
           "typer.testing", "tests.conftest"]


def worker_context() -> BaseContext:
    """The forkserver context, with the heavy imports preloaded (set before it starts)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx
