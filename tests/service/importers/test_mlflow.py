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
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import llmreg
from llmreg.errors import (
    ConfigError,
    FloatingModelIdError,
    IntegrityError,
    PayloadTooLargeError,
    RegistryUnavailableError,
    UnknownEnvironmentError,
)
from llmreg.service.importers import mlflow as m
from tests.conftest import ROOT, free_port
from tests.service.importers.hostile import ROOT as AT
from tests.service.importers.hostile import HostileMlflow, Reply, forever

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


# -- a hostile tracking server: every read is bounded, and a bound changes nothing ---------


CEILING = 96 * 1024 * 1024  # bytes of Python memory an import may peak at, here


@pytest.fixture
def hostile() -> Iterator[HostileMlflow]:
    server = HostileMlflow().start()
    yield server
    server.close()


def refused(home: Path, uri: str, error: type[Exception] = RegistryUnavailableError,
            limit: float = 10, memory: bool = False) -> str:
    """Import ``uri`` into ``home``: it must fail with ``error`` within ``limit`` seconds
    (with ``memory``, in Python memory under :data:`CEILING`), in one line, with nothing
    registered and no blob stored; returns the message."""
    import tracemalloc

    if memory:
        tracemalloc.start()
    started = time.monotonic()
    try:
        with llmreg.connect(home, create=True) as reg, pytest.raises(error) as info:
            reg.import_mlflow(uri)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    took = time.monotonic() - started
    assert took < limit, f"the import took {took:.1f} s"
    assert peak < CEILING, f"the import peaked at {peak / 1e6:.0f} MB"
    message = str(info.value)
    assert "\n" not in message and len(message) < 600
    _nothing_written(home)
    assert not [p for p in (home / "blobs").rglob("*") if p.is_file()], "a blob was stored"
    return message


def test_the_honest_fake_imports(hostile: HostileMlflow, tmp_path: Path) -> None:
    with llmreg.connect(tmp_path / ".llmreg", create=True) as reg:
        report = reg.import_mlflow(hostile.uri)
    assert [(v.name, v.kind) for v in report.versions] == [("m", "weights")]
    assert [p for p in (tmp_path / ".llmreg" / "blobs").rglob("*") if p.is_file()]


def test_the_bounds_are_the_documented_ones() -> None:
    from llmreg.server.guard import MAX_BLOB

    assert m.MAX_ARTIFACT == MAX_BLOB == 64 * 1024**3  # an artifact is checked as an upload
    assert (m.MAX_ANSWER, m.MAX_PAGES, m.MAX_ITEMS) == (16 * 1024 * 1024, 200, 10_000)
    assert m.MAX_ANSWERS == 256 * 1024 * 1024
    assert (m.MAX_FOLDER_DEPTH, m.MAX_FOLDERS) == (32, 1_000)
    assert (m.REQUEST_DEADLINE, m.GRACE, m.MIN_RATE, m.IMPORT_DEADLINE) == (
        60.0, 30.0, 64 * 1024, 6 * 3600.0)
    assert m.MlflowSource("http://127.0.0.1:9").timeout == 30.0


# bytes: huge or endless answers

@pytest.mark.parametrize("reply", [
    Reply(chunks=forever(b"[" * 65536)),  # endless, chunked
    Reply(chunks=forever(b" " * 65536), length=3 * 1024**3),  # a 3 GB answer, announced
    Reply(chunks=forever(b'{"registered_models": [' + b'{"name": "x"},' * 4000)),
], ids=["endless-chunked", "3GB-content-length", "endless-valid-prefix"])
def test_an_answer_past_its_byte_limit_is_refused(hostile: HostileMlflow, tmp_path: Path,
                                                  reply: Reply) -> None:
    hostile.route = lambda path, q: reply if path.endswith("registered-models/search") else None
    message = refused(tmp_path / ".llmreg", hostile.uri, memory=True)
    assert message == (f"MLflow at {hostile.uri} answered GET mlflow/registered-models/search "
                       f"with more than {m.MAX_ANSWER} bytes, the limit of one answer; "
                       "nothing was imported; is --tracking-uri an MLflow tracking server?")


def test_an_answer_of_exactly_the_byte_limit_is_read(hostile: HostileMlflow,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.dumps({"registered_models": [{"name": "m"}]}).encode()
    monkeypatch.setattr(m, "MAX_ANSWER", len(body))
    hostile.route = lambda path, q: Reply(body=body) if "filter" not in q and \
        path.endswith("registered-models/search") else None
    src = m.MlflowSource(hostile.uri)
    assert [x["name"] for x in src.registered_models(prompts=False)] == ["m"]
    monkeypatch.setattr(m, "MAX_ANSWER", len(body) - 1)
    with pytest.raises(RegistryUnavailableError, match=f"more than {len(body) - 1} bytes"):
        src.registered_models(prompts=False)
    src.close()


# counts: pages, folders, files

@pytest.mark.parametrize("page", [
    lambda n: {"next_page_token": "again"},  # empty pages, the same token forever
    lambda n: {"next_page_token": f"t{n}"},  # empty pages, a new token each time
    lambda n: {"registered_models": [{"name": f"m{n}"}], "next_page_token": f"t{n}"},
    lambda n: {"registered_models": [], "next_page_token": "x" * 1000},
], ids=["same-token", "new-tokens", "one-item-a-page", "long-token"])
def test_pages_without_end_are_refused(hostile: HostileMlflow, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, page) -> None:
    monkeypatch.setattr(m, "MAX_PAGES", 20)  # the real one is pinned above
    served = iter(range(10**6))
    hostile.route = lambda path, q: Reply(page(next(served))) \
        if path.endswith("registered-models/search") else None
    message = refused(tmp_path / ".llmreg", hostile.uri, limit=30)
    assert message.startswith(f"MLflow at {hostile.uri} answered GET mlflow/registered-models"
                              f"/search with more than {m.MAX_PAGES} pages (the limit; ")
    assert message.endswith("and still a next_page_token); nothing was imported; is "
                            "--tracking-uri an MLflow tracking server?")
    assert hostile.asked.count("mlflow/registered-models/search") == m.MAX_PAGES


def test_a_listing_of_exactly_the_page_limit_is_read(hostile: HostileMlflow,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "MAX_PAGES", 3)
    pages = {None: ("a", "t1"), "t1": ("b", "t2"), "t2": ("c", None)}
    hostile.route = lambda path, q: Reply({"registered_models": [{"name": pages[
        q.get("page_token")][0]}], "next_page_token": pages[q.get("page_token")][1]}) \
        if path.endswith("registered-models/search") else None
    src = m.MlflowSource(hostile.uri)
    assert [x["name"] for x in src.registered_models(prompts=False)] == ["a", "b", "c"]
    pages["t2"] = ("c", "t3")
    pages["t3"] = ("d", None)
    with pytest.raises(RegistryUnavailableError, match="more than 3 pages"):
        src.registered_models(prompts=False)
    src.close()


def folders(depth_of: Callable[[str], list[dict[str, object]]]):  # type: ignore[no-untyped-def]
    return lambda path, q: Reply({"files": depth_of(q["path"])}) \
        if path == "mlflow-artifacts/artifacts" else None


@pytest.mark.parametrize("listing", [
    lambda p: [{"path": "d", "is_dir": True}],  # one folder inside another, forever
    lambda p: [{"path": "d", "is_dir": True}, {"path": "f", "file_size": 1}],
    lambda p: [{"path": "a" * 200, "is_dir": True}],  # long names: long paths
], ids=["deep", "deep-with-files", "deep-long-names"])
def test_folders_without_a_bottom_are_refused(hostile: HostileMlflow, tmp_path: Path,
                                              listing) -> None:
    hostile.route = folders(listing)
    message = refused(tmp_path / ".llmreg", hostile.uri)
    assert message.startswith(f"MLflow at {hostile.uri}: '{AT}/")
    assert message.endswith(f"is more than {m.MAX_FOLDER_DEPTH} folders deep, the limit; "
                            "nothing was imported; flatten the model's artifact folders")
    assert hostile.asked.count("mlflow-artifacts/artifacts") == m.MAX_FOLDER_DEPTH + 1


@pytest.mark.parametrize("listing", [
    lambda p: [{"path": f"d{i}", "is_dir": True} for i in range(40)],  # wide and deep
    lambda p: [{"path": f"d{i}", "is_dir": True} for i in range(2000)] if p == AT else [],
], ids=["every-folder-wide", "one-wide-folder"])
def test_too_many_folders_are_refused(hostile: HostileMlflow, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, listing) -> None:
    monkeypatch.setattr(m, "MAX_FOLDERS", 20)  # the real one is pinned above
    hostile.route = folders(listing)
    message = refused(tmp_path / ".llmreg", hostile.uri)
    assert message == (f"MLflow at {hostile.uri}: '{AT}' holds more than {m.MAX_FOLDERS} "
                       "artifact folders, the limit per model version; nothing was imported; "
                       "package the model's files in fewer folders")
    assert hostile.asked.count("mlflow-artifacts/artifacts") == m.MAX_FOLDERS


def test_folder_bounds_hold_exactly_at_the_limit(hostile: HostileMlflow,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "MAX_FOLDER_DEPTH", 2)
    monkeypatch.setattr(m, "MAX_FOLDERS", 3)
    tree = {AT: [{"path": "a", "is_dir": True}, {"path": "top", "file_size": 1}],
            f"{AT}/a": [{"path": "b", "is_dir": True}],
            f"{AT}/a/b": [{"path": "w", "file_size": "2"}]}
    hostile.route = folders(lambda p: tree.get(p, []))
    src = m.MlflowSource(hostile.uri)
    assert src.artifact_files(AT) == [("a/b/w", 2), ("top", 1)]  # 3 folders, 2 deep
    tree[f"{AT}/a/b"].append({"path": "c", "is_dir": True})
    with pytest.raises(RegistryUnavailableError, match="a/b/c' is more than 2 folders deep"):
        src.artifact_files(AT)
    monkeypatch.setattr(m, "MAX_FOLDER_DEPTH", 3)
    with pytest.raises(RegistryUnavailableError, match="more than 3 artifact folders"):
        src.artifact_files(AT)
    src.close()


def test_a_folder_of_too_many_files_is_refused(hostile: HostileMlflow, tmp_path: Path) -> None:
    hostile.route = folders(lambda p: [{"path": f"f{i}", "file_size": 1}
                                       for i in range(m.MAX_ITEMS + 5)])
    message = refused(tmp_path / ".llmreg", hostile.uri, error=ConfigError)
    assert message == (f"'{AT}' holds more than {m.MAX_ITEMS} files; llmreg imports at most "
                       "that many per model version")


# time: drips, stalls, and the whole import

@pytest.mark.parametrize("reply", [
    Reply(chunks=forever(b" "), every=0.2),  # a JSON answer a byte at a time
    Reply(chunks=forever(b'{"registered_models": []' + b" " * 10), every=0.3),
], ids=["drip", "drip-valid-prefix"])
def test_an_answer_that_drips_is_refused_at_the_request_deadline(
        hostile: HostileMlflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        reply: Reply) -> None:
    monkeypatch.setattr(m, "REQUEST_DEADLINE", 1.0)
    hostile.route = lambda path, q: reply if path.endswith("registered-models/search") else None
    started = time.monotonic()
    message = refused(tmp_path / ".llmreg", hostile.uri)
    assert 0.9 < time.monotonic() - started < 5
    assert message == (f"MLflow at {hostile.uri} took more than 1 s over GET mlflow/registered"
                       "-models/search, the limit per request; nothing was imported; check "
                       "the server's health")


def test_a_server_that_stalls_is_refused_at_the_read_timeout(hostile: HostileMlflow) -> None:
    hostile.route = lambda path, q: Reply(chunks=forever(b""), every=0.05, length=100)
    src = m.MlflowSource(hostile.uri, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError) as info:
        src.registered_models(prompts=True)
    assert 0.4 < time.monotonic() - started < 5
    assert str(info.value) == (f"MLflow at {hostile.uri} sent nothing for 0.5 s during GET "
                               "mlflow/registered-models/search; nothing was imported; check "
                               "the server's health")
    src.close()


def test_the_whole_import_ends_at_its_deadline(hostile: HostileMlflow, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Each answer is quick enough, and valid, but they never end."""
    monkeypatch.setattr(m, "IMPORT_DEADLINE", 1.5)
    served = iter(range(10**6))
    hostile.route = lambda path, q: Reply(body=json.dumps(
        {"next_page_token": f"t{next(served)}"}).encode(), chunks=None) \
        if path.endswith("registered-models/search") and not time.sleep(0.2) else None
    started = time.monotonic()
    message = refused(tmp_path / ".llmreg", hostile.uri)
    assert 1.4 < time.monotonic() - started < 5
    assert message == (f"MLflow at {hostile.uri}: the import ran past its limit of 1.5 s at "
                       "GET mlflow/registered-models/search; nothing was imported; check the "
                       "server's health, or import from a host closer to it")


# artifacts: checked as an upload, cut at their listed size, paced

def artifact(reply: Reply, size: object = 10):  # type: ignore[no-untyped-def]
    def route(path: str, q: dict[str, str]) -> Reply | None:
        if path == "mlflow-artifacts/artifacts":
            return Reply({"files": [{"path": "w.bin", "file_size": size}]})
        if path == f"mlflow-artifacts/artifacts/{AT}/w.bin":
            return reply
        return None
    return route


@pytest.mark.parametrize("reply", [
    Reply(chunks=forever(b"z" * 65536)),  # listed as 10 bytes, sends without end
    Reply(chunks=forever(b"z" * 65536), length=12 * 1024**3),  # and says 12 GB
    Reply(body=b"z" * 11),  # one byte more
], ids=["endless", "12GB", "one-more"])
def test_an_artifact_longer_than_listed_is_cut_at_the_first_byte_more(
        hostile: HostileMlflow, tmp_path: Path, reply: Reply) -> None:
    hostile.route = artifact(reply)
    message = refused(tmp_path / ".llmreg", hostile.uri, error=IntegrityError, memory=True)
    assert message == (f"MLflow at {hostile.uri} sends more than the 10 bytes it lists for "
                       f"artifact '{AT}/w.bin'; stopped there, nothing was imported")


@pytest.mark.parametrize("size", [m.MAX_ARTIFACT + 1, 10**18])
def test_an_artifact_over_the_upload_limit_is_refused_before_it_is_read(
        hostile: HostileMlflow, tmp_path: Path, size: int) -> None:
    hostile.route = artifact(Reply(chunks=forever(b"z" * 65536)), size=size)
    message = refused(tmp_path / ".llmreg", hostile.uri, error=PayloadTooLargeError)
    assert message == (f"MLflow at {hostile.uri} lists artifact '{AT}/w.bin' at {size} bytes; "
                       f"one blob may hold at most {m.MAX_ARTIFACT} (64 GiB, as for an "
                       "upload); nothing was imported; split the file")
    assert f"mlflow-artifacts/artifacts/{AT}/w.bin" not in hostile.asked


def test_an_artifact_of_exactly_the_upload_limit_is_read(hostile: HostileMlflow,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "MAX_ARTIFACT", 4)
    src = m.MlflowSource(hostile.uri)
    assert src.download(AT, "w.bin", 4, m.hash_only)[1] == 4
    with pytest.raises(PayloadTooLargeError):
        src.download(AT, "w.bin", 5, m.hash_only)
    src.close()


def test_an_artifact_that_drips_is_refused_at_the_minimum_pace(
        hostile: HostileMlflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "GRACE", 0.5)
    monkeypatch.setattr(m, "MIN_RATE", 1000)
    hostile.route = artifact(Reply(chunks=forever(b"z"), every=0.1, length=10**6),
                             size=10**6)
    message = refused(tmp_path / ".llmreg", hostile.uri)
    assert message.startswith(f"MLflow at {hostile.uri} sent artifact '{AT}/w.bin' at ")
    assert message.endswith(" bytes/s; the minimum is 1000 bytes/s after 0.5 s; nothing was "
                            "imported; check the server's health")


def test_a_fast_artifact_is_not_paced(hostile: HostileMlflow,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "GRACE", 0.0)
    monkeypatch.setattr(m, "MIN_RATE", 1)
    hostile.route = artifact(Reply(chunks=lambda: iter([b"z"] * 5), every=0.05), size=5)
    src = m.MlflowSource(hostile.uri)
    assert src.download(AT, "w.bin", 5, m.hash_only)[1] == 5
    src.close()


def test_a_listing_bound_is_hit_before_any_artifact_is_stored(
        hostile: HostileMlflow, tmp_path: Path) -> None:
    """Model ``a`` is fine; model ``b``'s folders have no bottom: ``a``'s artifact is
    never fetched, because every listing is read before the first download."""
    def route(path: str, q: dict[str, str]) -> Reply | None:
        if path == "mlflow/registered-models/search" and "filter" not in q:
            return Reply({"registered_models": [{"name": "a"}, {"name": "b"}]})
        if path == "mlflow/model-versions/search":
            name = q["filter"].split("'")[1]
            return Reply({"model_versions": [{"name": name, "version": "1",
                                              "source": f"mlflow-artifacts:/{name}/{AT}"}]})
        if path == "mlflow-artifacts/artifacts" and q["path"].startswith("b/"):
            return Reply({"files": [{"path": "d", "is_dir": True}]})
        return None

    hostile.route = route
    assert "folders deep" in refused(tmp_path / ".llmreg", hostile.uri)
    assert not [p for p in hostile.asked if p.startswith("mlflow-artifacts/artifacts/")]


# malformed answers: one line each

@pytest.mark.parametrize(("where", "answer", "expected"), [
    ("registered-models/search", {"registered_models": "m"}, "not a list of objects"),
    ("registered-models/search", {"registered_models": [1, 2]}, "not a list of objects"),
    ("registered-models/search", {"registered_models": [{"nom": "m"}]}, "(KeyError: "),
    ("registered-models/search", [1, 2], "something other than a JSON object"),
    ("model-versions/search", {"model_versions": [{"name": "m", "version": "one"}]},
     "ValueError"),
    ("model-versions/search", {"model_versions": [{"name": "m"}]}, "KeyError"),
    ("mlflow-artifacts/artifacts", {"files": [{"path": "../../etc", "is_dir": True}]},
     "not a plain file name"),
    ("mlflow-artifacts/artifacts", {"files": [{"path": "a/b", "file_size": 1}]},
     "not a plain file name"),
    ("mlflow-artifacts/artifacts", {"files": [{"path": "x", "file_size": -1}]},
     "file_size -1, which is not a size in bytes"),
    ("mlflow-artifacts/artifacts", {"files": [{"path": "x", "file_size": "ten"}]},
     "file_size 'ten', which is not a size"),
    ("mlflow-artifacts/artifacts", {"files": [{"path": "x", "file_size": True}]},
     "file_size True"),
    ("mlflow-artifacts/artifacts", {"files": 7}, "TypeError"),
])
def test_malformed_answers_are_one_line(hostile: HostileMlflow, tmp_path: Path, where: str,
                                        answer: object, expected: str) -> None:
    hostile.route = lambda path, q: Reply(answer) if path.endswith(where) and \
        "filter" not in q or path.endswith(where) and where == "model-versions/search" \
        else None
    message = refused(tmp_path / ".llmreg", hostile.uri)
    assert expected in message, message


def test_a_proxy_from_the_environment_is_used(hostile: HostileMlflow,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", hostile.uri)
    src = m.MlflowSource("http://mlflow.invalid:5000")  # only the proxy knows it
    assert [x["name"] for x in src.registered_models(prompts=False)] == ["m"]
    src.close()
    monkeypatch.setenv("NO_PROXY", "mlflow.invalid")
    src = m.MlflowSource("http://mlflow.invalid:5000", timeout=2)
    with pytest.raises(RegistryUnavailableError, match="cannot be reached"):
        src.registered_models(prompts=False)
    src.close()


@pytest.mark.parametrize(("reply", "expected"), [
    (Reply(chunks=lambda: iter([b"ab"]), length=10, close=True),
     "broke off artifact '1/abc/artifacts/w.bin' (RemoteProtocolError: "),
    (Reply({"error_code": "RESOURCE_DOES_NOT_EXIST"}, status=404),
     "answered 404 for artifact '1/abc/artifacts/w.bin'"),
], ids=["cut-short", "404"])
def test_an_artifact_that_fails_midway_is_one_line(hostile: HostileMlflow, tmp_path: Path,
                                                   reply: Reply, expected: str) -> None:
    hostile.route = artifact(reply)
    assert expected in refused(tmp_path / ".llmreg", hostile.uri)


def test_a_json_answer_cut_short_is_one_line(hostile: HostileMlflow, tmp_path: Path) -> None:
    hostile.route = lambda path, q: Reply(chunks=lambda: iter([b'{"regis']), length=100,
                                          close=True)
    message = refused(tmp_path / ".llmreg", hostile.uri)
    assert message.startswith(f"MLflow at {hostile.uri} broke off GET mlflow/registered-models"
                              "/search (RemoteProtocolError: ")


@pytest.mark.parametrize(("value", "size"), [(None, 0), ("12", 12), (7, 7), (0, 0)])
def test_file_sizes_as_mlflow_writes_them(value: object, size: int) -> None:
    assert m._file_size(value, "x") == size


@pytest.mark.parametrize("value", [-1, "-1", "1.5", 1.5, True, "", [1], "1e3"])
def test_file_sizes_that_are_not_sizes(value: object) -> None:
    with pytest.raises(RegistryUnavailableError, match="which is not a size in bytes"):
        m._file_size(value, "x")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "x" * 256, "a\nb", "\x1b[31m"])
def test_file_names_that_are_not_plain_names(name: str) -> None:
    with pytest.raises(RegistryUnavailableError, match="which is not a plain file name") as info:
        m._file_name(name, "root")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["w.bin", "x" * 255, "...", "a b", "é"])
def test_plain_file_names_pass(name: str) -> None:
    assert m._file_name(name, "root") == name


def test_answers_past_their_total_byte_limit_are_refused(
        hostile: HostileMlflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each page is under the limit of one answer, but they are kept: together they are
    bounded too (big items on many pages)."""
    page = {"registered_models": [{"name": "m", "description": "x" * 900}],
            "next_page_token": "again"}
    size = len(json.dumps(page).encode())
    monkeypatch.setattr(m, "MAX_ANSWERS", 2 + 3 * size)  # the prompts' "{}", 3 pages
    hostile.route = lambda path, q: Reply(page) if path.endswith("registered-models/search") \
        and "filter" not in q else None
    message = refused(tmp_path / ".llmreg", hostile.uri)
    assert message == (f"MLflow at {hostile.uri}: its answers came to more than {2 + 3 * size} "
                       "bytes by GET mlflow/registered-models/search, the limit of one import; "
                       "nothing was imported; is --tracking-uri an MLflow tracking server?")
    # exactly the limit after the third page is fine; the fourth is refused
    assert hostile.asked.count("mlflow/registered-models/search") == 1 + 4
