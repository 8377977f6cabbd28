"""/metrics: resolves by name/env/status with bounded labels, latency, cache hits,
promotions and gate failures; access as LLMREG_METRICS says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llmreg.bundle.directory import load_bundle_dir
from llmreg.server import metrics
from llmreg.server.app import create_app
from llmreg.service import RegistryService
from llmreg.settings import Settings
from llmreg.types import Actor
from tests.conftest import EXAMPLES


def value(text: str, metric: str, **labels: str) -> float:
    """The sample of ``metric`` with exactly ``labels`` (0 when absent)."""
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != metric:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if got == labels:
            return float(m.group(3))
    return 0.0


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[RegistryService]:
    service = RegistryService.open_home(tmp_path / ".llmreg")
    bundle, _ = load_bundle_dir(EXAMPLES / "ticket-classifier")
    service.versions.register(bundle, name="tc", message="m", author="ana")
    service.lifecycle.promote("tc@1", "staging", actor=Actor("ana"), reason="r")
    yield service
    service.close()


def app_with(svc: RegistryService, mode: str) -> TestClient:
    return TestClient(create_app(Settings(read_auth="token", resolve_ttl=60, metrics=mode),
                                 service=svc))


def test_resolves_are_counted_with_bounded_labels(svc: RegistryService) -> None:
    reader, _ = svc.access.create_token("app", "reader", created_by="t")
    auth = {"Authorization": f"Bearer {reader}"}
    with app_with(svc, "token") as http:
        before = http.get("/metrics", headers=auth).text
        first = http.get("/v1/resolve/tc/staging", headers=auth)  # a miss, through the route
        http.get("/v1/resolve/tc/staging", headers=auth)  # a hit, in the fast path
        http.get("/v1/resolve/tc/pre-prod", headers=auth)  # an alias: counted as staging
        http.get("/v1/resolve/tc/staging", headers={**auth, "If-None-Match": first.headers["etag"]})
        for i in range(5):  # random names must not become label values
            assert http.get(f"/v1/resolve/nope-{i}/staging", headers=auth).status_code == 404
        http.get("/v1/resolve/tc/nowhere", headers=auth)
        after = http.get("/metrics", headers=auth).text

    def delta(metric: str, **labels: str) -> float:
        return value(after, metric, **labels) - value(before, metric, **labels)

    assert delta("llmreg_resolves_total", name="tc", env="staging", status="200") == 3
    assert delta("llmreg_resolves_total", name="tc", env="staging", status="304") == 1
    assert delta("llmreg_resolves_total", name="_unknown", env="staging", status="404") == 5
    assert delta("llmreg_resolves_total", name="_unknown", env="_unknown", status="404") + \
        delta("llmreg_resolves_total", name="_unknown", env="_unknown", status="400") == 1
    assert "nope-" not in after
    assert delta("llmreg_resolve_cache_total", result="hit") == 2
    assert delta("llmreg_resolve_duration_seconds_count", cache="hit") == 2
    assert delta("llmreg_resolve_cache_total", result="miss") == 8


def test_promotions_gate_failures_and_write_latency(svc: RegistryService) -> None:
    publisher, _ = svc.access.create_token("pat", "publisher", created_by="t")
    auth = {"Authorization": f"Bearer {publisher}"}
    with app_with(svc, "public") as http:
        before = http.get("/metrics").text
        refused = http.post("/v1/promotions", headers=auth,
                            json={"ref": "tc@1", "env": "shadow", "reason": "try"})
        moved = http.post("/v1/rollbacks", headers=auth,
                          json={"name": "tc", "env": "staging", "reason": "r"})
        after = http.get("/metrics").text
    assert refused.status_code in (409, 422)
    assert value(after, "llmreg_gate_failures_total", env="shadow") - \
        value(before, "llmreg_gate_failures_total", env="shadow") == 1
    assert moved.status_code == 409  # nothing to roll back to: no move counted
    assert value(after, "llmreg_promotions_total", env="staging", action="rollback") == \
        value(before, "llmreg_promotions_total", env="staging", action="rollback")
    count = value(after, "llmreg_write_duration_seconds_count", method="POST",
                  route="/v1/promotions", status=str(refused.status_code))
    assert count >= 1


def test_a_promotion_is_counted_by_environment(svc: RegistryService) -> None:
    # The default policy lets registered -> staging through without gates.
    bundle, _ = load_bundle_dir(EXAMPLES / "meeting-summariser")
    svc.versions.register(bundle, name="ms", message="m", author="ana")
    publisher, _ = svc.access.create_token("pat", "publisher", created_by="t")
    with app_with(svc, "public") as http:
        before = value(http.get("/metrics").text, "llmreg_promotions_total", env="staging",
                       action="promote")
        ok = http.post("/v1/promotions", headers={"Authorization": f"Bearer {publisher}"},
                       json={"ref": "ms@1", "env": "pre-prod", "reason": "try"})
        assert ok.status_code == 201, ok.text
        after = value(http.get("/metrics").text, "llmreg_promotions_total", env="staging",
                      action="promote")
    assert after - before == 1


def test_access_follows_the_setting(svc: RegistryService) -> None:
    with app_with(svc, "token") as http:
        assert http.get("/metrics").status_code == 401
    with app_with(svc, "public") as http:
        response = http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
    with app_with(svc, "off") as http:
        assert http.get("/metrics").status_code == 404
        assert http.get("/v1/resolve/nope/staging").status_code == 401  # still served


def test_other_parts_can_add_their_metrics(svc: RegistryService) -> None:
    from prometheus_client.core import GaugeMetricFamily

    lag = metrics.histogram("llmreg_test_lag_seconds", "Lag.", ["format"])
    assert metrics.histogram("llmreg_test_lag_seconds", "Lag.", ["format"]) is lag
    lag.labels("cloudevents").observe(0.2)
    metrics.gauge("llmreg_test_open", "Open.").set(2)
    metrics.add_collector(lambda: [GaugeMetricFamily("llmreg_test_alerts", "A.", value=4)])

    def broken() -> list[GaugeMetricFamily]:
        raise RuntimeError("database down")

    metrics.add_collector(broken)  # left out of the scrape, logged; the rest still served
    with app_with(svc, "public") as http:
        text = http.get("/metrics").text
    assert value(text, "llmreg_test_lag_seconds_count", format="cloudevents") >= 1
    assert value(text, "llmreg_test_open") == 2
    assert value(text, "llmreg_test_alerts") == 4


def test_the_setting_is_checked() -> None:
    from llmreg.errors import ConfigError

    assert Settings.from_env({"LLMREG_METRICS": "public"}).metrics == "public"
    with pytest.raises(ConfigError, match="LLMREG_METRICS='on'"):
        Settings.from_env({"LLMREG_METRICS": "on"})
