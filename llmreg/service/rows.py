"""Rows to records: the public pydantic shapes of what the database holds.

The service's parts read rows inside their sessions and hand out these records, never
the ORM objects themselves (a record stays valid after its session is closed).

Example:
    >>> from datetime import UTC, datetime
    >>> row = Version(name_id=1, number=3, digest="sha256:" + "a" * 64, author="ana",
    ...               created_at=datetime(2026, 1, 1, tzinfo=UTC), message="shorter")
    >>> version_info("chat", row).ref
    'chat@3'
"""

from __future__ import annotations

from llmreg.contract.operations import MAX_ROW_ID as MAX_ROW_ID
from llmreg.db.models import Approval, Evidence, SlotEvent, Token, Version
from llmreg.types import (
    ApprovalInfo,
    EvidenceInfo,
    GateResult,
    SlotEventInfo,
    TokenInfo,
    VersionInfo,
)


def is_row_id(value: object) -> bool:
    """Whether ``value`` can be a row id: a positive integer the database driver can bind.

    Anything else names nothing, and must not reach the driver (which raises on an
    integer wider than 64 bits instead of finding no row).

    Example:
        >>> is_row_id(7), is_row_id(0), is_row_id(2**63), is_row_id(True)
        (True, False, False, False)
    """
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ROW_ID


def version_info(name: str, v: Version) -> VersionInfo:
    """The record of one version of ``name``."""
    return VersionInfo(name=name, version=v.number, digest=v.digest, author=v.author,
                       created_at=v.created_at, message=v.message,
                       parent_digest=v.parent_digest, provenance=v.provenance,
                       changes=v.changes, diff_digest=v.diff_digest, status=v.status,
                       retired_at=v.retired_at, retire_rule=v.retire_rule,
                       retire_policy=v.retire_policy)


def evidence_info(e: Evidence) -> EvidenceInfo:
    """The record of one piece of evidence."""
    assert e.id is not None  # rows read from the database always have one
    return EvidenceInfo(id=e.id, digest=e.digest, type=e.type, suite=e.suite, metrics=e.metrics,
                        passed=e.passed, report_digest=e.report_digest, links=e.links,
                        created_by=e.created_by, created_at=e.created_at)


def approval_info(name: str, a: Approval) -> ApprovalInfo:
    """The record of one approval of a version of ``name``."""
    return ApprovalInfo(name=name, digest=a.digest, env=a.env, approver=a.approver,
                        roles=a.roles, teams=a.teams, comment=a.comment,
                        created_at=a.created_at)


def event_info(name: str, e: SlotEvent) -> SlotEventInfo:
    """The record of one move of a slot of ``name``."""
    return SlotEventInfo(name=name, env=e.env, action=e.action, from_version=e.from_version,
                         to_version=e.to_version, to_digest=e.to_digest, actor=e.actor,
                         reason=e.reason, policy_digest=e.policy_digest,
                         gates=[GateResult(**g) for g in e.gates], at=e.at)


def token_info(t: Token) -> TokenInfo:
    """The record of one API token (never its secret)."""
    return TokenInfo(token_id=t.token_id, subject=t.subject, role=t.role,
                     created_at=t.created_at, created_by=t.created_by, revoked_at=t.revoked_at,
                     expires_at=t.expires_at, teams=dict(t.teams or {}))
