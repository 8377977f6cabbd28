"""The command line as a user runs it (modules that need another runner define their own
``run``)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from llmreg_cli.main import app


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch):
    """``run(*args, user="ana")``: ``llmreg ARGS`` in this process, as LLMREG_USER ``user``."""
    runner = CliRunner()

    def invoke(*args: str, user: str = "ana"):
        monkeypatch.setenv("LLMREG_USER", user)
        return runner.invoke(app, list(args), prog_name="llmreg")

    return invoke
