"""The HTTP contract: request and response bodies of the ``/v1`` API, declared once.

The server declares these as its routes' bodies and ``response_model``; the remote
client validates what it receives with the same classes, so the two cannot drift.
Records the registry already returns (:class:`~llmreg.types.VersionInfo`,
:class:`~llmreg.types.SlotEventInfo`, …) are reused as they are; this module adds
only the envelopes around them. It imports pydantic and :mod:`llmreg.types`, never
fastapi or sqlmodel (the client imports it lazily).

Example:
    >>> PromotionBody(ref="chat@3", env="production", reason="evals pass").env
    'production'
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, computed_field

from llmreg.types import (
    ApprovalInfo,
    GateReport,
    OwnerInfo,
    Problem,
    Registration,
    SlotEventInfo,
    SlotStatus,
    TokenInfo,
    VersionInfo,
    WebhookInfo,
)

# -- errors ----------------------------------------------------------------------------


class ErrorItem(BaseModel):
    """One error: a stable ``code`` (see :mod:`llmreg.errors`), a message naming the
    object and the next step, and an optional machine-readable ``detail``."""

    code: str
    message: str
    detail: Any = None


class ErrorBody(BaseModel):
    """The one error shape of every non-2xx answer (OCI distribution-spec style)."""

    errors: list[ErrorItem]


# -- request bodies ----------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterBody(_Body):
    """``POST /v1/names/{name}/versions``: the manifest's artifacts are uploaded first."""

    manifest: dict[str, JsonValue]
    message: str = Field(max_length=10_000)
    provenance: dict[str, JsonValue] = {}
    team: str | None = Field(None, max_length=128)  # which team claims a new name


MAX_BATCH_HTTP = 500  # bundles in one batch request (~1 KB to 30 KB each)


class RegisterItem(_Body):
    """One bundle of a batch: its manifest and its provenance."""

    manifest: dict[str, JsonValue]
    provenance: dict[str, JsonValue] = {}


class RegisterManyBody(_Body):
    """``POST /v1/names/{name}/version-batches``: consecutive versions of one name, in
    one transaction (artifacts uploaded first)."""

    items: list[RegisterItem] = Field(min_length=1, max_length=MAX_BATCH_HTTP)
    message: str = Field(max_length=10_000)
    team: str | None = Field(None, max_length=128)  # which team claims a new name


class EvidenceBody(_Body):
    """``POST /v1/evidence``."""

    ref: str
    type: Literal["eval", "shadow-metrics"]
    suite: str
    metrics: dict[str, JsonValue]
    links: list[str] = Field(default=[], max_length=20)
    passed: bool | None = None
    report_digest: str | None = None


class ApprovalBody(_Body):
    """``POST /v1/approvals``."""

    ref: str
    env: str
    comment: str = Field("", max_length=2000)


class PromotionBody(_Body):
    """``POST /v1/promotions``; ``expect_current`` (or ``If-Match``) is compare-and-set."""

    ref: str
    env: str
    reason: str = Field(max_length=2000)
    expect_current: str | None = None


class RollbackBody(_Body):
    """``POST /v1/rollbacks``: back one step, or ``to`` a version the slot held before."""

    name: str
    env: str
    reason: str = Field(max_length=2000)
    to: int | None = Field(None, ge=1, le=2**31 - 1)


class RetireBody(_Body):
    """``POST /v1/deprecations`` and ``POST /v1/archives``."""

    ref: str
    reason: str = Field("", max_length=2000)


class RestoreBody(_Body):
    """``POST /v1/restores``: an archived version back out of the archive (admin)."""

    ref: str
    reason: str = Field(max_length=2000)


# Requests one beat may report: a client flushes every 30 s, so this is ~33,000 requests
# a second from one process for one slot, far above what one process serves of an LLM
# call. The service refuses more, naming the beat (``llmreg.service.hygiene.traffic``).
MAX_BEAT_COUNT = 1_000_000


class Beat(_Body):
    """Requests served from one slot's digest since the last beat (0: none, ignored)."""

    name: str
    env: str
    digest: str
    # The maximum is checked by the service, whose refusal names the beat and the fix;
    # here it only shows in the OpenAPI.
    count: int = Field(1, ge=0, json_schema_extra={"maximum": MAX_BEAT_COUNT})


class HeartbeatBody(_Body):
    """``POST /v1/heartbeats``."""

    beats: list[Beat] = Field(max_length=1000)


class GcBody(_Body):
    """``POST /v1/gc``: list (dry run) or delete unreferenced blobs older than ``grace`` s."""

    dry_run: bool = True
    grace: float = Field(24 * 3600, ge=0)


class TokenBody(_Body):
    """``POST /v1/tokens``: ``expires`` is a duration (``90d``, ``12h``, ``30m``) or an
    ISO date or time, at most 5 years ahead; without it the token never expires."""

    subject: str
    role: Literal["reader", "publisher", "approver", "admin"] = "reader"  # registry-wide
    expires: str | None = Field(None, max_length=64)
    teams: dict[str, Literal["reader", "publisher", "approver"]] = Field({}, max_length=32)


class RotateTokenBody(_Body):
    """``POST /v1/tokens/{token_id}/rotate``: the new token's ``expires`` (as in
    :class:`TokenBody`; without it the new token never expires)."""

    expires: str | None = Field(None, max_length=64)


class WebhookBody(_Body):
    """``POST /v1/webhooks``: where to send which events, in which format."""

    url: str = Field(max_length=2048)
    events: list[str] = Field(max_length=32)
    format: str = Field("cloudevents", max_length=32)  # cloudevents or slack
    team: str | None = Field(None, max_length=128)  # only names this team owns
    names: list[str] = Field([], max_length=20)  # only names matching these patterns


# -- responses ---------------------------------------------------------------------------


class BlobPut(BaseModel):
    """``PUT /v1/blobs/{digest}``: the stored blob, and whether this upload added it."""

    digest: str
    size: int
    created: bool


class RegistrationBatch(BaseModel):
    """What a batch registration returned: one :class:`Registration` per bundle, in
    order."""

    items: list[Registration]


class WhoAmI(BaseModel):
    """``GET /v1/whoami``: the caller, and the token they called with (none when reads are
    open and no token was sent)."""

    subject: str
    roles: list[str]
    token_id: str | None = None
    expires_at: datetime | None = None  # None: the token never expires
    teams: dict[str, str] | None = None  # the role per team ("*": registry-wide)


class BundleResponse(BaseModel):
    """``GET /v1/bundles/{ref}``: re-hash ``manifest`` to check ``version.digest``."""

    version: VersionInfo
    manifest: dict[str, Any]


class DeployedBundle(SlotStatus):
    """One slot of an environment with the manifest it serves."""

    manifest: dict[str, Any]


class EnvironmentResponse(BaseModel):
    """``GET /v1/environments/{env}``: everything active in one environment."""

    env: str
    items: list[DeployedBundle]


class GateVerdict(GateReport):
    """A :class:`GateReport` as sent over HTTP: with ``passed``, the verdict."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


class PromotionResult(BaseModel):
    """``POST /v1/promotions``: the slot's move and the gates it passed."""

    event: SlotEventInfo
    report: GateVerdict


class ApprovalResult(ApprovalInfo):
    """``POST /v1/approvals``: the approval, and whether this call added it."""

    created: bool


class RevokedToken(TokenInfo):
    """``DELETE /v1/tokens/{token_id}``: the token's record, and whether this call revoked
    it (False: it was revoked already, at ``revoked_at``, and nothing changed)."""

    revoked_now: bool = True


class NewToken(TokenInfo):
    """``POST /v1/tokens`` (and ``…/rotate``): the token's record and its secret (sent
    this once only)."""

    token: str


class NewWebhook(WebhookInfo):
    """``POST /v1/webhooks``: the webhook and its ``whsec_`` signing secret (sent this
    once only)."""

    secret: str


class HeartbeatResult(BaseModel):
    """``POST /v1/heartbeats``."""

    accepted: int


class GcResult(BaseModel):
    """``POST /v1/gc``: the unreferenced blobs, and whether they were deleted."""

    blobs: list[str]
    deleted: bool


class FsckResult(BaseModel):
    """``GET /v1/fsck``: how many blobs were checked, and the problems found."""

    blobs: int
    problems: list[Problem]


class AuditVerifyResult(BaseModel):
    """``GET /v1/audit/verify``: entries verified and the chain's head hash; the covered
    rows that equal their audited fields, the rows of an upgraded registry that no entry
    recorded (checked by counts only), and the head it was checked against, if any."""

    verified: int
    head: str | None
    rows: int = 0
    unrecorded: int = 0
    anchor: str | None = None


class PolicyResponse(BaseModel):
    """``GET /v1/policy``: the policy's digest, its flow in words, and its canonical form."""

    digest: str
    flow: list[str]
    policy: dict[str, Any]


class Health(BaseModel):
    """``GET /healthz`` and ``GET /readyz``."""

    status: str


# -- owners, deprecation, alerts, jobs ----------------------------------------------------


class OwnerBody(_Body):
    """``POST /v1/names/{name}/owner``: the owning team and one or more contacts."""

    team: str = Field(max_length=128)
    contacts: list[str] = Field(min_length=1, max_length=10)


class OwnerResponse(BaseModel):
    """``GET /v1/names/{name}/owner``: the owner, or null when the name has none."""

    owner: OwnerInfo | None


class AckBody(_Body):
    """``POST /v1/alerts/{alert_id}/ack``: why the alert is acknowledged."""

    reason: str = Field(max_length=2000)


class JobsBody(_Body):
    """``POST /v1/jobs/run``: run the jobs that are due (or only these)."""

    jobs: list[str] | None = Field(None, max_length=10)


# -- beside the registry only (never sent to a server) -------------------------------------


class PublishBody(_Body):
    """Publish the signed mirror to ``dest`` with the keys in the folder ``keys``."""

    dest: str
    keys: str
    timestamp_expiry: float | None = None


class ImportBody(_Body):
    """Import an MLflow registry's prompts and models (``dry_run``: plan only)."""

    tracking_uri: str
    map_aliases: dict[str, str] = {}
    model_map: dict[str, str] = {}
    default_model: str | None = None
    dry_run: bool = False
