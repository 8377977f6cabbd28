"""The built wheel: the CLI is installed as llmreg_cli, never as a package called `cli`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_wheel_layout(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path),
                    str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("llmreg-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.endswith(".dist-info/") }
    assert "cli" not in tops
    assert {"llmreg", "llmreg_cli"} <= tops
    assert "llmreg_cli/main.py" in names
    assert "llmreg/py.typed" in names
    assert "llmreg/db/migrations/versions/0001_initial.py" in names
    assert "llmreg/db/migrations/env.py" in names
    dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "llmreg = llmreg_cli.main:main" in entry_points
    assert not any(n.startswith(("tests/", "bench/", "bundles/")) for n in names)
