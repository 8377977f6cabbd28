"""The layers of docs/architecture.md hold: each calls only the layers below it, no
import cycles, and only the service touches the blob store.

Imports are read from the source (every ``import``, at module level, inside functions
and under ``TYPE_CHECKING`` alike), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "llmreg"

# Bottom to top. A module may import its own layer and the layers below it.
LAYERS: dict[str, list[str]] = {
    # The bundle's content (llmreg/bundle/), the HTTP contract (llmreg/contract/) and the
    # vocabulary every layer shares.
    "bundle": ["_version", "errors", "types", "settings", "policy", "teams", "bundle",
               "contract"],
    "stores": ["store", "db"],
    "service": ["service"],
    "client": ["client"],
    "server": ["server"],
    "api": ["__init__"],  # the public names, re-exported lazily
}
ORDER = list(LAYERS)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}


def layer_of(module: str) -> str:
    first = module.split(".")[1] if "." in module else "__init__"
    for layer, members in LAYERS.items():
        if first in members:
            return layer
    raise AssertionError(f"{module} is in no layer; add it to LAYERS and docs/architecture.md")


def imports_of(module: str) -> set[str]:
    """Every llmreg module ``module`` imports, wherever the import statement is."""
    tree = ast.parse(MODULES[module].read_text())
    is_package = MODULES[module].name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: len(module.split(".")) - node.level
                                          + (1 if is_package else 0)]
                base = ".".join([*parent, base] if base else parent)
            submodules = [f"{base}.{a.name}" for a in node.names
                          if f"{base}.{a.name}" in MODULES]
            found.update(submodules or [base])
    return {m for m in found if m in MODULES and m != module}


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_layer_imports_only_itself_and_the_layers_below(module: str) -> None:
    mine = ORDER.index(layer_of(module))
    above = sorted(m for m in GRAPH[module] if ORDER.index(layer_of(m)) > mine)
    assert above == [], f"{module} ({layer_of(module)}) imports {above} from a layer above"


def test_the_service_is_only_reached_through_the_embedded_backend_and_the_server() -> None:
    users = sorted(m for m, deps in GRAPH.items()
                   if layer_of(m) in ("client",) and any(d.startswith("llmreg.service")
                                                         for d in deps))
    assert users == ["llmreg.client.embedded"]


def test_the_client_reaches_the_stores_only_for_its_cache_and_the_read_only_path() -> None:
    used = sorted({d for m, deps in GRAPH.items() if layer_of(m) == "client"
                   for d in deps if layer_of(d) == "stores"})
    # The disk cache keeps manifests as blobs of a LocalStore (crash-safe, verified reads).
    assert used == ["llmreg.db.readonly", "llmreg.store.local"]
    assert {m for m, deps in GRAPH.items() if layer_of(m) == "client"
            and "llmreg.store.local" in deps} == {"llmreg.client.cache"}
    # The read-only path itself stays on the standard library: no engine, no models.
    assert GRAPH["llmreg.db.readonly"] <= {"llmreg.errors", "llmreg.store.local"}


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    counter = itertools.count()
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = next(counter)
        stack.append(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                cycles.append(sorted([v, *component]))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert cycles == []


def test_the_cycle_check_can_fail() -> None:
    assert "llmreg.bundle.schema" in GRAPH["llmreg.client.remote"]
    assert "llmreg.bundle.render" in GRAPH["llmreg.bundle.schema"]  # a lazy import is seen
    assert "llmreg.bundle.schema" not in GRAPH["llmreg.bundle.render"]


def _outside_store_and_service() -> list[Path]:
    # llmreg.client.cache: the client's own disk cache, a LocalStore of manifests.
    return [p for m, p in MODULES.items()
            if not m.startswith(("llmreg.store", "llmreg.service"))
            and m != "llmreg.client.cache"] + \
        sorted((ROOT / "cli").rglob("*.py"))


@pytest.mark.parametrize("path", _outside_store_and_service(), ids=lambda p: p.name)
def test_only_the_service_and_the_stores_touch_a_blob_store(path: Path) -> None:
    """No ``isinstance`` on a store class, no store class built, no method called on a
    ``.store``, outside ``llmreg/service`` and ``llmreg/store`` (the client's disk cache
    is ``llmreg.client.cache``)."""
    store_classes = {"BlobStore", "LocalStore", "MemoryStore", "S3Store"}
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            assert node.id not in store_classes, f"{path}:{node.lineno} uses {node.id}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            assert node.value.attr != "store", \
                f"{path}:{node.lineno} calls .store.{node.attr} around the service"


# The CLI calls the public API (`llmreg`, `llmreg.errors`). Anything else it imports is
# listed here with its reason; a new one fails until it is listed (or moved behind the API).
CLI_EXCEPTIONS = {
    "llmreg.bundle.digest": "short(): the 12-digit display form of a digest",
    "llmreg.bundle.diff": "the diff's record types, printed as coloured text",
    "llmreg.bundle.directory": "reading a bundle folder the user names (a path, not a ref)",
    "llmreg.bundle.names": "check_name(): `register` checks --name and every manifest's name "
                           "before it writes any of several folders",
    "llmreg.bundle.parse": "load_json(): --vars and --metrics files are parsed as manifests "
                           "are (a key named twice is refused)",
    "llmreg.bundle.pinning": "the provider names, as the choices of --default-model",
    "llmreg.client.remote": "typing only: connect() returns a Client or a RemoteClient",
    "llmreg.policy": "`init` writes the default policy; `policy check` loads a file",
    "llmreg.settings": "the folder name `init` creates; the --read-auth choices",
    "llmreg.types": "result records and the literals the CLI's choices are read from",
    "llmreg.teams": "parse_teams(): `token create --team TEAM:ROLE` is checked before a call",
    "llmreg.service.mirror.keys": "`mirror keygen|rotate` make signing keys, no registry",
    "llmreg.client.mirror_reader": "`audit verify --mirror` reads the signed audit head "
                                   "through the verified mirror client",
    "llmreg.service.mirror.publisher": "AUDIT_HEAD: where a mirror signs the audit head",
}


def test_the_cli_imports_the_public_api_and_listed_exceptions_only() -> None:
    used: set[str] = set()
    for path in sorted((ROOT / "cli").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                used.add(node.module)
            elif isinstance(node, ast.Import):
                used.update(a.name for a in node.names)
    llmreg_modules = {m for m in used if m == "llmreg" or m.startswith("llmreg.")}
    unlisted = llmreg_modules - {"llmreg", "llmreg.errors"} - set(CLI_EXCEPTIONS)
    assert unlisted == set(), f"the CLI imports {sorted(unlisted)}: list why, or use the API"
    stale = set(CLI_EXCEPTIONS) - llmreg_modules
    assert stale == set(), f"listed but no longer imported by the CLI: {sorted(stale)}"
