"""The registry service: one database, one blob store and one policy, and the parts
built over them.

Each part gets only what it needs, and together they are the only code that changes
registry state:

- ``blobs`` (:class:`~llmreg.service.blobs.Blobs`): the one way to the blob store;
- ``versions`` (:class:`~llmreg.service.versions.Versions`): register, refs, history,
  diffs;
- ``evidence`` (:class:`~llmreg.service.lifecycle.evidence.Evidence`): evals and shadow
  metrics attached to a digest;
- ``approvals`` (:class:`~llmreg.service.lifecycle.approvals.Approvals`): sign-offs of a
  digest for an environment;
- ``lifecycle`` (:class:`~llmreg.service.lifecycle.lifecycle.Lifecycle`): gate checks,
  promotion, rollback, retirement (the moves);
- ``slots`` (:class:`~llmreg.service.lifecycle.slots.Slots`): what runs where, and each
  slot's history;
- ``audit`` (:class:`~llmreg.service.audit.AuditLog`): the audit log's entries, its
  verification and head;
- ``access`` (:class:`~llmreg.service.access.Access`): tokens and heartbeats;
- ``integrity`` (:class:`~llmreg.service.integrity.Integrity`): verify, fsck, gc;
- ``owners``, ``traffic``, ``alerts``, ``deprecation``, ``environments``: owners, served
  traffic, stale-production alerts, the deprecation rules, env list and drift;
- ``jobs`` (:class:`~llmreg.service.hygiene.jobs.Jobs`): those that run on a schedule;
- ``notify`` (:class:`~llmreg.service.notifications.notify.Notify`): webhooks and the delivery
  worker over the outbox (:mod:`llmreg.service.notifications.outbox`).
- ``overview`` and ``sessions``: the web pages' board and timelines, and sign-ins.
- ``imports`` (:class:`~llmreg.service.importers.apply.Imports`): imports from MLflow, in one
  transaction each.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from llmreg.db.engine import HEAD_REVISION, Database
from llmreg.errors import ServerError
from llmreg.policy import Policy
from llmreg.service.access import Access
from llmreg.service.audit import AuditLog
from llmreg.service.blobs import Blobs
from llmreg.service.environments import Environments
from llmreg.service.hygiene.alerts import Alerts
from llmreg.service.hygiene.deprecation import Deprecation
from llmreg.service.hygiene.jobs import Jobs
from llmreg.service.hygiene.owners import Owners
from llmreg.service.hygiene.traffic import Traffic
from llmreg.service.importers.apply import Imports
from llmreg.service.integrity import Integrity
from llmreg.service.lifecycle.approvals import Approvals
from llmreg.service.lifecycle.evidence import Evidence
from llmreg.service.lifecycle.lifecycle import Lifecycle
from llmreg.service.lifecycle.slots import Slots
from llmreg.service.notifications.notify import Notify
from llmreg.service.overview import Overview
from llmreg.service.sessions import Sessions
from llmreg.service.versions import Versions
from llmreg.store import open_store
from llmreg.store.base import BlobStore


class RegistryService:
    """The state-changing core over one metadata database and one blob store.

    Example:
        >>> import tempfile
        >>> from llmreg.store import MemoryStore
        >>> svc = RegistryService.open(f"sqlite:///{tempfile.mkdtemp()}/r.db", MemoryStore())
        >>> svc.versions.list_names()
        []
        >>> svc.close()
    """

    def __init__(self, db: Database, store: BlobStore, policy: Policy | None = None) -> None:
        self.db = db
        self.policy = policy or Policy.default()
        self.blobs = Blobs(store)
        self.versions = Versions(db, self.blobs, self.policy)
        self.evidence = Evidence(db, self.blobs, self.policy)
        self.approvals = Approvals(db, self.blobs, self.policy)
        self.lifecycle = Lifecycle(db, self.blobs, self.policy)
        self.slots = Slots(db, self.policy)
        self.audit = AuditLog(db, self.policy)
        self.access = Access(db, self.policy)
        self.integrity = Integrity(db, self.blobs, self.versions)
        self.overview = Overview(db, self.policy)  # the web pages' reads
        self.sessions = Sessions(db, self.access)  # the web pages' sign-ins
        self.imports = Imports(db, self.versions, self.lifecycle)
        self.notify = Notify(db, self.policy)
        self.owners = Owners(db)
        self.traffic = Traffic(db, self.policy)
        self.alerts = Alerts(db, self.policy)
        self.deprecation = Deprecation(db, self.policy)
        self.environments = Environments(db, self.policy, self.versions)
        self.jobs = Jobs(db, self.policy, {
            "deprecation": lambda now: {"actions": len(self.deprecation.run(now=now).actions)},
            "alerts": self._alerts_job,
            "deliveries": self._deliveries_job,
        })

    def _alerts_job(self, now: datetime) -> dict[str, Any]:
        return {**self.alerts.check(now=now), "pruned": self.traffic.prune(now=now)}

    def _deliveries_job(self, now: datetime) -> dict[str, Any]:
        return {"delivered": self.notify.deliver_due(now=now)}

    @classmethod
    def open(cls, database_url: str, store: BlobStore,
             policy: Policy | None = None) -> RegistryService:
        """Open the database (migrating it to head) and wrap it with ``store``."""
        return cls(Database.open(database_url), store, policy)

    @classmethod
    def open_home(cls, home: Path, *, database_url: str | None = None,
                  store: str | None = None, policy: Policy | None = None) -> RegistryService:
        """Open (creating if needed) the embedded registry in folder ``home``."""
        home.mkdir(parents=True, exist_ok=True)
        url = database_url or f"sqlite:///{home / 'registry.db'}"
        return cls.open(url, open_store(store, home), policy)

    def check_ready(self) -> None:
        """Raise :class:`ServerError` unless the database answers at the head revision
        and the blob store can be listed (the server's readiness probe)."""
        with self.db.read() as s:
            s.execute(text("SELECT 1"))
        revision = self.db.current_revision()
        if revision != HEAD_REVISION:
            raise ServerError(f"the database schema is at {revision}, not {HEAD_REVISION}; "
                              "restart the server: opening the registry migrates it")
        next(iter(self.blobs.iter_digests()), None)

    def close(self) -> None:
        """Release the database connections."""
        self.db.dispose()
