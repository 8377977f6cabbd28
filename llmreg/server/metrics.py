"""Prometheus metrics of ``llmreg serve``: resolves, latency, cache hits, promotions.

Served at ``/metrics`` in the Prometheus text format, under ``LLMREG_METRICS``:
``token`` (default: the same rule as reads — a reader token, or anyone when reads are
open), ``public`` (anyone), ``off`` (nothing collected, no route).

With several workers (``llmreg serve --workers N``) each process writes its values to
files in ``PROMETHEUS_MULTIPROC_DIR`` (``llmreg serve`` sets up a fresh folder), and a
scrape of any worker sums them all (prometheus-client's multiprocess mode); so
``llmreg_resolves_total`` counts every request whichever worker answered it.

Labels stay bounded: a name or environment appears as a label only once the registry
has answered for it (200/304); unknown names and environments are counted under
``_unknown``, so a client asking for random names cannot grow the label set. No
digests, tokens or versions are labels.

Other parts of the server add their own metrics through the helpers here, once per
process (a second call with the same name returns the same metric)::

    from llmreg.server import metrics
    lag = metrics.histogram("llmreg_webhook_delivery_lag_seconds",
                            "Outbox event to delivered.", ["format"])
    lag.labels("cloudevents").observe(0.4)
    metrics.add_collector(lambda: [gauge_family])  # computed at scrape time

Example:
    >>> m = counter("llmreg_doc_example_total", "An example.", ["kind"])
    >>> m.labels("a").inc()
    >>> counter("llmreg_doc_example_total", "An example.", ["kind"]) is m
    True
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.metrics_core import Metric

UNKNOWN = "_unknown"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0)
MODES = ("off", "public", "token")

_metrics: dict[str, Any] = {}
_collectors: list[Callable[[], Iterable[Metric]]] = []
_registry: CollectorRegistry | None = None


def multiprocess() -> bool:
    """Whether values go to ``PROMETHEUS_MULTIPROC_DIR`` (several workers).

    Example:
        >>> isinstance(multiprocess(), bool)
        True
    """
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def _process_registry() -> CollectorRegistry | None:
    """Where this process's metrics register: none in multiprocess mode (the files are
    the registry), else one registry for the process."""
    global _registry
    if multiprocess():
        return None
    if _registry is None:
        from prometheus_client import CollectorRegistry

        _registry = CollectorRegistry()
    return _registry


def _make(kind: str, name: str, doc: str, labels: Sequence[str], **kwargs: Any) -> Any:
    if name not in _metrics:
        import prometheus_client

        cls = getattr(prometheus_client, kind)
        _metrics[name] = cls(name, doc, list(labels), registry=_process_registry(), **kwargs)
    return _metrics[name]


def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
    """A counter (``name`` ends in ``_total``), created once per process.

    Example:
        >>> counter("llmreg_doc_things_total", "Things.").inc()
    """
    metric: Counter = _make("Counter", name, doc, labels)
    return metric


def histogram(name: str, doc: str, labels: Sequence[str] = (),
              buckets: Sequence[float] = LATENCY_BUCKETS) -> Histogram:
    """A histogram (seconds by default buckets), created once per process.

    Example:
        >>> histogram("llmreg_doc_seconds", "Time.").observe(0.01)
    """
    metric: Histogram = _make("Histogram", name, doc, labels, buckets=tuple(buckets))
    return metric


def gauge(name: str, doc: str, labels: Sequence[str] = (),
          multiprocess_mode: str = "livesum") -> Gauge:
    """A gauge; across workers it is combined by ``multiprocess_mode`` (``livesum``,
    ``max``, ``min``, …). For a value read from the database at scrape time, prefer
    :func:`add_collector`.

    Example:
        >>> gauge("llmreg_doc_open", "Open things.").set(3)
    """
    metric: Gauge = _make("Gauge", name, doc, labels, multiprocess_mode=multiprocess_mode)
    return metric


def add_collector(collect: Callable[[], Iterable[Metric]]) -> None:
    """Add metrics computed at each scrape (e.g. open alerts counted in the database).

    Example:
        >>> from prometheus_client.core import GaugeMetricFamily
        >>> add_collector(lambda: [GaugeMetricFamily("llmreg_doc_alerts", "Open.", value=0)])
    """
    if collect not in _collectors:
        _collectors.append(collect)


class _Collector:
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self.collect = collect


def exposition() -> tuple[bytes, str]:
    """The text format of every metric (summed over workers in multiprocess mode).

    Example:
        >>> body, content_type = exposition()
        >>> content_type.startswith("text/plain")
        True
    """
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    if multiprocess():
        from prometheus_client import multiprocess as mp

        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = _process_registry() or CollectorRegistry()
    scrape = CollectorRegistry()
    scrape.register(_Collector(registry.collect))
    for collect in _collectors:
        scrape.register(_Collector(collect))
    return generate_latest(scrape), CONTENT_TYPE_LATEST


class ServerMetrics:
    """The server's own metrics, with label children cached for the hot path.

    Example:
        >>> m = ServerMetrics(environments={"production": "production"})
        >>> m.resolved("chat", "production", 200, 0.0002, hit=True)
    """

    def __init__(self, environments: dict[str, str]) -> None:
        self.environments = environments  # every name or alias -> canonical name
        self.resolves = counter(
            "llmreg_resolves_total", "Resolve requests by name, environment and status.",
            ["name", "env", "status"])
        self.resolve_seconds = histogram(
            "llmreg_resolve_duration_seconds", "Time to answer a resolve request.",
            ["cache"])
        self.cache = counter(
            "llmreg_resolve_cache_total",
            "Resolve requests answered from the in-memory cache (hit) or not (miss).",
            ["result"])
        self.write_seconds = histogram(
            "llmreg_write_duration_seconds", "Time to answer a write request, by route.",
            ["method", "route", "status"])
        self.promotions = counter(
            "llmreg_promotions_total", "Slot moves through this server, by environment.",
            ["env", "action"])
        self.gate_failures = counter(
            "llmreg_gate_failures_total", "Promotions refused by the policy's gates.",
            ["env"])
        self._children: dict[tuple[str, str, int], Any] = {}
        self._hit = (self.cache.labels("hit"), self.resolve_seconds.labels("hit"))
        self._miss = (self.cache.labels("miss"), self.resolve_seconds.labels("miss"))

    def resolved(self, name: str, env: str, status: int, seconds: float, *,
                 hit: bool) -> None:
        """Count one resolve answer (``name``/``env`` as the caller sent them)."""
        if status not in (200, 304):
            name = UNKNOWN  # only answered slots name their name: bounded by the registry
        key = (name, env, status)
        child = self._children.get(key)
        if child is None:
            if len(self._children) > 10_000:  # raw env spellings of errors: keep it bounded
                self._children.clear()
            child = self._children[key] = self.resolves.labels(
                name, self.environments.get(env, UNKNOWN), str(status))
        child.inc()
        cache, latency = self._hit if hit else self._miss
        cache.inc()
        latency.observe(seconds)

    def wrote(self, method: str, route: str, status: int, seconds: float) -> None:
        """Time one write request."""
        self.write_seconds.labels(method, route, str(status)).observe(seconds)

    def moved(self, env: str, action: str) -> None:
        """Count one promotion or rollback."""
        self.promotions.labels(env, action).inc()

    def refused(self, env: str) -> None:
        """Count one promotion its gates refused."""
        self.gate_failures.labels(env).inc()


def now() -> float:
    """The clock the metrics use (monotonic, seconds).

    Example:
        >>> now() > 0
        True
    """
    return time.perf_counter()
