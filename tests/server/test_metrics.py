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


# The resolve-latency histogram: its buckets as a scrape shows them (le is inclusive).
BUCKETS = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
           "1.0", "2.5", "5.0", "+Inf"]


def buckets(text: str, cache: str) -> dict[str, float]:
    return {le: value(text, "llmreg_resolve_duration_seconds_bucket", cache=cache, le=le)
            for le in BUCKETS}


def test_resolve_latency_buckets_are_pinned_including_past_the_last_bound() -> None:
    """Each bound once exactly and once half as much again (into the next bucket; past
    5 s into +Inf), plus one faster than the first bound and one of 11 days."""
    seconds = [0.0001, *(b for bound in metrics.LATENCY_BUCKETS for b in (bound, bound * 1.5)),
               1e6]
    m = metrics.ServerMetrics(environments={"staging": "staging"})
    before, _ = metrics.exposition()
    for s in seconds:
        m.resolved("tc", "staging", 200, s, hit=True)  # no event loop: written at once
    after, _ = metrics.exposition()
    old, new = buckets(before.decode(), "hit"), buckets(after.decode(), "hit")
    assert {le: new[le] - old[le] for le in BUCKETS} == {
        "0.0005": 2, "0.001": 4, "0.0025": 6, "0.005": 8, "0.01": 10, "0.025": 12,
        "0.05": 14, "0.1": 16, "0.25": 18, "0.5": 20, "1.0": 22, "2.5": 24, "5.0": 26,
        "+Inf": 28}
    count = "llmreg_resolve_duration_seconds_count"
    total = "llmreg_resolve_duration_seconds_sum"
    assert value(after.decode(), count, cache="hit") - value(before.decode(), count,
                                                             cache="hit") == 28
    assert value(after.decode(), total, cache="hit") - value(before.decode(), total,
                                                             cache="hit") == \
        pytest.approx(sum(seconds))


def test_a_slow_resolve_is_answered_and_counted(svc: RegistryService,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolve that takes 3 s, then one that takes 7 s (a clock that jumps): both
    answer 200 and land in their buckets (2.5-5 s, and past the last bound)."""
    from llmreg.server.routes import resolve

    reader, _ = svc.access.create_token("app", "reader", created_by="t")
    auth = {"Authorization": f"Bearer {reader}"}
    clock = [0.0]
    step = [3.0]

    def slow() -> float:
        clock[0] += step[0]  # read at the start and at the end of each resolve
        return clock[0]

    with app_with(svc, "token") as http:
        before = http.get("/metrics", headers=auth).text
        monkeypatch.setattr(resolve, "perf_counter", slow)
        assert http.get("/v1/resolve/tc/staging", headers=auth).status_code == 200  # a miss
        step[0] = 7.0
        assert http.get("/v1/resolve/tc/staging", headers=auth).status_code == 200  # a hit
        monkeypatch.undo()
        after = http.get("/metrics", headers=auth).text
    for cache, landed in (("miss", "5.0"), ("hit", "+Inf")):
        old, new = buckets(before, cache), buckets(after, cache)
        grew = {le for le in BUCKETS if new[le] > old[le]}
        assert grew == set(BUCKETS[BUCKETS.index(landed):]), cache


ODD = ["BREW", "PROPFIND", "MKCOL", "PURGE", "X-ANY", "get", "Post", "SEARCH", "QUERY"]


def _series(http: TestClient) -> int:
    return sum(1 for line in http.get("/metrics").text.splitlines()
               if line and not line.startswith("#"))


def _odd_round(http: TestClient, methods: list[str], seed: int) -> None:
    import random
    import string

    rng = random.Random(seed)
    paths = ["/v1/names", "/v1/promotions", "/v1/tokens", "/v1/names/tc/versions", "/",
             "/static/style.css", "/healthz", "/metrics", "/v1/resolve/tc/staging"]
    paths += ["/" + "".join(rng.choices(string.ascii_lowercase + "/%", k=20))
              for _ in range(10)]
    for method in methods:
        for path in paths:
            http.request(method, path)


def test_odd_methods_and_random_paths_cannot_grow_the_series(svc: RegistryService) -> None:
    """Every label value comes from a closed set: after one round of odd requests, any
    number of other odd methods and random paths adds no series."""
    with TestClient(create_app(Settings(read_auth="open", metrics="public"),
                               service=svc)) as http:
        _odd_round(http, ODD, seed=0)
        settled = _series(http)
        for n in range(1, 4):
            _odd_round(http, [f"{m}{n}" for m in ODD] + [f"M{n}{i}" for i in range(40)],
                       seed=n)
            assert _series(http) == settled
        text = http.get("/metrics").text
        from llmreg.server.declared import declared_routes
    methods = set(re.findall(r'method="([^"]*)"', text))
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert methods <= metrics.METHODS | {metrics.OTHER}
    assert metrics.OTHER in methods
    declared = {d.path for d in declared_routes(http.app.routes)}
    assert routes <= declared | {metrics.UNKNOWN}
    assert metrics.UNKNOWN in routes


@pytest.mark.parametrize(("method", "route", "label"), [
    ("POST", "/v1/promotions", ("POST", "/v1/promotions")),
    ("BREW", "/v1/promotions", ("_other", "/v1/promotions")),
    ("post", "/v1/promotions", ("_other", "/v1/promotions")),
    ("DELETE", "/v1/anything/else", ("DELETE", "_unknown")),
    ("X" * 1000, "/" + "y" * 1000, ("_other", "_unknown")),
    ("PATCH", "", ("PATCH", "_unknown"))])
def test_a_write_is_labelled_from_the_closed_sets(method: str, route: str,
                                                  label: tuple[str, str]) -> None:
    m = metrics.ServerMetrics(environments={})
    m.routes = frozenset({"/v1/promotions"})
    before = m.write_seconds.labels(*label, "418")._sum.get()
    m.wrote(method, route, 418, 0.5)
    assert m.write_seconds.labels(*label, "418")._sum.get() == before + 0.5


def test_every_family_is_exposed_with_its_exact_name_help_and_type(svc: RegistryService
                                                                   ) -> None:
    with app_with(svc, "public") as http:
        lines = set(http.get("/metrics").text.splitlines())
    # (The process's registry may hold other tests' families too: each line is looked for.)
    for line in [
        "# HELP llmreg_resolves_total Resolve requests by name, environment and status.",
        "# TYPE llmreg_resolves_total counter",
        "# HELP llmreg_resolve_duration_seconds Time to answer a resolve request.",
        "# TYPE llmreg_resolve_duration_seconds histogram",
        "# HELP llmreg_resolve_cache_total Resolve requests answered from the in-memory "
        "cache (hit) or not (miss).",
        "# TYPE llmreg_resolve_cache_total counter",
        "# HELP llmreg_write_duration_seconds Time to answer a write request, by route.",
        "# TYPE llmreg_write_duration_seconds histogram",
        "# HELP llmreg_promotions_total Slot moves through this server, by environment.",
        "# TYPE llmreg_promotions_total counter",
        "# HELP llmreg_gate_failures_total Promotions refused by the policy's gates.",
        "# TYPE llmreg_gate_failures_total counter"]:
        assert line in lines, line
