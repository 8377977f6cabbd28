"""OpenTelemetry: a resolve and a built request put their attributes on the app's span
(checked with the real SDK's in-memory exporter); without OpenTelemetry nothing of it is
imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmreg
from llmreg.client.remote import RemoteClient
from llmreg.server.app import create_app
from llmreg.service import RegistryService
from llmreg.settings import Settings
from tests.conftest import EXAMPLES, free_port

VARS = {"subject": "Refund", "body": "Where is my refund?"}


@pytest.fixture
def tracer() -> tuple[object, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("app"), exporter


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / ".llmreg"
    with llmreg.connect(home, create=True) as reg:
        reg.log_bundle(EXAMPLES / "ticket-classifier", message="first")
        reg.promote("ticket-classifier@1", to="staging", reason="try")
    return home


def test_an_app_span_carries_the_bundle_and_the_genai_request(
        home: Path, tracer: tuple[object, InMemorySpanExporter]) -> None:
    t, exporter = tracer
    with llmreg.connect(home) as reg, t.start_as_current_span("handle-ticket"):  # type: ignore[attr-defined]
        bundle = reg.resolve("ticket-classifier", env="staging")
        request = bundle.render(**VARS).openai_request()
    (span,) = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs["llmreg.bundle.name"] == "ticket-classifier"
    assert attrs["llmreg.bundle.version"] == 1
    assert attrs["llmreg.bundle.digest"] == bundle.digest
    assert attrs["llmreg.bundle.env"] == "staging"
    assert attrs["llmreg.cache.served"] is False
    assert attrs["gen_ai.system"] == "openai"
    assert attrs["gen_ai.request.model"] == request["model"]
    if "temperature" in request:
        assert attrs["gen_ai.request.temperature"] == request["temperature"]


def test_an_anthropic_request_names_its_system(
        home: Path, tracer: tuple[object, InMemorySpanExporter]) -> None:
    t, exporter = tracer
    with llmreg.connect(home) as reg, t.start_as_current_span("call"):  # type: ignore[attr-defined]
        reg.resolve("ticket-classifier@1").render(**VARS).anthropic_request()
    attrs = dict(exporter.get_finished_spans()[0].attributes or {})
    assert attrs["gen_ai.system"] == "anthropic"
    assert attrs["llmreg.bundle.version"] == 1 and "llmreg.bundle.env" not in attrs


def test_a_cached_answer_says_so_and_how_stale(
        home: Path, tmp_path: Path, tracer: tuple[object, InMemorySpanExporter]) -> None:
    t, exporter = tracer
    svc = RegistryService.open_home(home)
    token, _ = svc.access.create_token("app", "reader", created_by="t")
    app = create_app(Settings(read_auth="token", resolve_ttl=0), service=svc)
    dead = f"http://127.0.0.1:{free_port()}"  # a port nothing listens on
    # The first answer comes from the app (in process), under that URL; then it is gone.
    with TestClient(app, base_url=dead) as http:
        RemoteClient(dead, token=token, http=http,
                     cache=tmp_path / "cache").resolve("ticket-classifier", env="staging")
    svc.close()
    offline = RemoteClient(dead, token=token, cache=tmp_path / "cache")
    with t.start_as_current_span("startup"):  # type: ignore[attr-defined]
        got = offline.resolve("ticket-classifier", env="staging")
    attrs = dict(exporter.get_finished_spans()[0].attributes or {})
    assert got.served_from_cache and attrs["llmreg.cache.served"] is True
    assert attrs["llmreg.cache.stale_seconds"] >= 0
    assert attrs["llmreg.bundle.digest"] == got.digest


def test_no_span_no_attributes(home: Path, tracer: tuple[object, InMemorySpanExporter]
                               ) -> None:
    _, exporter = tracer
    with llmreg.connect(home) as reg:
        reg.resolve("ticket-classifier", env="staging").render(**VARS).openai_request()
    assert exporter.get_finished_spans() == ()


def test_without_opentelemetry_nothing_of_it_is_imported(home: Path) -> None:
    code = ("import sys, llmreg\n"
            f"reg = llmreg.connect({str(home)!r})\n"
            "b = reg.resolve('ticket-classifier', env='staging')\n"
            f"b.render(**{VARS!r}).openai_request()\n"
            f"b.render(**{VARS!r}).anthropic_request()\n"
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stderr
