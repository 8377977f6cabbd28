"""The service on a fresh embedded registry (SQLite). Test modules that must run on
both databases define their own ``svc`` over the ``database_url`` fixture."""

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
