"""The public API: explicit exports, and `import llmreg` staying light."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import llmreg

HEAVY = ("fastapi", "sqlmodel", "sqlalchemy", "alembic", "boto3", "typer", "uvicorn", "rich")


# What llmreg exports besides its exception classes (every public one of llmreg.errors is
# exported too): the names the docs teach. A new public name is added here and to
# llmreg.__all__, deliberately; nothing is exported by accident or by a fallback.
NAMES = {
    "__version__", "errors", "connect", "Client", "RemoteClient",
    "Bundle", "ResolvedBundle", "Messages", "load_bundle_dir", "BundleDiff", "diff_bundles",
    "canonical_json", "digest_bytes", "short_digest", "parse_ref", "Policy", "load_policy",
    "Settings", "Actor", "ApprovalInfo", "AuditInfo", "ChangelogEntry", "EvidenceInfo",
    "GateReport", "GateResult", "NameSummary", "Registration", "SlotEventInfo", "SlotStatus",
    "VersionInfo",
}


def public_errors() -> set[str]:
    """Every exception class llmreg.errors defines under a public name, computed."""
    return {name for name, value in vars(llmreg.errors).items()
            if isinstance(value, type) and issubclass(value, BaseException)
            and value.__module__ == "llmreg.errors" and not name.startswith("_")}


def test_all_is_exactly_the_public_api() -> None:
    assert len(public_errors()) > 30 and "LLMRegError" in public_errors()
    assert sorted(llmreg.__all__) == sorted(NAMES | public_errors())
    assert len(set(llmreg.__all__)) == len(llmreg.__all__)  # no name twice


def test_every_name_in_all_resolves() -> None:
    for name in llmreg.__all__:
        assert getattr(llmreg, name) is not None, name
    for name in public_errors():
        assert getattr(llmreg, name) is getattr(llmreg.errors, name), name
    star: dict[str, object] = {}
    exec("from llmreg import *", star)  # the star import serves the same names
    assert set(star) - {"__builtins__"} == set(llmreg.__all__)


@pytest.mark.parametrize("name", [
    "NoSuchError",       # looks like an error class, is none
    "LlmregError",       # the root class, misspelt
    "RegistryService",   # the service layer is not the public API
    "TokenInfo",         # a record of llmreg.types that is not exported
])
def test_an_unknown_name_is_an_attribute_error(name: str) -> None:
    with pytest.raises(AttributeError, match=f"module 'llmreg' has no attribute {name!r}"):
        getattr(llmreg, name)
    assert not hasattr(llmreg, name)


def test_type_checkers_see_the_same_names_where_they_are_loaded() -> None:
    """The ``if TYPE_CHECKING:`` imports (what mypy and editors read) name every lazy
    export, from the module the lazy loader takes it from."""
    tree = ast.parse(Path(llmreg.__file__).read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and ast.unparse(node.test) == "TYPE_CHECKING")
    declared = {alias.asname or alias.name: (node.module, alias.name)
                for node in block.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    lazy = {name: (module, attr) if attr is not None else module.rpartition(".")[::2]
            for name, (module, attr) in llmreg._LAZY.items()}
    assert declared == lazy
    assert set(declared) | {"__version__"} == set(llmreg.__all__)


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


def test_cli_choices_are_the_librarys() -> None:
    """Every list of choices the CLI shows or checks is the library's own Literal or
    constant (read with ``typing.get_args``), never a copy; where the library keeps a
    second copy of a list (the service's tuples, the HTTP contract's Literals), it equals
    the first."""
    import doctest
    from typing import get_args

    from typer.main import get_command

    from llmreg.bundle.pinning import PROVIDERS
    from llmreg.contract.models import EvidenceBody, TokenBody
    from llmreg.policy import JobPeriods
    from llmreg.service.lifecycle.evidence import EVIDENCE_TYPES
    from llmreg.service.mirror import keys
    from llmreg.service.notifications import outbox
    from llmreg.service.notifications import webhooks as webhook_rules
    from llmreg.settings import ReadAuth, Settings
    from llmreg.types import ROLES, MirrorRole, WebhookEvent, WebhookFormat
    from llmreg_cli import _common, diffs, hygiene, mirror, server, webhooks
    from llmreg_cli.main import app

    # The library's copies agree with its Literals.
    assert outbox.EVENTS == get_args(WebhookEvent)
    assert webhook_rules.FORMATS == get_args(WebhookFormat)
    assert keys.ROLES == get_args(MirrorRole)
    assert get_args(TokenBody.model_fields["role"].annotation) == ROLES
    assert get_args(EvidenceBody.model_fields["type"].annotation) == EVIDENCE_TYPES
    for mode in get_args(ReadAuth):
        assert Settings.from_env({"LLMREG_READ_AUTH": mode}).read_auth == mode
    with pytest.raises(llmreg.ConfigError, match="LLMREG_READ_AUTH='anyone'"):
        Settings.from_env({"LLMREG_READ_AUTH": "anyone"})

    # The CLI's lists are the library's, and each option's help names them, in order.
    expected = {
        ("webhook", "add", "--events"): (webhooks.EVENTS, get_args(WebhookEvent)),
        ("webhook", "add", "--format"): (webhooks.FORMATS, get_args(WebhookFormat)),
        ("token", "create", "--role"): (ROLES, ROLES),
        ("mirror", "rotate", "--role"): (mirror.MIRROR_ROLES, get_args(MirrorRole)),
        ("serve", "--read-auth"): (server.READ_AUTH, get_args(ReadAuth)),
        ("serve", "--jobs"): (hygiene.JOBS, tuple(JobPeriods.model_fields)),
        ("jobs", "run", "--job"): (hygiene.JOBS, tuple(JobPeriods.model_fields)),
        ("jobs", None): (hygiene.JOBS, tuple(JobPeriods.model_fields)),  # the group's help
        ("import", "mlflow", "--default-model"): (PROVIDERS, PROVIDERS),
        # The changelog's formats are the CLI's own: its Literal is their one list.
        ("changelog", "--format"): (diffs.CHANGELOG_FORMATS, get_args(diffs.ChangelogFormat)),
    }
    root = get_command(app)

    def help_of(path: list[str], opt: str | None) -> str:
        command = root
        for part in path:
            command = command.commands[part]
        if opt is None:
            return str(command.help)
        (param,) = [p for p in command.params if opt in p.opts]
        return str(param.help)

    for (*path, opt), (cli_list, library_list) in expected.items():
        assert cli_list == library_list, (path, opt)
        text = help_of(path, opt)
        # A choice's note, "slack (a Slack … message)", is set aside: it may name others.
        bare = re.sub(r"([\w-]+) \([^()]*\)",
                      lambda m, choices=cli_list: m[1] if m[1] in choices else m[0], text)
        words = re.findall(r"[\w-]+", bare)
        assert [w for w in words if w in cli_list] == list(cli_list), (path, opt, text)
    assert doctest.testmod(_common).failed == 0  # one_of, the helper that writes them
