"""The public API: explicit exports, and `import llmreg` staying light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import llmreg

HEAVY = ("fastapi", "sqlmodel", "sqlalchemy", "alembic", "boto3", "typer", "uvicorn", "rich")


def test_every_export_resolves_and_nothing_public_is_left_out() -> None:
    for name in llmreg.__all__:
        assert getattr(llmreg, name) is not None, name
    for module in ("bundle", "client", "remote", "resolved", "types", "errors", "diff",
                   "policy", "settings"):
        mod = __import__(f"llmreg.{module}", fromlist=["*"])
        for name in getattr(mod, "__all__", []):
            assert name in llmreg.__all__, f"llmreg.{module}.{name} is not exported"
    # Each public class a user meets through the client is reachable from llmreg.
    for name in ("Bundle", "ResolvedBundle", "Client", "RemoteClient", "GateReport",
                 "SlotStatus", "VersionInfo", "BundleDiff", "Policy", "LLMRegError"):
        assert name in llmreg.__all__


def test_errors_share_one_root() -> None:
    import inspect

    classes = [c for _, c in inspect.getmembers(llmreg.errors, inspect.isclass)
               if c.__module__ == "llmreg.errors"]
    assert all(issubclass(c, llmreg.LLMRegError) for c in classes)
    assert len({c.code for c in classes}) == len(classes)  # one stable code per class


def test_import_does_not_pull_in_the_server_stack() -> None:
    code = ("import sys, llmreg; b = llmreg.Bundle; c = llmreg.Client; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_remote_resolve_path_imports_no_pydantic_or_httpx() -> None:
    """An app that resolves from a server pays only for the standard library and Jinja2."""
    code = ("import sys, llmreg\n"
            "reg = llmreg.connect('http://127.0.0.1:9', token='x')\n"
            "try:\n    reg.resolve('chat', env='production')\n"
            "except llmreg.errors.RegistryUnavailableError:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'pydantic', 'httpx', 'sqlalchemy', 'yaml', 'jsonschema', 'deepdiff'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"LLMREG_CACHE": "/nonexistent/llmreg-test-cache",
                                          "PATH": "/usr/bin"})
    assert out.stdout.strip() == "[]", out.stderr


def test_embedded_read_path_imports_no_orm_or_pydantic(tmp_path: Path) -> None:
    """An app reading the embedded registry: connect, resolve a slot and a ref, render —
    the standard library's sqlite3, the blob file and Jinja2; no ORM, no pydantic. A
    ``get`` returns a pydantic Bundle, so it loads pydantic, but still no ORM."""
    home = tmp_path / ".llmreg"
    with llmreg.connect(home, create=True) as reg:
        reg.log_bundle(llmreg.Bundle.from_dict({
            "model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
            "template": {"source": "Q: {{ q }}", "variables": ["q"]}}),
            name="chat", message="first")
        reg.promote("chat@1", to="staging", reason="try")
    heavy = ("pydantic", "sqlalchemy", "sqlmodel", "alembic", "httpx", "yaml")
    code = ("import sys, llmreg\n"
            f"reg = llmreg.connect({str(home)!r})\n"
            "b = reg.resolve('chat', env='staging')\n"
            "r = reg.resolve('chat@1')\n"
            "assert b.render(q='hi').to_openai() == r.render(q='hi').to_openai()\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(heavy)!r}))\n"
            "assert reg.get('chat@1').version == 1\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(heavy)!r}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PATH": "/usr/bin", "LLMREG_USER": "app"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "['pydantic']"], out.stderr
def test_every_error_class_the_docs_name_is_importable_from_llmreg() -> None:
    import re

    import llmreg
    from llmreg import errors
    from tests.docs_runner import docs

    named = {m for doc in docs() for m in re.findall(r"\b([A-Z]\w*Error)\b", doc.read_text())}
    defined = {n for n, v in vars(errors).items()
               if isinstance(v, type) and issubclass(v, errors.LLMRegError)}
    assert "RefNotFoundError" in named
    for name in sorted((named & defined) | defined):
        assert getattr(llmreg, name) is getattr(errors, name), name
    unknown = named - defined - {"ValueError", "LookupError", "TimeoutError",
                                 "PermissionError", "FileNotFoundError", "ConnectionError",
                                 "ImportError", "AttributeError", "KeyError", "TypeError",
                                 "OSError",
                                 # other libraries' classes the docs name: httpx's, and
                                 # standardwebhooks' in the webhook receiver example
                                 "ConnectError", "WebhookVerificationError"}
    assert not unknown, f"docs name error classes llmreg does not have: {unknown}"
