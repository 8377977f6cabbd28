"""Shared fixtures: every test gets a clean LLMREG_* environment and its own folders."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import llmreg
from tests.receiver import Receiver

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "bundles"
EXAMPLE_NAMES = ("meeting-summariser", "support-rag", "ticket-classifier")


@pytest.fixture(autouse=True)
def clean_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clear LLMREG_* and point LLMREG_HOME (and the user state folder) at fresh folders;
    run in tmp_path."""
    for key in list(os.environ):
        if key.startswith("LLMREG_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LLMREG_HOME", str(tmp_path / "home" / ".llmreg"))
    monkeypatch.setenv("LLMREG_USER", "tester")
    # The client cache's key lives in the user state folder: each test has its own.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "home" / "state"))
    monkeypatch.chdir(tmp_path)
    # Code under test may set variables for its own children (`serve` sets
    # PROMETHEUS_MULTIPROC_DIR for its workers, then removes that folder): none of it
    # outlives the test, whichever test runs next on this worker.
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A writable copy of bundles/ (tests may edit it)."""
    dest = tmp_path / "bundles"
    shutil.copytree(EXAMPLES, dest)
    return dest


@pytest.fixture(scope="session")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One SeaweedFS S3 server for the whole session (started on first use)."""
    from tests.s3 import start_weed

    yield from start_weed(tmp_path_factory.mktemp("weed"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 (tests/receiver.py), stopped after the test."""
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Run a test on each metadata backend: None means the embedded SQLite default."""
    if request.param == "sqlite":
        yield None
        return
    from tests.pg import fresh_database

    yield from fresh_database()


@pytest.fixture
def reg() -> Iterator[llmreg.Client]:
    """A client on the embedded registry at LLMREG_HOME (created)."""
    with llmreg.connect(create=True) as client:
        yield client


def minimal(**overrides: object) -> dict[str, object]:
    """The smallest valid manifest dict, with overrides."""
    data: dict[str, object] = {
        "model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
        "template": {"source": "Q: {{ q }}", "variables": ["q"]},
    }
    data.update(overrides)
    return data


# -- servers in subprocesses ------------------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until_ready(url: str, timeout: float = 60) -> bool:
    """Wait for ``url``'s ``/readyz`` to answer 200; False when ``timeout`` seconds pass."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(0.1)
    return False


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc``; kill it if it has not ended within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# -- markers that a laptop run relies on ----------------------------------------------
# `pytest -m "not postgres and not slow"` must need no server and no MLflow venv: a test
# that starts MLflow (through the mlflow_server fixture) says so with both markers.


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _group_shared_fixtures(items)
    unmarked = [item.nodeid for item in items
                if "mlflow_server" in getattr(item, "fixturenames", ())
                and not (item.get_closest_marker("mlflow") and item.get_closest_marker("slow"))]
    if unmarked:
        raise pytest.UsageError("these tests start MLflow (the mlflow_server fixture) but do "
                                "not carry both @pytest.mark.mlflow and @pytest.mark.slow: "
                                + ", ".join(unmarked))


# -- the suite on several cores (pytest-xdist, `-n` in pyproject.toml's addopts) --------
# A file whose tests share a module- or session-scoped fixture of ours (a server, a built
# wheel, the quickstart's registry) runs on one worker (--dist loadgroup), so that the
# fixture is built once; every other test goes to whichever worker is free.

TESTS = ROOT / "tests"


def _group_shared_fixtures(items: list[pytest.Item]) -> None:
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        for defs in info.name2fixturedefs.values():
            code = getattr(defs[-1].func, "__code__", None)
            if (defs[-1].scope != "function" and code is not None
                    and Path(code.co_filename).is_relative_to(TESTS)):
                item.add_marker(pytest.mark.xdist_group(str(item.path.relative_to(ROOT))))
                break


# -- coverage floors ------------------------------------------------------------------
# coverage.py enforces one combined figure (fail_under); branch coverage alone is
# enforced here, against [tool.llmreg.coverage] branch_floor in pyproject.toml.

_coverage_summary: list[str] = []


def _branch_floor() -> float:
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as fh:
        return float(tomllib.load(fh)["tool"]["llmreg"]["coverage"]["branch_floor"])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    plugin = session.config.pluginmanager.getplugin("_cov")
    controller = getattr(plugin, "cov_controller", None)
    if controller is None or getattr(plugin, "cov_total", None) is None:
        return  # coverage is off (--no-cov) or this is an xdist worker
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "coverage.json"
        controller.cov.json_report(outfile=str(report))
        totals = json.loads(report.read_text())["totals"]
    line, branch = totals["percent_statements_covered"], totals["percent_branches_covered"]
    floor = _branch_floor()
    _coverage_summary.append(
        f"line coverage {line:.2f}% ({totals['covered_lines']}/{totals['num_statements']}), "
        f"branch coverage {branch:.2f}% ({totals['covered_branches']}/"
        f"{totals['num_branches']}); branch floor {floor:g}%")
    if branch < floor:
        _coverage_summary.append(f"FAIL branch coverage {branch:.2f}% is below the floor "
                                 f"{floor:g}% (pyproject.toml [tool.llmreg.coverage])")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    for message in _coverage_summary:
        terminalreporter.write_line(message, red=message.startswith("FAIL"), bold=True)
