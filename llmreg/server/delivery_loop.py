"""The server's webhook delivery loop: a background thread calling
:meth:`~llmreg.service.notifications.webhooks.Notify.deliver_due` continuously.

Every replica (and every uvicorn worker) runs one; the claims in the service keep them
from sending the same delivery twice at once. A scheduler that runs jobs (deprecation,
alerts) can call ``svc.notify.deliver_due()`` itself instead and not start this.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
    >>> loop = DeliveryLoop(svc, interval=0.05)
    >>> loop.start()
    >>> loop.stop()
    >>> svc.close()
"""

from __future__ import annotations

import threading

from llmreg.service.registry import RegistryService

INTERVAL = 0.5  # seconds between looks when nothing is due


class DeliveryLoop:
    """A daemon thread delivering due webhooks until :meth:`stop`."""

    def __init__(self, service: RegistryService, *, interval: float = INTERVAL) -> None:
        self.service = service
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.service.notify.run, args=(self._stop,),
                kwargs={"interval": self.interval}, name="llmreg-webhooks", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the thread to stop and wait for its current round (bounded by timeouts)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
