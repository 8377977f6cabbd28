"""Environments across all names: what each holds, and how two of them drift apart."""

from __future__ import annotations

import builtins

from sqlmodel import func, select

from llmreg.bundle.diff import diff_bundles
from llmreg.db.engine import Database
from llmreg.db.models import Slot
from llmreg.policy import Policy
from llmreg.service.hygiene.traffic import slot_rows
from llmreg.service.versions import Versions
from llmreg.types import DriftItem, EnvironmentInfo


class Environments:
    """``env list`` and ``drift`` over every name.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from llmreg.service import RegistryService
        >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
        >>> [(e.env, e.names) for e in svc.environments.list()]
        [('staging', 0), ('shadow', 0), ('production', 0)]
        >>> svc.environments.drift("staging", "prod")
        []
        >>> svc.close()
    """

    def __init__(self, db: Database, policy: Policy, versions: Versions) -> None:
        self.db = db
        self.policy = policy
        self.versions = versions

    def list(self) -> list[EnvironmentInfo]:
        """Each environment of the policy, in order, with its aliases and how many names
        it holds."""
        with self.db.read() as s:
            counts = {e: int(n) for e, n in s.exec(
                select(Slot.env, func.count()).group_by(Slot.env)).all()}
        return [EnvironmentInfo(env=env, aliases=list(spec.aliases), names=counts.get(env, 0))
                for env, spec in self.policy.environments.items()]

    def drift(self, a: str, b: str) -> builtins.list[DriftItem]:
        """For every name held by ``a`` or ``b``: what each holds and a one-line semantic
        summary of the difference, read from ``b`` to ``a`` (what promoting ``a``'s
        bundle into ``b`` would change)."""
        a, b = self.policy.canonical_env(a), self.policy.canonical_env(b)
        with self.db.read() as s:
            rows = slot_rows(s)
        side_a = {n: (v, d) for n, e, v, d in rows if e == a}
        side_b = {n: (v, d) for n, e, v, d in rows if e == b}
        out = []
        for name in sorted(set(side_a) | set(side_b)):
            va, da = side_a.get(name, (None, None))
            vb, db_ = side_b.get(name, (None, None))
            if da is None:
                out.append(DriftItem(name=name, a_version=None, a_digest=None, b_version=vb,
                                     b_digest=db_, state="only_b",
                                     summary=f"only in {b} (@{vb}); {a} holds nothing"))
            elif db_ is None:
                out.append(DriftItem(name=name, a_version=va, a_digest=da, b_version=None,
                                     b_digest=None, state="only_a",
                                     summary=f"only in {a} (@{va}); {b} holds nothing"))
            elif da == db_:
                out.append(DriftItem(name=name, a_version=va, a_digest=da, b_version=vb,
                                     b_digest=db_, state="same",
                                     summary=f"same bundle (@{va})"))
            else:
                changes = diff_bundles(self.versions.load(db_), self.versions.load(da),
                                       load=self.versions.load).stat()
                out.append(DriftItem(name=name, a_version=va, a_digest=da, b_version=vb,
                                     b_digest=db_, state="differs",
                                     summary=f"{a} @{va} vs {b} @{vb}: "
                                             + ("; ".join(changes) or "metadata only"),
                                     changes=changes))
        return out
