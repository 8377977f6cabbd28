"""What runs behind a client's back: watching a slot, and heartbeats that report served
traffic. Both live in daemon threads and never raise into the application.

Example:
    >>> sent = []
    >>> beats = HeartbeatBatcher(sent.extend, interval=3600)
    >>> beats.add("chat", "production", "sha256:…", 2); beats.add("chat", "production", "sha256:…")
    >>> beats.flush(); sent
    [{'name': 'chat', 'env': 'production', 'digest': 'sha256:…', 'count': 3}]
    >>> beats.close()
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from typing import Any

from llmreg.bundle.resolved import ResolvedBundle

log = logging.getLogger("llmreg")


class DaemonLoop:
    """A daemon thread running :meth:`_run` from :meth:`start` until :meth:`stop`: the
    client's watcher and heartbeats, and the server's scheduler and delivery loop.

    :meth:`_run` ends when ``self._stop`` is set.
    """

    thread_name = "llmreg"
    stop_timeout = 10.0  # seconds :meth:`stop` waits for the thread by default

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.thread_name,
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to stop and wait for it to end: up to ``timeout`` seconds, by
        default :attr:`stop_timeout`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.stop_timeout if timeout is None else timeout)
            self._thread = None


class Watcher(DaemonLoop):
    """Polls one slot in a daemon thread and calls ``on_change(bundle)`` when it moves.

    Example:
        >>> w = reg.watch("support-rag", env="production", interval=10,
        ...               on_change=lambda b: print("now", b.version))  # doctest: +SKIP
        >>> w.current.version  # doctest: +SKIP
        3
        >>> w.stop()  # doctest: +SKIP
    """

    thread_name = "llmreg-watch"
    stop_timeout = 5.0

    def __init__(self, resolve: Callable[[], ResolvedBundle], interval: float,
                 on_change: Callable[[ResolvedBundle], None] | None) -> None:
        super().__init__()
        self._resolve = resolve
        self._interval = interval
        self._on_change = on_change
        self.current: ResolvedBundle = resolve()
        self.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                latest = self._resolve()
            except Exception as exc:  # keep watching through registry outages
                log.debug("llmreg watch: %s", exc)
                continue
            if latest.digest != self.current.digest:
                self.current = latest
                if self._on_change is not None:
                    try:
                        self._on_change(latest)
                    except Exception:
                        log.exception("llmreg watch: on_change failed")


class HeartbeatBatcher(DaemonLoop):
    """Counts served requests per (name, env, digest) and flushes them in the background.

    Never blocks or fails the caller: counting is a dict update under a lock; a failed
    flush keeps the counts for the next one (bounded) and logs at debug level.
    """

    MAX_KEYS = 10_000
    # The most one beat may report (the server refuses more: contract.models.MAX_BEAT_COUNT,
    # kept equal by a test; this module stays free of pydantic). A larger count, kept
    # through an outage, goes as several beats; past MAX_BEATS_PER_KEY of them the
    # rest is dropped (the registry needs to know a slot serves, not every request).
    MAX_BEAT_COUNT = 1_000_000
    MAX_BEATS_PER_KEY = 10
    thread_name = "llmreg-heartbeat"

    def __init__(self, flush: Callable[[list[dict[str, Any]]], None], interval: float) -> None:
        super().__init__()
        self._flush_fn = flush
        self._interval = interval
        self._counts: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()
        atexit.register(self.close)

    def add(self, name: str, env: str, digest: str, count: int = 1) -> None:
        """Count ``count`` served requests (starts the flushing thread on first use)."""
        with self._lock:
            key = (name, env, digest)
            if key in self._counts or len(self._counts) < self.MAX_KEYS:
                self._counts[key] = self._counts.get(key, 0) + count
            self.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> None:
        """Send what has been counted; on failure keep it for the next flush."""
        with self._lock:
            counts, self._counts = self._counts, {}
        if not counts:
            return
        beats = [{"name": n, "env": e, "digest": d, "count": part}
                 for (n, e, d), c in counts.items() for part in self._parts(c)]
        try:
            self._flush_fn(beats)
        except Exception as exc:  # heartbeats must never hurt the app
            log.debug("llmreg heartbeat flush failed, will retry: %s", exc)
            with self._lock:
                for (n, e, d), c in counts.items():
                    if len(self._counts) < self.MAX_KEYS:
                        self._counts[(n, e, d)] = self._counts.get((n, e, d), 0) + c

    def _parts(self, count: int) -> list[int]:
        """``count`` as beats the server takes: each at most :attr:`MAX_BEAT_COUNT`, at
        most :attr:`MAX_BEATS_PER_KEY` of them.

        Example:
            >>> HeartbeatBatcher(print, 30)._parts(2_500_000)
            [1000000, 1000000, 500000]
        """
        full, rest = divmod(count, self.MAX_BEAT_COUNT)
        parts = [self.MAX_BEAT_COUNT] * full + ([rest] if rest else [])
        if len(parts) > self.MAX_BEATS_PER_KEY:
            log.debug("llmreg heartbeat: %d requests of one slot not reported (over %d "
                      "beats)", count - self.MAX_BEAT_COUNT * self.MAX_BEATS_PER_KEY,
                      self.MAX_BEATS_PER_KEY)
        return parts[:self.MAX_BEATS_PER_KEY]

    def close(self) -> None:
        """Stop the thread after a last flush (also run at interpreter exit)."""
        self._stop.set()
        self.flush()
