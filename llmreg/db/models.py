"""Table models. The schema is created and upgraded by the Alembic migrations in
``llmreg/db/migrations``; a test checks that these models and the migrations agree.

Example (times come back timezone-aware, in UTC, on every backend):
    >>> UTCDateTime().process_result_value(datetime(2025, 1, 2, 3, 4), None)
    datetime.datetime(2025, 1, 2, 3, 4, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_clock: Callable[[], datetime] | None = None


def utcnow() -> datetime:
    """The time every state change is stamped with: now, or the injected clock's time."""
    return _clock() if _clock is not None else datetime.now(UTC)


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Inject a clock for simulations and tests (None: the real one again)."""
    global _clock
    _clock = clock


class BundleName(SQLModel, table=True):
    """A registered name; ``latest_version`` is the counter versions are numbered from."""

    __tablename__ = "bundle_names"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    latest_version: int = Field(default=0, nullable=False)


class Manifest(SQLModel, table=True):
    """A canonical manifest stored in the blob store, known by digest."""

    __tablename__ = "manifests"

    digest: str = Field(sa_column=sa.Column(sa.String(71), primary_key=True))
    size: int = Field(nullable=False)
    kind: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class Version(SQLModel, table=True):
    """``name@number`` = ``digest``, with author, time, message and provenance."""

    __tablename__ = "versions"
    __table_args__ = (
        sa.UniqueConstraint("name_id", "number", name="uq_versions_name_number"),
        sa.UniqueConstraint("name_id", "digest", name="uq_versions_name_digest"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("bundle_names.id"), nullable=False)
    )
    number: int = Field(nullable=False)
    digest: str = Field(
        sa_column=sa.Column(
            sa.String(71), sa.ForeignKey("manifests.digest"), nullable=False, index=True
        )
    )
    author: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    message: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    parent_digest: str | None = Field(default=None, sa_column=sa.Column(sa.String(71)))
    provenance: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    # The automatic half of the changelog: one line per changed section (``--stat``)
    # and the full semantic diff against the parent, stored as a blob.
    changes: list[str] = Field(
        default_factory=list,
        sa_column=sa.Column(sa.JSON, nullable=False, server_default=sa.text("'[]'")),
    )
    diff_digest: str | None = Field(default=None, sa_column=sa.Column(sa.String(71)))
    # Lifecycle: registered -> <environments> -> deprecated -> archived.
    status: str = Field(
        default="registered",
        sa_column=sa.Column(sa.String(32), nullable=False, server_default="registered"),
    )
    # The tag of a deprecated or archived version: when, by which rule (``keep_last``,
    # ``deprecate_after_days``, ``manual``) and under which policy digest.
    retired_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    retire_rule: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    retire_policy: str | None = Field(default=None, sa_column=sa.Column(sa.String(71)))


class Evidence(SQLModel, table=True):
    """An eval or shadow-metrics record, bound to a digest (not a version number)."""

    __tablename__ = "evidence"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(sa_column=sa.Column(sa.String(71), nullable=False, index=True))
    type: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    suite: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    metrics: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    passed: bool | None = Field(default=None, sa_column=sa.Column(sa.Boolean))
    report_digest: str | None = Field(default=None, sa_column=sa.Column(sa.String(71)))
    links: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    created_by: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class Approval(SQLModel, table=True):
    """One person's approval of one version (by digest) for one environment."""

    __tablename__ = "approvals"
    __table_args__ = (
        sa.UniqueConstraint("name_id", "digest", "env", "approver", name="uq_approvals_once"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("bundle_names.id"), nullable=False)
    )
    digest: str = Field(sa_column=sa.Column(sa.String(71), nullable=False))
    env: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    approver: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    roles: list[str] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    # The approver's role per team when they approved ("*": registry-wide; None: the
    # embedded registry, or an approval made before 0010).
    teams: dict[str, str] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    comment: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class Slot(SQLModel, table=True):
    """An environment slot: (name, env) points to exactly one version."""

    __tablename__ = "slots"
    __table_args__ = (sa.UniqueConstraint("name_id", "env", name="uq_slots_name_env"),)

    id: int | None = Field(default=None, primary_key=True)
    name_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("bundle_names.id"), nullable=False)
    )
    env: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    version: int = Field(nullable=False)
    digest: str = Field(sa_column=sa.Column(sa.String(71), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_by: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))


class SlotEvent(SQLModel, table=True):
    """One move of a slot: promotion or rollback, with who, why and the gates passed."""

    __tablename__ = "slot_events"

    id: int | None = Field(default=None, primary_key=True)
    name_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("bundle_names.id"), nullable=False)
    )
    env: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    action: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    from_version: int | None = Field(default=None)
    to_version: int = Field(nullable=False)
    to_digest: str = Field(sa_column=sa.Column(sa.String(71), nullable=False))
    actor: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    policy_digest: str | None = Field(default=None, sa_column=sa.Column(sa.String(71)))
    gates: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class AuditEntry(SQLModel, table=True):
    """An append-only, hash-chained record of one state change."""

    __tablename__ = "audit_log"

    seq: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    # actor and env are indexed for the web audit timeline's filters (0007_web)
    actor: str = Field(sa_column=sa.Column(sa.String(255), nullable=False, index=True))
    action: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    name: str | None = Field(default=None, sa_column=sa.Column(sa.String(64), index=True))
    target: str | None = Field(default=None, sa_column=sa.Column(sa.String(160)))
    env: str | None = Field(default=None, sa_column=sa.Column(sa.String(32), index=True))
    detail: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    prev_hash: str = Field(sa_column=sa.Column(sa.String(71), nullable=False))
    hash: str = Field(sa_column=sa.Column(sa.String(71), nullable=False, unique=True))


class PolicyRecord(SQLModel, table=True):
    """A policy the registry has enforced (its canonical JSON is a blob)."""

    __tablename__ = "policies"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(sa_column=sa.Column(sa.String(71), nullable=False))
    seen_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    seen_by: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))


class Token(SQLModel, table=True):
    """An API token: only its SHA-256 is stored; the secret is shown once. A token with
    ``expires_at`` is refused from that moment on."""

    __tablename__ = "tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_id: str = Field(sa_column=sa.Column(sa.String(32), nullable=False, unique=True))
    secret_hash: str = Field(sa_column=sa.Column(sa.String(71), nullable=False))
    subject: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    role: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    created_by: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    # None: never expires (tokens made before 0009, or created without --expires).
    expires_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    # The role in each team (``role`` is the registry-wide one); None or {}: unscoped, as
    # every token made before 0010.
    teams: dict[str, str] | None = Field(default=None, sa_column=sa.Column(sa.JSON))


class Heartbeat(SQLModel, table=True):
    """Traffic served by a bundle in an environment, aggregated per (name, env, digest)."""

    __tablename__ = "heartbeats"
    __table_args__ = (
        sa.UniqueConstraint("name", "env", "digest", name="uq_heartbeats_slot_digest"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    env: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    digest: str = Field(sa_column=sa.Column(sa.String(71), nullable=False))
    # 64-bit: see llmreg.service.hygiene.traffic (capped per beat, saturating sum).
    count: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    first_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    last_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class Owner(SQLModel, table=True):
    """The team that owns a name and how to reach it (addresses, URLs, webhook ids)."""

    __tablename__ = "owners"

    name_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("bundle_names.id"),
                                             primary_key=True, autoincrement=False))
    team: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    contacts: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON,
                                                                          nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_by: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))


class HeartbeatHour(SQLModel, table=True):
    """Requests served per (name, env, digest) in one UTC hour; kept for a bounded time."""

    __tablename__ = "heartbeat_hours"
    __table_args__ = (
        sa.UniqueConstraint("name", "env", "digest", "hour", name="uq_heartbeat_hours"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    env: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    digest: str = Field(sa_column=sa.Column(sa.String(71), nullable=False))
    hour: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    count: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))


class Alert(SQLModel, table=True):
    """An open (or closed) condition addressed to a name's owner, e.g. stale production."""

    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    name: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, index=True))
    env: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    version: int = Field(nullable=False)
    digest: str = Field(sa_column=sa.Column(sa.String(71), nullable=False))
    team: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    contacts: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON,
                                                                          nullable=False))
    message: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    state: str = Field(sa_column=sa.Column(sa.String(16), nullable=False, index=True))
    opened_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    notified_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    reminders: int = Field(default=0, nullable=False)
    acked_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(255)))
    ack_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    acked_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    closed_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    close_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


class JobRun(SQLModel, table=True):
    """One run of a scheduled job for one period; the key makes it once per period."""

    __tablename__ = "job_runs"

    job: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    period: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True,
                                            autoincrement=False))
    runner: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    started_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    result: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON,
                                                                             nullable=False))
class OutboxEvent(SQLModel, table=True):
    """One event, written in the same transaction as the state change it reports."""

    __tablename__ = "outbox_events"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(sa_column=sa.Column(sa.String(36), nullable=False, unique=True))
    type: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    name: str | None = Field(default=None, sa_column=sa.Column(sa.String(64), index=True))
    data: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class Webhook(SQLModel, table=True):
    """A webhook endpoint: URL, subscribed events, format and its signing secret.

    The ``whsec_`` secret is kept as is, because the registry must sign with it (an
    HMAC key cannot be stored hashed); it is shown once, at creation.
    """

    __tablename__ = "webhooks"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_column=sa.Column(sa.String(2048), nullable=False))
    events: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    format: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    secret: str = Field(sa_column=sa.Column(sa.String(80), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    created_by: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    removed_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    # Scope: events about names owned by ``team`` or matching one of ``names`` (shell
    # patterns); neither: every name (a registry-wide subscription, as before 0010).
    team: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    names: list[str] | None = Field(default=None, sa_column=sa.Column(sa.JSON))


class Delivery(SQLModel, table=True):
    """One event to one webhook: ``pending`` (due at ``next_at``), ``delivered`` or ``dead``.

    ``message_id`` is the Standard Webhooks ``webhook-id``: fixed per (event, webhook),
    so every retry and every redelivery carries the same id.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "webhook_id", name="uq_deliveries_event_webhook"),
        sa.Index("ix_deliveries_due", "status", "next_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("outbox_events.id"), nullable=False)
    )
    webhook_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("webhooks.id"), nullable=False,
                            index=True)
    )
    message_id: str = Field(sa_column=sa.Column(sa.String(80), nullable=False, unique=True))
    status: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    attempts: int = Field(default=0, nullable=False)
    next_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    last_attempt_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    last_status: int | None = Field(default=None)
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.String(500)))
    delivered_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
class WebSession(SQLModel, table=True):
    """A browser's sign-in: a session opened with a token, ended by sign-out or expiry.

    Only the SHA-256 of the cookie's secret is stored. The session acts as its token, so
    revoking the token ends every session opened with it.
    """

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(sa_column=sa.Column(sa.String(32), nullable=False, unique=True))
    secret_hash: str = Field(sa_column=sa.Column(sa.String(71), nullable=False))
    token_id: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


def table(model: type[SQLModel]) -> sa.Table:
    """The Core table of ``model``. Statements built on it skip the ORM's per-statement
    work (entity plugins, bulk-persistence bookkeeping): the registration path, which
    runs several per version, uses them.

    Example:
        >>> table(Version).name, "digest" in table(Version).c
        ('versions', True)
    """
    found = model.__table__  # type: ignore[attr-defined]
    assert isinstance(found, sa.Table)
    return found
