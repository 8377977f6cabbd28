"""`llmreg import mlflow` against a real `mlflow server`, filled through MLflow's own client.

The server runs from its own venv (``MLFLOW_PYTHON``, else the venv `scripts/mlflow_env`
makes): MLflow is never a dependency of llmreg. The tests that start it carry the
``mlflow`` and ``slow`` markers (``-m "not slow"`` or ``-m "not mlflow"`` leaves them
out; tests/conftest.py refuses one that uses the server without both). Selected without
the venv they fail, unless ``LLMREG_MLFLOW_TESTS=off`` says they are off on purpose.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import llmreg
from llmreg.errors import (
    ConfigError,
    FloatingModelIdError,
    RegistryUnavailableError,
    UnknownEnvironmentError,
)
from tests.conftest import ROOT, free_port

DATA = Path(__file__).parent / "mlflow_data"
ALIASES = {"production": "production", "staging": "staging"}
MODEL_MAP = {"gpt-4o": "gpt-4o-2024-08-06"}
VARS = {"summarise": {"text": "a {b} \\u00e9 and {{ x }}", "n": 12},
        "support-chat": {"customer": "Ana", "question": "Where is my refund?"},
        "translate": {"lang": "French", "text": "Good morning"}}
PROMPTS = ("summarise", "support-chat", "translate")


def mlflow_python() -> str | None:
    """MLFLOW_PYTHON, else the venv scripts/mlflow_env creates; None when off on purpose."""
    if os.environ.get("LLMREG_MLFLOW_TESTS", "").lower() == "off":
        return None
    py = os.environ.get("MLFLOW_PYTHON") or str(ROOT / ".cache" / "mlflow-venv" / "bin" /
                                                 "python")
    if not Path(py).exists():
        pytest.fail(f"no MLflow python at {py}: run `export MLFLOW_PYTHON=$(scripts/mlflow_env)`"
                    " (or set LLMREG_MLFLOW_TESTS=off to turn these tests off)")
    return py


@contextlib.contextmanager
def running_mlflow(work: Path, py: str) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite, local artifacts under ``work``), filled once
    through MLflow's own client; yields its URI and stops it on exit."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    mlflow_bin = str(Path(py).parent / "mlflow")
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen(
        [mlflow_bin, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
         "--artifacts-destination", str(work / "artifacts")],
        cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError("mlflow server did not start:\n"
                                     + (work / "server.log").read_text()[-3000:])
            time.sleep(0.3)
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        fill = subprocess.run([py, str(DATA / "fill.py"), uri], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        assert fill.returncode == 0, fill.stderr[-3000:]
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """One real MLflow server for the module, filled once. ``LLMREG_MLFLOW_URI`` names
    one already started and filled by :func:`running_mlflow` (scripts/mutate starts one
    for a whole mutation run instead of one per mutant); the tests only read from it."""
    py = mlflow_python()
    if py is None:
        pytest.skip("LLMREG_MLFLOW_TESTS=off")
    shared = os.environ.get("LLMREG_MLFLOW_URI")
    if shared:
        yield shared, py
        return
    with running_mlflow(tmp_path_factory.mktemp("mlflow"), py) as uri:
        yield uri, py


@pytest.fixture(scope="module")
def imported(mlflow_server: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, llmreg.types.ImportReport]:
    """The registry after one import, shared by the read-only checks below."""
    uri, _ = mlflow_server
    home = tmp_path_factory.mktemp("reg") / ".llmreg"
    with llmreg.connect(home, create=True) as reg:
        report = reg.import_mlflow(uri, map_aliases=ALIASES, model_map=MODEL_MAP)
    return home, report


@pytest.mark.mlflow
@pytest.mark.slow
def test_every_version_arrives_with_its_digest_and_the_aliases_become_slots(
        imported: tuple[Path, llmreg.types.ImportReport]) -> None:
    home, report = imported
    assert report.created == 17 and len(report.versions) == 17
    with llmreg.connect(home) as reg:
        for v in report.versions:
            assert reg.info(f"{v.name}@{v.version}").digest == v.digest
        for name in PROMPTS:
            assert [h.version for h in reg.history(name)] == [1, 2, 3, 4, 5]
            assert reg.info(f"{name}@1").provenance["uri"] == f"prompts:/{name}/1"
        status = {(s.name, s.env): s for s in reg.status()}
        for name in PROMPTS:
            assert status[(name, "production")].version == 3
            assert status[(name, "staging")].version == 5
        assert status[("classifier", "production")].version == 1
        # 'champion' is mapped to nothing: skipped, and said so.
        assert report.skipped_aliases == ["classifier@champion"]
        gates = [g.gate for g in status[("summarise", "production")].gates]
        assert gates[0] == "bypassed-by-import" and all("bypassed-by-import" in g
                                                        for g in gates)
        moves = [e for e in reg.audit() if e.action == "import"]
        assert len(moves) == 7
        assert "bypassed-by-import" in moves[0].detail["reason"]
        assert reg.verify_audit() == len(reg.audit())


@pytest.mark.mlflow
@pytest.mark.slow
def test_prompts_become_templates_with_declared_variables_and_pinned_models(
        imported: tuple[Path, llmreg.types.ImportReport]) -> None:
    home, _ = imported
    with llmreg.connect(home) as reg:
        text = reg.get("summarise@1")
        assert text.template is not None and text.template.variables == ["n", "text"]
        assert text.model is not None and text.model.id == "gpt-4o-2024-08-06"
        assert text.model.parameters.temperature == 0.1
        assert text.model.parameters.stop == ["END"]
        chat = reg.get("support-chat@2")
        assert chat.system_prompt == "You answer support questions (rev 2)."
        assert [e.output for e in chat.few_shot] == ["Shipped {today}."]
        assert chat.model is not None and chat.model.provider == "anthropic"
        mapped = reg.get("translate@1")  # gpt-4o in MLflow, mapped by --model-map
        assert mapped.model is not None and mapped.model.id == "gpt-4o-2024-08-06"


@pytest.mark.mlflow
@pytest.mark.slow
def test_weights_are_pulled_verified_and_keep_their_run(
        imported: tuple[Path, llmreg.types.ImportReport]) -> None:
    home, _ = imported
    with llmreg.connect(home) as reg:
        model = reg.get("classifier@2")
        assert model.kind == "weights"
        names = sorted(a.name for a in model.artifacts)
        assert names == ["tokenizer__vocab.txt", "weights.bin"]
        weights = next(a for a in model.artifacts if a.name == "weights.bin")
        assert weights.size == 256 * 41
        assert reg.verify("classifier@2") == []
        prov = reg.info("classifier@2").provenance
        assert prov["run_id"] and prov["metrics"] == {"accuracy": pytest.approx(0.9)}
        assert prov["params"] == {"lr": "0.02"}
        assert prov["artifact_source"].startswith("mlflow-artifacts:")


@pytest.mark.mlflow
@pytest.mark.slow
def test_rendered_prompts_equal_mlflow_format(
        mlflow_server: tuple[str, str],
        imported: tuple[Path, llmreg.types.ImportReport]) -> None:
    uri, py = mlflow_server
    home, _ = imported
    spec = {name: {"versions": 5, "vars": VARS[name]} for name in PROMPTS}
    out = subprocess.run([py, str(DATA / "render.py"), uri, json.dumps(spec)], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    theirs = json.loads(out.strip().splitlines()[-1])
    with llmreg.connect(home) as reg:
        for name in PROMPTS:
            for v in range(1, 6):
                ours = reg.get(f"{name}@{v}").render(**VARS[name])
                expected = theirs[name][str(v)]
                if isinstance(expected, str):
                    assert ours.to_openai() == [{"role": "user", "content": expected}], (name, v)
                else:
                    assert ours.to_openai() == expected, (name, v)


@pytest.mark.mlflow
@pytest.mark.slow
def test_a_second_import_adds_nothing(
        mlflow_server: tuple[str, str],
        imported: tuple[Path, llmreg.types.ImportReport]) -> None:
    uri, _ = mlflow_server
    home, first = imported
    with llmreg.connect(home) as reg:
        entries = len(reg.audit())
        again = reg.import_mlflow(uri, map_aliases=ALIASES, model_map=MODEL_MAP)
        assert again.created == 0 and not any(s.moved for s in again.slots)
        assert [v.digest for v in again.versions] == [v.digest for v in first.versions]
        assert len(reg.audit()) == entries


@pytest.mark.mlflow
@pytest.mark.slow
def test_a_dry_run_reports_the_same_digests_and_writes_nothing(
        mlflow_server: tuple[str, str],
        imported: tuple[Path, llmreg.types.ImportReport], tmp_path: Path) -> None:
    uri, _ = mlflow_server
    _, real = imported
    with llmreg.connect(tmp_path / ".llmreg", create=True) as reg:
        dry = reg.import_mlflow(uri, map_aliases=ALIASES, model_map=MODEL_MAP, dry_run=True)
        assert [v.digest for v in dry.versions] == [v.digest for v in real.versions]
        assert dry.created == 0 and reg.list() == [] and reg.audit() == []


def _nothing_written(home: Path) -> None:
    with llmreg.connect(home) as reg:
        assert reg.list() == [] and reg.audit() == [] and reg.status() == []


@pytest.mark.mlflow
@pytest.mark.slow
def test_a_floating_model_id_without_a_mapping_stops_the_import(
        mlflow_server: tuple[str, str], tmp_path: Path) -> None:
    uri, _ = mlflow_server
    home = tmp_path / ".llmreg"
    with llmreg.connect(home, create=True) as reg, pytest.raises(FloatingModelIdError) as exc:
        reg.import_mlflow(uri, map_aliases=ALIASES)
    assert "'translate'" in str(exc.value) and "--model-map gpt-4o=" in str(exc.value)
    _nothing_written(home)


@pytest.mark.mlflow
@pytest.mark.slow
def test_an_alias_mapped_to_an_unknown_environment_is_refused(
        mlflow_server: tuple[str, str], tmp_path: Path) -> None:
    uri, _ = mlflow_server
    home = tmp_path / ".llmreg"
    with llmreg.connect(home, create=True) as reg, pytest.raises(UnknownEnvironmentError) as e:
        reg.import_mlflow(uri, map_aliases={"production": "prodution"}, model_map=MODEL_MAP)
    assert "--map-aliases production=prodution" in str(e.value)
    _nothing_written(home)


def test_the_cli_prints_one_line_for_an_unreachable_tracking_uri(tmp_path: Path) -> None:
    from llmreg_cli.main import app

    home = tmp_path / ".llmreg"
    llmreg.connect(home, create=True).close()
    result = CliRunner().invoke(app, ["--registry", str(home), "import", "mlflow",
                                      "--tracking-uri", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "cannot be reached" in result.stderr
    _nothing_written(home)


@pytest.mark.mlflow
@pytest.mark.slow
def test_the_cli_imports_and_reports(mlflow_server: tuple[str, str], tmp_path: Path) -> None:
    from llmreg_cli.main import app

    uri, _ = mlflow_server
    home = tmp_path / ".llmreg"
    llmreg.connect(home, create=True).close()
    args = ["--registry", str(home), "import", "mlflow", "--tracking-uri", uri,
            "--map-aliases", "production=production,staging=staging",
            "--model-map", "gpt-4o=gpt-4o-2024-08-06"]
    result = CliRunner().invoke(app, [*args, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would import 17 new version(s)" in result.stdout
    _nothing_written(home)
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["versions"]) == 17
    bad = CliRunner().invoke(app, [*args[:6], "--map-aliases", "production"])
    assert bad.exit_code == 1 and "each pair is FROM=TO" in bad.stderr


def test_bad_sources_are_named(tmp_path: Path) -> None:
    with llmreg.connect(tmp_path / ".llmreg", create=True) as reg:
        with pytest.raises(ConfigError, match="not an http"):
            reg.import_mlflow("ftp://example")
        with pytest.raises(RegistryUnavailableError, match="cannot be reached"):
            reg.import_mlflow(f"http://127.0.0.1:{free_port()}")


def test_a_server_that_is_not_mlflow_is_named(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    port = free_port()
    proc = subprocess.Popen([shutil.which("python3") or "python3", "-m", "http.server",
                             str(port), "--bind", "127.0.0.1"], cwd=tmp_path / "site",
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        with llmreg.connect(tmp_path / ".llmreg", create=True) as reg, \
                pytest.raises(RegistryUnavailableError, match="answered 404"):
            reg.import_mlflow(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
