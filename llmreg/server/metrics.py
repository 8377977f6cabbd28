"""Prometheus metrics of ``llmreg serve``: resolves, latency, cache hits, promotions.

Served at ``/metrics`` in the Prometheus text format, under ``LLMREG_METRICS``:
``token`` (default: the same rule as reads — a reader token, or anyone when reads are
open), ``public`` (anyone), ``off`` (nothing collected, no route).

With several workers (``llmreg serve --workers N``) each process writes its values to
files in ``PROMETHEUS_MULTIPROC_DIR`` (``llmreg serve`` sets up a fresh folder), and a
scrape of any worker sums them all (prometheus-client's multiprocess mode); so
``llmreg_resolves_total`` counts every request whichever worker answered it.

Labels stay bounded: every label value comes from a closed set, whatever the requests.
A name or environment appears as a label only once the registry has answered for it
(200/304); unknown names and environments are counted under ``_unknown``, so a client
asking for random names cannot grow the label set. A write's method is one of the
standard methods (:data:`METHODS`) or ``_other``, and its route one the app declares
(its path template, read from the app's routes) or ``_unknown``. No digests, tokens,
versions or raw paths are labels.

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

import asyncio
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.metrics_core import Metric

UNKNOWN = "_unknown"
OTHER = "_other"
# The methods RFC 9110 defines, plus PATCH: a method label is one of these or _other.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT",
                     "TRACE"})
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0)
MODES = ("off", "public", "token")
FLUSH_AFTER = 0.5  # seconds a resolve tally waits, at most, before it is written

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
        >>> family = GaugeMetricFamily("llmreg_doc_alerts", "Open alerts.", value=0)
        >>> add_collector(lambda: [family])
    """
    if collect not in _collectors:
        _collectors.append(collect)


class _Collector:
    """One source of a scrape; a source that fails is logged and left out, so one broken
    collector never takes the others' metrics down."""

    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self.source = collect

    def collect(self) -> Iterable[Metric]:
        try:
            return list(self.source())
        except Exception:  # a scrape reports what it can
            logging.getLogger("llmreg").exception("a metrics collector failed")
            return []


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
    """The server's own metrics. Resolves are tallied in plain dictionaries on the hot
    path and written to the Prometheus metrics in batches — at most
    :data:`FLUSH_AFTER` seconds later, and before every scrape of this process — so a
    resolve costs a few dictionary updates, not several locked writes to shared files.

    Example:
        >>> m = ServerMetrics(environments={"production": "production"})
        >>> m.resolved("chat", "production", 200, 0.0002, hit=True)
        >>> m.flush()
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
        self._bounds = list(LATENCY_BUCKETS)
        self._pending: dict[tuple[str, str, int, bool], int] = {}
        self._latency = {True: [0] * (len(self._bounds) + 1),
                         False: [0] * (len(self._bounds) + 1)}
        self._seconds = {True: 0.0, False: 0.0}
        self._scheduled = False
        # The route labels a write may carry: the app's declared path templates, set by
        # create_app once its routes are added (anything else counts as _unknown).
        self.routes: frozenset[str] = frozenset()

    def resolved(self, name: str, env: str, status: int, seconds: float, *,
                 hit: bool) -> None:
        """Tally one resolve answer (``name``/``env`` as the caller sent them).

        Only answered slots (200/304) name their name: bounded by the registry. Other
        answers count under ``_unknown``, and so do environments the policy lacks.
        """
        key = (name if status in (200, 304) else UNKNOWN,
               self.environments.get(env, UNKNOWN), status, hit)
        pending = self._pending
        pending[key] = pending.get(key, 0) + 1
        self._latency[hit][bisect_left(self._bounds, seconds)] += 1
        self._seconds[hit] += seconds
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_AFTER, self.flush)
            except RuntimeError:  # no event loop (a direct call): write now
                self.flush()

    def flush(self) -> None:
        """Write the tallies to the Prometheus metrics (on the event loop's thread)."""
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for (name, env, status, hit), n in pending.items():
            self.resolves.labels(name, env, str(status)).inc(n)
            self.cache.labels("hit" if hit else "miss").inc(n)
        for hit, counts in self._latency.items():
            if not any(counts):
                continue
            child = self.resolve_seconds.labels("hit" if hit else "miss")
            # prometheus-client has no batch observe: add to the buckets it keeps (its
            # layout since 0.4: one value per bucket, non-cumulative, and the sum).
            for i, n in enumerate(counts):
                if n:
                    child._buckets[i].inc(n)
                    counts[i] = 0
            child._sum.inc(self._seconds[hit])
            self._seconds[hit] = 0.0

    def wrote(self, method: str, route: str, status: int, seconds: float) -> None:
        """Time one write request; a method or route outside the closed sets is counted
        as ``_other`` / ``_unknown``.

        Example:
            >>> m = ServerMetrics(environments={})
            >>> m.routes = frozenset({"/v1/promotions"})
            >>> m.wrote("BREW", "/coffee", 405, 0.001)
            >>> m.write_seconds.labels("_other", "_unknown", "405")._sum.get() > 0
            True
        """
        self.write_seconds.labels(method if method in METHODS else OTHER,
                                  route if route in self.routes else UNKNOWN,
                                  str(status)).observe(seconds)

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
