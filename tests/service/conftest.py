"""The service on a fresh embedded registry (SQLite). A test module that must run on both
databases takes :func:`on_each_database` as its ``svc``:
``svc = pytest.fixture(on_each_database, name="svc")``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llmreg.service import RegistryService


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[RegistryService]:
    service = RegistryService.open_home(tmp_path / "reg")
    yield service
    service.close()


def on_each_database(tmp_path: Path, database_url: str | None) -> Iterator[RegistryService]:
    """The core service on each metadata backend (SQLite, PostgreSQL)."""
    service = RegistryService.open_home(tmp_path / "reg", database_url=database_url)
    yield service
    service.close()
