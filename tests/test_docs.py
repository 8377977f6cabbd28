"""Docs stay true: generated files are current, doc examples run, commands have help."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import llmreg
from scripts import gen_docs
from tests.conftest import ROOT

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(llmreg.__path__, "llmreg.")
    if ".migrations" not in m.name
)


# Modules that may have no runnable docstring example *yet*: they are being rewritten
# (the HTTP plumbing, parts of the service layer and the server).
# Every other module must show at least one example that runs. Shrink this list as
# examples are added; never grow it to make a failure go away.
NO_EXAMPLE_YET = frozenset({
    "llmreg.client.transport",
    "llmreg.server",
    "llmreg.server.app",
    "llmreg.server.deps",
    "llmreg.server.errors",
    "llmreg.server.routes",
    "llmreg.server.routes.blobs",
    "llmreg.server.routes.resolve",
    "llmreg.service",
    "llmreg.service.access",
    "llmreg.service.lifecycle.gates",
    "llmreg.service.integrity",
})


def run_examples(module: str) -> doctest.TestResults:
    mod = importlib.import_module(module)
    return doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                           extraglobs={"llmreg": llmreg})


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module: str) -> None:
    result = run_examples(module)
    assert result.failed == 0
    if module not in NO_EXAMPLE_YET:
        assert result.attempted > 0, (
            f"{module} has no runnable docstring example; add one (a `# doctest: +SKIP` "
            "line does not count)")


def test_the_allow_list_names_real_modules() -> None:
    assert NO_EXAMPLE_YET <= set(MODULES)


@pytest.mark.parametrize("rel", sorted(gen_docs.OUTPUTS))
def test_generated_docs_are_current(rel: str) -> None:
    assert (ROOT / rel).read_text() == gen_docs.OUTPUTS[rel](), (
        f"{rel} is stale; run `python scripts/gen_docs.py`")


def test_every_command_has_help_and_a_docs_page_mentions_it() -> None:
    from typer.testing import CliRunner

    from llmreg_cli.main import app

    runner = CliRunner()
    walkthrough = "".join((ROOT / "docs" / page).read_text()
                          for page in ("walkthrough.md", "promotion.md", "server.md",
                                       "integrity.md", "models.md", "hygiene.md",
                                       "notifications.md"))
    for path in gen_docs.command_paths()[1:]:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0
        summary = result.output.split("\n\n")[1].strip()
        assert summary, f"`llmreg {' '.join(path)}` has no help text"
        assert f"llmreg {' '.join(path)}" in walkthrough, f"walkthrough never shows {path}"
