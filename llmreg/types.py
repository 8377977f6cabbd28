"""Plain result types the registry returns (no server stack needed to read them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class Actor:
    """Who is acting, and with which roles (``None``: every role, the embedded registry,
    where access to the registry's files is the trust root).

    Example:
        >>> Actor("ana").name
        'ana'
    """

    name: str
    roles: frozenset[str] | None = None  # every role held somewhere (the route's check)
    token_id: str | None = None  # the API token acting (None: embedded, or no token)
    expires_at: datetime | None = None  # when that token stops working (None: never)
    # The role held in each team; "*" is the registry-wide role, on every name (None:
    # every role everywhere, as ``roles`` None). See :mod:`llmreg.service.authority`.
    teams: dict[str, str] | None = field(default=None, hash=False)
    # An OIDC workload identity (CI without a stored secret): issuer, subject, and the
    # repository, workflow and run it names (None: a token or the embedded registry).
    workload: dict[str, str] | None = field(default=None, hash=False)


class VersionInfo(BaseModel):
    """One registered version: ``name@version`` is ``digest``, with who, when and why.

    Example:
        >>> from datetime import datetime, UTC
        >>> v = VersionInfo(name="chat", version=2, digest="sha256:" + "0" * 64,
        ...                 author="ana", created_at=datetime(2026, 1, 1, tzinfo=UTC),
        ...                 message="tighter prompt")
        >>> v.ref
        'chat@2'
    """

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    digest: str
    author: str
    created_at: datetime
    message: str
    parent_digest: str | None = None
    provenance: dict[str, Any] = {}
    changes: list[str] = []  # the semantic diff against the parent, one line per section
    diff_digest: str | None = None  # the full diff (JSON) in the blob store
    status: str = "registered"  # registered, an environment, deprecated or archived
    # The tag of a deprecated/archived version: when, by which rule, under which policy.
    retired_at: datetime | None = None
    retire_rule: str | None = None
    retire_policy: str | None = None

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"


class ChangelogEntry(BaseModel):
    """One release in a name's changelog: the version, its diff summary, its evidence."""

    model_config = ConfigDict(frozen=True)

    version: VersionInfo
    first: bool  # the name's first version: nothing to diff against
    evidence: list[dict[str, Any]] = []


class NameSummary(BaseModel):
    """A registered name and its latest version."""

    model_config = ConfigDict(frozen=True)

    name: str
    versions: int
    latest_version: int
    latest_digest: str
    updated_at: datetime


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing: ``items``, the ``total`` count, and the ``next`` offset
    (None on the last page). Pages are cut by the database, never by slicing a list.

    Example:
        >>> Page.of([1, 2], offset=0, limit=2, total=5).next
        2
    """

    model_config = ConfigDict(frozen=True)

    items: list[T]
    total: int
    offset: int
    next: int | None

    @classmethod
    def of(cls, items: list[T], *, offset: int, limit: int | None, total: int) -> Page[T]:
        """The page of ``items`` read at ``offset`` with ``limit`` (None: no limit)."""
        more = limit is not None and offset + limit < total
        return cls(items=items, total=total, offset=offset,
                   next=offset + limit if more and limit is not None else None)


class Registration(BaseModel):
    """What registering returned: the version, and whether it is new."""

    model_config = ConfigDict(frozen=True)

    version: VersionInfo
    created: bool


class EvidenceInfo(BaseModel):
    """An eval or shadow-metrics record attached to a digest."""

    model_config = ConfigDict(frozen=True)

    id: int
    digest: str
    type: str  # "eval" or "shadow-metrics"
    suite: str
    metrics: dict[str, float]
    passed: bool | None = None
    report_digest: str | None = None
    links: list[str] = []
    created_by: str
    created_at: datetime


class ApprovalInfo(BaseModel):
    """One approval of a version for an environment."""

    model_config = ConfigDict(frozen=True)

    name: str
    digest: str
    env: str
    approver: str
    roles: list[str] | None = None
    teams: dict[str, str] | None = None  # their role per team then ("*": registry-wide)
    comment: str = ""
    created_at: datetime


class GateResult(BaseModel):
    """One gate of a transition, judged: met or not, and why."""

    model_config = ConfigDict(frozen=True)

    gate: str  # "transition", "eval:<suite>", "shadow-metrics", "approvals"
    passed: bool
    detail: str


class GateReport(BaseModel):
    """Every gate of one promotion, judged against the slot as it is now."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    digest: str
    from_status: str
    to_env: str
    current_version: int | None = None
    policy_digest: str
    results: list[GateResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def unmet(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]


class SlotEventInfo(BaseModel):
    """One move of an environment slot."""

    model_config = ConfigDict(frozen=True)

    name: str
    env: str
    action: str  # "promote" or "rollback"
    from_version: int | None
    to_version: int
    to_digest: str
    actor: str
    reason: str
    policy_digest: str | None
    gates: list[GateResult] = []
    at: datetime


class SlotStatus(BaseModel):
    """What runs in one environment slot right now, and why it is allowed there."""

    model_config = ConfigDict(frozen=True)

    name: str
    env: str
    version: int
    digest: str
    since: datetime
    promoted_by: str
    reason: str
    policy_digest: str | None
    gates: list[GateResult] = []
    owner: str | None = None  # the owning team (``llmreg owner set``)


class AuditInfo(BaseModel):
    """One audit-log entry."""

    model_config = ConfigDict(frozen=True)

    seq: int
    at: datetime
    actor: str
    action: str
    name: str | None
    target: str | None
    env: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def summary(self, limit: int | None = 200) -> str:
        """What the entry says beyond who, what and where, in one line: an owner
        change's old → new team and contacts, the reason, message, comment or suite (each
        cut at ``limit`` characters; None: whole), and the workload (OIDC) that made it.

        Example:
            >>> from datetime import datetime, UTC
            >>> AuditInfo(seq=1, at=datetime(2026, 1, 1, tzinfo=UTC), actor="ada",
            ...           action="owner", name="chat", target="chat", env=None,
            ...           detail={"from": {"team": "search", "contacts": ["s@x.io"]},
            ...                   "to": {"team": "support", "contacts": ["t@x.io"]}},
            ...           prev_hash="", hash="").summary()
            'team search → support; contacts s@x.io → t@x.io'
        """
        d = self.detail
        parts: list[str] = []
        if self.action == "owner" and isinstance(d.get("to"), dict):
            before = d.get("from")
            old: dict[str, Any] = before if isinstance(before, dict) else {}
            new = d["to"]

            def contacts(side: Any) -> str:
                return ", ".join(map(str, side.get("contacts") or [])) or "none"

            parts.append(f"team {old.get('team') or '(none)'} → {new.get('team')}")
            if contacts(old) != contacts(new):
                parts.append(f"contacts {contacts(old)} → {contacts(new)}")
        for key in ("reason", "message", "comment", "suite"):
            if d.get(key):
                parts.append(f"{key}: {str(d[key])[:limit]}")
        if self.action == "policy" and isinstance(d.get("widens"), list):
            parts.append("widens authority: " + "; ".join(map(str, d["widens"]))[:500])
        workload = d.get("workload")
        if isinstance(workload, dict):
            where = workload.get("repository") or workload.get("project_path") or \
                workload.get("subject")
            run = f", run {workload['run_id']}" if workload.get("run_id") else ""
            parts.append(f"workload: {where}{run} ({workload.get('issuer')})")
        return "; ".join(parts)


ROLES = ("reader", "publisher", "approver", "admin")
#: A team's name (an owner's ``--team``, a token's ``--team TEAM:ROLE``, a policy's groups).
TEAM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,127}$")
#: In a policy's ``by`` and approvals ``from``: the team that owns the name.
OWNER_GROUP = "owner"


def roles_of(role: str) -> frozenset[str]:
    """The roles a token with ``role`` holds: its own and every one below it
    (reader < publisher < approver < admin).

    Example:
        >>> sorted(roles_of("approver"))
        ['approver', 'publisher', 'reader']
    """
    return frozenset(ROLES[: ROLES.index(role) + 1])


# Vocabularies as Literal types, importable without the service: the CLI builds its
# choices and help from them (``typing.get_args``, like huggingface_hub's
# cli/webhooks.py). The service's tuples that check the values (outbox.EVENTS,
# webhooks.FORMATS, mirror keys.ROLES) are held equal to them by tests/test_public_api.py.
WebhookEvent = Literal["registration", "promotion", "rollback", "gate_failed", "approval",
                       "archive", "owner_change", "stale_production"]
"""The events a webhook can subscribe to (``llmreg webhook add --events``)."""

WebhookFormat = Literal["cloudevents", "slack"]
"""How deliveries are shaped: CloudEvents 1.0 JSON, or a Slack incoming-webhook message."""

MirrorRole = Literal["root", "targets", "snapshot", "timestamp"]
"""The signing roles of the static mirror (TUF), root first."""


class TokenInfo(BaseModel):
    """An API token's record (never its secret)."""

    model_config = ConfigDict(frozen=True)

    token_id: str
    subject: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    expires_at: datetime | None = None  # None: never expires
    teams: dict[str, str] = {}  # the role in each team; {}: unscoped (``role`` everywhere)


class Problem(BaseModel):
    """One integrity problem: which blob, what is wrong, and who refers to it."""

    model_config = ConfigDict(frozen=True)

    digest: str
    problem: str  # "corrupt" or "missing"
    referenced_by: str

    def __str__(self) -> str:
        return f"{self.digest}: {self.problem} (referenced by {self.referenced_by})"


class OwnerInfo(BaseModel):
    """The team that owns a name and how to reach it.

    Example:
        >>> OwnerInfo(name="chat", team="search", contacts=["search@example.com"],
        ...           updated_at=datetime(2026, 1, 1), updated_by="ana").team
        'search'
    """

    name: str
    team: str
    contacts: list[str]
    updated_at: datetime
    updated_by: str


class DeprecationAction(BaseModel):
    """One thing the deprecation policy does (or would do) to one version."""

    name: str
    version: int
    digest: str
    action: Literal["deprecate", "archive"]
    rule: str  # keep_last | deprecate_after_days
    reason: str


class KeptVersion(BaseModel):
    """A version the deprecation rules leave as it is, and the rule that keeps it."""

    name: str
    version: int
    digest: str
    # held | keep_rollback | archive_grace_days | restored | keep_last | deprecate_after_days
    rule: str
    reason: str


class DeprecationReport(BaseModel):
    """What a deprecation plan or run found, under which policy, at which time."""

    policy_digest: str
    at: datetime
    applied: bool
    actions: list[DeprecationAction]
    # Every version that is not archived and that no action touches, with the rule that
    # keeps it (the first that applies, in the order of KeptVersion.rule's comment).
    kept: list[KeptVersion] = []
    # A run's planned actions it did not take: an environment took the version after the
    # plan was read (the reason says which), so it was left as it was.
    skipped: list[DeprecationAction] = []


class ServedInfo(BaseModel):
    """Traffic one version served in one environment, and whether it holds the slot."""

    name: str
    env: str
    version: int | None
    digest: str
    in_slot: bool
    last_served: datetime | None
    day: int  # requests in the last 24 hours
    week: int  # requests in the last 7 days
    total: int


class AlertInfo(BaseModel):
    """An alert addressed to a name's owner (today: a stale production slot)."""

    id: int
    kind: str
    name: str
    env: str
    version: int
    digest: str
    team: str | None
    contacts: list[str]
    message: str
    state: str  # open, acked, closed
    opened_at: datetime
    notified_at: datetime
    reminders: int
    acked_by: str | None = None
    ack_reason: str | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None


class JobRunInfo(BaseModel):
    """One run of a scheduled job (deprecation, alerts, deliveries)."""

    job: str
    period: int
    runner: str
    started_at: datetime
    finished_at: datetime | None
    result: dict[str, Any]


class EnvironmentInfo(BaseModel):
    """One environment of the policy: its aliases and how many names it holds."""

    env: str
    aliases: list[str]
    names: int


class DriftItem(BaseModel):
    """What two environments hold for one name, and a one-line summary of the difference."""

    name: str
    a_version: int | None
    a_digest: str | None
    b_version: int | None
    b_digest: str | None
    state: Literal["same", "differs", "only_a", "only_b"]
    summary: str
    changes: list[str] = []
class WebhookInfo(BaseModel):
    """A webhook endpoint's record (its secret only in the answer that created it).

    Example:
        >>> from datetime import datetime, UTC
        >>> WebhookInfo(id=1, url="https://hooks.example.com/llmreg", events=["promotion"],
        ...             format="cloudevents", created_at=datetime(2026, 1, 1, tzinfo=UTC),
        ...             created_by="ana").secret is None
        True
    """

    model_config = ConfigDict(frozen=True)

    id: int
    url: str
    events: list[str]
    format: str  # "cloudevents" or "slack"
    created_at: datetime
    created_by: str
    secret: str | None = None  # ``whsec_…``, shown once
    team: str | None = None  # events about the names this team owns
    names: list[str] = []  # events about names matching these patterns (``search-*``)


class DeliveryInfo(BaseModel):
    """One event to one webhook: its ``webhook-id``, state, attempts and last answer.

    Example:
        >>> from datetime import datetime, UTC
        >>> t = datetime(2026, 1, 1, tzinfo=UTC)
        >>> DeliveryInfo(id=3, webhook_id=1, event="promotion", name="chat",
        ...              message_id="msg_1", status="pending", attempts=0, next_at=t,
        ...              created_at=t).status
        'pending'
    """

    model_config = ConfigDict(frozen=True)

    id: int
    webhook_id: int
    event: str
    name: str | None
    message_id: str  # the Standard Webhooks ``webhook-id``, the same on every attempt
    status: str  # "pending", "delivered" or "dead"
    attempts: int
    next_at: datetime
    created_at: datetime
    last_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None


class ImportedVersion(BaseModel):
    """One version brought in by an import: where it came from and what it became.

    Example:
        >>> ImportedVersion(name="qa", source="prompts:/qa/2", kind="llm",
        ...                 digest="sha256:" + "0" * 64).created
        False
    """

    model_config = ConfigDict(frozen=True)

    name: str
    source: str  # e.g. prompts:/qa/2 or models:/clf/1
    kind: str  # "llm" or "weights"
    digest: str
    version: int | None = None  # None in a dry run
    created: bool = False  # False: already there (recognised by digest), or a dry run


class ImportedSlot(BaseModel):
    """One alias carried over as an environment slot.

    Example:
        >>> ImportedSlot(name="qa", alias="champion", env="production",
        ...              digest="sha256:" + "0" * 64).moved
        False
    """

    model_config = ConfigDict(frozen=True)

    name: str
    alias: str
    env: str
    digest: str
    version: int | None = None
    moved: bool = False  # False: the slot already held it, or a dry run


class ImportReport(BaseModel):
    """What an import found and did (or, in a dry run, would do).

    Example:
        >>> ImportReport(source="mlflow http://127.0.0.1:5000", dry_run=True).created
        0
    """

    model_config = ConfigDict(frozen=True)

    source: str
    dry_run: bool
    versions: list[ImportedVersion] = []
    slots: list[ImportedSlot] = []
    skipped_aliases: list[str] = []  # "name@alias", aliases with no mapping

    @property
    def created(self) -> int:
        """How many versions this run added."""
        return sum(v.created for v in self.versions)
