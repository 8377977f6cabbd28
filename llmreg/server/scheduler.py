"""The server's background scheduler: the registry's jobs, run by ``llmreg serve``.

One daemon thread per server process calls :meth:`llmreg.service.hygiene.jobs.Jobs.run_due`
every tick (``LLMREG_JOBS_TICK``, default 1 s). Periodic jobs are claimed per period in
the database, so any number of replicas (and ``llmreg jobs run`` from cron) run each
period once in total; continuous jobs (webhook deliveries) run on every tick.
"""

from __future__ import annotations

import logging

from llmreg.client.background import DaemonLoop
from llmreg.service.registry import RegistryService

log = logging.getLogger("llmreg.jobs")


class Scheduler(DaemonLoop):
    """Runs the due jobs every ``tick`` seconds until stopped.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
        >>> scheduler = Scheduler(svc, tick=0.05)
        >>> scheduler.start(); scheduler.stop()
        >>> sorted(run.job for run in svc.jobs.recent())
        ['alerts', 'deprecation']
        >>> svc.close()
    """

    thread_name = "llmreg-jobs"
    stop_timeout = 10.0  # seconds: stop() waits for the job in progress to end

    def __init__(self, service: RegistryService, *, tick: float = 1.0) -> None:
        super().__init__()
        self.service = service
        self.tick = tick

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for run in self.service.jobs.run_due():
                    if run.period:  # continuous jobs log nothing on an idle tick
                        log.info("llmreg: job %s ran for period %s: %s", run.job, run.period,
                                 run.result)
            except Exception:  # a database outage must not end the loop
                log.exception("llmreg: the job scheduler's tick failed")
            self._stop.wait(self.tick)
