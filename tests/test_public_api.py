"""The public API: explicit exports, and `import llmreg` staying light."""

from __future__ import annotations

import subprocess
import sys

import llmreg

HEAVY = ("fastapi", "sqlmodel", "sqlalchemy", "alembic", "boto3", "typer", "uvicorn", "rich")


def test_all_public_names_are_exported() -> None:
    public = {name for name in dir(llmreg) if not name.startswith("_")}
    modules = {"bundle", "bundledir", "client", "digest", "names", "pinning", "postprocess",
               "provenance", "render", "settings", "types", "store", "db", "service",
               "messages", "diff", "policy"}
    assert public - modules == set(llmreg.__all__) - {"__version__"}


def test_errors_share_one_root() -> None:
    import inspect

    classes = [c for _, c in inspect.getmembers(llmreg.errors, inspect.isclass)
               if c.__module__ == "llmreg.errors"]
    assert all(issubclass(c, llmreg.LLMRegError) for c in classes)
    assert len({c.code for c in classes}) == len(classes)  # one stable code per class


def test_import_does_not_pull_in_the_server_stack() -> None:
    code = ("import sys, llmreg; b = llmreg.Bundle; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
