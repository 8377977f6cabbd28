"""The server's webhook delivery loop: a background thread calling
:meth:`~llmreg.service.notifications.notify.Notify.deliver_due` continuously.

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

from llmreg.client.background import DaemonLoop
from llmreg.service.registry import RegistryService

INTERVAL = 0.5  # seconds between looks when nothing is due


class DeliveryLoop(DaemonLoop):
    """A daemon thread delivering due webhooks until :meth:`stop`."""

    thread_name = "llmreg-webhooks"
    stop_timeout = 15.0  # seconds: stop() waits for the current round (bounded by timeouts)

    def __init__(self, service: RegistryService, *, interval: float = INTERVAL) -> None:
        super().__init__()
        self.service = service
        self.interval = interval

    def _run(self) -> None:
        self.service.notify.run(self._stop, interval=self.interval)
