"""Plain result types the registry returns (no server stack needed to read them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


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


class Registration(BaseModel):
    """What registering returned: the version, and whether it is new."""

    model_config = ConfigDict(frozen=True)

    version: VersionInfo
    created: bool
