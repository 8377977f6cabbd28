"""Imports: bringing versions and slots from another registry in one transaction.

An importer (see :mod:`llmreg.service.importers`) reads its source and builds an
:class:`ImportPlan` — bundles with their provenance, and aliases mapped to environments —
before anything is written, so a bad input (an unreachable source, a floating model id,
an alias mapped to an unknown environment) is refused with nothing changed. Then
:meth:`Imports.apply` stores the blobs and writes every version and every slot move in
one write transaction: an import lands whole or not at all. Versions already there are
recognised by digest, so a second run adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmreg.bundle.schema import Bundle
from llmreg.db.engine import Database
from llmreg.service.lifecycle.lifecycle import Lifecycle
from llmreg.service.versions import Versions
from llmreg.types import Actor, ImportedSlot, ImportedVersion, ImportReport


@dataclass(frozen=True)
class PlannedVersion:
    """A bundle to register under ``name``, from ``source`` (e.g. ``prompts:/qa/3``)."""

    name: str
    source: str
    bundle: Bundle
    message: str
    provenance: dict[str, Any]


@dataclass(frozen=True)
class PlannedAlias:
    """Point ``name``'s slot in ``env`` at the version holding ``digest``."""

    name: str
    alias: str
    env: str
    digest: str
    reason: str


@dataclass
class ImportPlan:
    """Everything one import will write, built before any write.

    Example:
        >>> ImportPlan(source="mlflow http://127.0.0.1:5000").versions
        []
    """

    source: str
    versions: list[PlannedVersion] = field(default_factory=list)
    aliases: list[PlannedAlias] = field(default_factory=list)
    skipped_aliases: list[str] = field(default_factory=list)


class Imports:
    """Apply import plans: every version and slot move of one import in one transaction.

    Example:
        >>> report = svc.imports.apply(plan, actor=Actor("ana"))  # doctest: +SKIP
        >>> report.created                                        # doctest: +SKIP
        17
    """

    def __init__(self, db: Database, versions: Versions, lifecycle: Lifecycle) -> None:
        self.db = db
        self.versions = versions
        self.lifecycle = lifecycle

    def apply(self, plan: ImportPlan, *, actor: Actor, dry_run: bool = False) -> ImportReport:
        """Write ``plan`` (or, with ``dry_run``, only say what it holds)."""
        if dry_run:
            return ImportReport(
                source=plan.source, dry_run=True, skipped_aliases=plan.skipped_aliases,
                versions=[ImportedVersion(name=v.name, source=v.source, kind=v.bundle.kind,
                                          digest=v.bundle.digest) for v in plan.versions],
                slots=[ImportedSlot(name=a.name, alias=a.alias, env=a.env, digest=a.digest)
                       for a in plan.aliases])
        messages = [self.versions.prepare(v.bundle, name=v.name, message=v.message,
                                          provenance=v.provenance) for v in plan.versions]
        done: list[ImportedVersion] = []
        slots: list[ImportedSlot] = []
        numbers: dict[tuple[str, str], int] = {}
        with self.db.write() as session:
            for v, message in zip(plan.versions, messages, strict=True):
                reg = self.versions.register_in(session, v.bundle, name=v.name,
                                                message=message, author=actor.name,
                                                provenance=v.provenance)
                numbers[(v.name, v.bundle.digest)] = reg.version.version
                done.append(ImportedVersion(name=v.name, source=v.source, kind=v.bundle.kind,
                                            digest=v.bundle.digest, version=reg.version.version,
                                            created=reg.created))
            for a in plan.aliases:
                number = numbers[(a.name, a.digest)]
                event = self.lifecycle.import_move_in(session, a.name, number, a.env,
                                                      actor=actor, reason=a.reason)
                slots.append(ImportedSlot(name=a.name, alias=a.alias, env=a.env,
                                          digest=a.digest, version=number,
                                          moved=event is not None))
        return ImportReport(source=plan.source, dry_run=False, versions=done, slots=slots,
                            skipped_aliases=plan.skipped_aliases)
