"""Every registry operation, declared once.

One :class:`Operation` per operation names its HTTP method and path, the role it needs,
whether it writes, its inputs (path and query parameters, and the body model of
:mod:`llmreg.contract.models`), its response type and the error statuses particular to
it. Everything else is read from this table (MLflow's ``_METHOD_TO_INFO`` pattern):

- the server binds one route per operation (:func:`llmreg.server.routes.bind`) to the
  operation's handler (:mod:`llmreg.service.operations`) and the OpenAPI comes from it;
- :class:`~llmreg.client.remote.HTTPBackend` sends any operation with one generic
  ``call``: path parameters into the URL, query parameters into the query string, the
  rest as the JSON body, and the answer validated as the declared response;
- :class:`~llmreg.client.embedded.EmbeddedBackend` calls the same handler in-process;
- :class:`~llmreg.client.mirror_reader.MirrorBackend` refuses every operation it cannot
  serve from the declaration, not from a stub per method.

Adding an operation is a row here, a handler, and the :class:`~llmreg.client.core.Client`
method (and CLI command) that calls it.

Example:
    >>> OPERATIONS["promote"].method, OPERATIONS["promote"].path, OPERATIONS["promote"].role
    ('POST', '/v1/promotions', 'publisher')
    >>> OPERATIONS["promote"].body_fields
    ('ref', 'env', 'reason', 'expect_current')
    >>> OPERATIONS["approvals"].path_params
    ('ref', 'env')
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import BaseModel

from llmreg.bundle.diff import BundleDiff
from llmreg.contract.models import (
    MAX_BATCH_HTTP,
    AckBody,
    ApprovalBody,
    ApprovalResult,
    AuditVerifyResult,
    BundleResponse,
    EnvironmentResponse,
    EvidenceBody,
    FsckResult,
    GateVerdict,
    GcBody,
    GcResult,
    HeartbeatBody,
    HeartbeatResult,
    ImportBody,
    JobsBody,
    NewToken,
    NewWebhook,
    OwnerBody,
    OwnerResponse,
    PolicyResponse,
    PromotionBody,
    PromotionResult,
    PublishBody,
    RegisterBody,
    RegisterManyBody,
    RegistrationBatch,
    RestoreBody,
    RetireBody,
    RevokedToken,
    RollbackBody,
    RotateTokenBody,
    TokenBody,
    WebhookBody,
    WhoAmI,
)
from llmreg.errors import UnknownOperationError
from llmreg.types import (
    AlertInfo,
    ApprovalInfo,
    AuditInfo,
    ChangelogEntry,
    DeliveryInfo,
    DeprecationReport,
    DriftItem,
    EnvironmentInfo,
    EvidenceInfo,
    ImportReport,
    JobRunInfo,
    NameSummary,
    OwnerInfo,
    Page,
    Problem,
    Registration,
    ServedInfo,
    SlotEventInfo,
    SlotStatus,
    TokenInfo,
    VersionInfo,
    WebhookInfo,
)

Role = Literal["reader", "publisher", "approver", "admin"]
Method = Literal["GET", "POST", "PUT", "DELETE"]

MAX_ROW_ID = 2**63 - 1  # the widest integer SQLite and PostgreSQL's bigint can bind
RowId = Annotated[int, Ge(1), Le(MAX_ROW_ID)]  # a row id: a bad one is a 400 naming it
Offset = Annotated[int, Ge(0), Le(10**9)]  # the database takes no larger offset
Limit = Annotated[int, Ge(1), Le(1000)]


@dataclass(frozen=True)
class Param:
    """A query parameter: its type (with bounds) and its default (``...``: required)."""

    type: Any
    default: Any = ...


@dataclass(frozen=True)
class Operation:
    """One registry operation: what the route, both backends and the OpenAPI read.

    ``path_types`` types the path parameters that are not strings; ``query`` declares
    the query parameters; ``body`` is the JSON body's model. ``local`` names arguments
    only an in-process call passes (the server decides them itself: the author of a
    registration is the token's subject). ``http=False``: the operation runs beside the
    registry only, never through a server, and ``beside`` says why. ``headers`` maps a
    request header to the body field it sets (``If-Match`` on a promotion is its
    compare-and-set, as ``expect_current``). ``on_mirror="drop"``: a static mirror
    drops the call instead of refusing it (an app's heartbeats are the registry's to
    count; a mirror has nowhere to put them, and the app must not fail for it).
    """

    name: str
    method: Method
    path: str
    role: Role
    response: Any
    body: type[BaseModel] | None = None
    query: dict[str, Param] = field(default_factory=dict)
    path_types: dict[str, Any] = field(default_factory=dict)
    writes: bool = False
    errors: tuple[int, ...] = ()
    status: int = 200
    filters: bool = False  # optional inputs filter (an unknown name: empty, not 404)
    local: tuple[str, ...] = ()
    batch: tuple[str, int] | None = None  # (list field, most items a request carries)
    http: bool = True
    beside: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    on_mirror: Literal["refuse", "drop"] = "refuse"

    @property
    def path_params(self) -> tuple[str, ...]:
        """The parameters named in the path, in order."""
        return tuple(re.findall(r"{(\w+)}", self.path))

    @property
    def body_fields(self) -> tuple[str, ...]:
        """The fields of the JSON body, in declaration order."""
        return tuple(self.body.model_fields) if self.body is not None else ()

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every argument a call passes: path, query and body, then local ones."""
        return (*self.path_params, *self.query, *self.body_fields, *self.local)


def _ops(*ops: Operation) -> dict[str, Operation]:
    table: dict[str, Operation] = {}
    for o in ops:
        assert o.name not in table, f"operation {o.name} is declared twice"
        table[o.name] = o
    return table


_NOT_THROUGH_A_SERVER = ("run it where the registry is: --registry FOLDER (or LLMREG_HOME, "
                         "LLMREG_DATABASE_URL and LLMREG_STORE as the server has them)")

OPERATIONS: dict[str, Operation] = _ops(
    # -- who, what policy ------------------------------------------------------------------
    Operation("whoami", "GET", "/v1/whoami", "reader", WhoAmI),
    Operation("policy", "GET", "/v1/policy", "reader", PolicyResponse),
    # -- versions and bundles ---------------------------------------------------------------
    Operation("version", "GET", "/v1/refs/{ref}", "reader", VersionInfo),
    Operation("bundle", "GET", "/v1/bundles/{ref}", "reader", BundleResponse),
    Operation("names", "GET", "/v1/names", "reader", Page[NameSummary],
              query={"offset": Param(Offset, 0), "limit": Param(Limit, 100)}),
    Operation("versions", "GET", "/v1/names/{name}/versions", "reader", Page[VersionInfo],
              query={"offset": Param(Offset, 0), "limit": Param(Limit, 100)}),
    Operation("changelog", "GET", "/v1/names/{name}/changelog", "reader",
              list[ChangelogEntry]),
    Operation("diff", "GET", "/v1/diff", "reader", BundleDiff,
              query={"old": Param(str), "new": Param(str)}),
    Operation("stored_diff", "GET", "/v1/stored-diffs/{ref}", "reader",
              dict[str, Any] | None),
    Operation("register", "POST", "/v1/names/{name}/versions", "publisher", Registration,
              body=RegisterBody, writes=True, status=201, errors=(409,), local=("author",)),
    Operation("register_many", "POST", "/v1/names/{name}/version-batches", "publisher",
              RegistrationBatch, body=RegisterManyBody, writes=True, status=201,
              errors=(409,), local=("author",), batch=("items", MAX_BATCH_HTTP)),
    # -- environments and slots ---------------------------------------------------------------
    Operation("environment", "GET", "/v1/environments/{env}", "reader", EnvironmentResponse),
    Operation("environments", "GET", "/v1/environments", "reader", list[EnvironmentInfo]),
    Operation("status", "GET", "/v1/status", "reader", list[SlotStatus],
              query={"name": Param(str | None, None), "env": Param(str | None, None)}),
    Operation("slot_history", "GET", "/v1/names/{name}/slots/{env}/history", "reader",
              list[SlotEventInfo]),
    Operation("drift", "GET", "/v1/drift", "reader", list[DriftItem],
              query={"a": Param(str), "b": Param(str)}),
    # -- evidence, approvals, gates, moves ---------------------------------------------------
    Operation("evidence", "GET", "/v1/evidence/{ref}", "reader", list[EvidenceInfo]),
    Operation("attach_evidence", "POST", "/v1/evidence", "publisher", EvidenceInfo,
              body=EvidenceBody, writes=True, status=201),
    Operation("approvals", "GET", "/v1/approvals/{ref}/{env}", "reader", list[ApprovalInfo]),
    Operation("approve", "POST", "/v1/approvals", "approver", ApprovalResult,
              body=ApprovalBody, writes=True, status=201, errors=(409,)),
    Operation("gates", "GET", "/v1/gates", "reader", GateVerdict,
              query={"ref": Param(str), "to": Param(str)}),
    Operation("promote", "POST", "/v1/promotions", "publisher", PromotionResult,
              body=PromotionBody, writes=True, status=201, errors=(409, 422),
              headers={"If-Match": "expect_current"}),
    Operation("rollback", "POST", "/v1/rollbacks", "publisher", SlotEventInfo,
              body=RollbackBody, writes=True, status=201, errors=(409,)),
    Operation("deprecate", "POST", "/v1/deprecations", "publisher", VersionInfo,
              body=RetireBody, writes=True, errors=(409,)),
    Operation("archive", "POST", "/v1/archives", "publisher", VersionInfo,
              body=RetireBody, writes=True, errors=(409,)),
    Operation("restore", "POST", "/v1/restores", "admin", VersionInfo,
              body=RestoreBody, writes=True, errors=(409,)),
    # -- audit and integrity ------------------------------------------------------------------
    Operation("audit", "GET", "/v1/audit", "reader", list[AuditInfo], filters=True,
              query={"name": Param(str | None, None), "limit": Param(Limit | None, None),
                     "env": Param(str | None, None)}),
    Operation("audit_verify", "GET", "/v1/audit/verify", "reader", AuditVerifyResult,
              query={"head": Param(str | None, None)}, errors=(409,)),
    Operation("verify", "GET", "/v1/verify/{ref}", "reader", list[Problem]),
    Operation("fsck", "GET", "/v1/fsck", "admin", FsckResult),
    Operation("gc", "POST", "/v1/gc", "admin", GcResult, body=GcBody, writes=True),
    # -- served traffic ------------------------------------------------------------------
    Operation("heartbeats", "POST", "/v1/heartbeats", "reader", HeartbeatResult,
              body=HeartbeatBody, writes=True, status=202, on_mirror="drop"),
    Operation("served", "GET", "/v1/served", "reader", list[ServedInfo], filters=True,
              query={"name": Param(str | None, None), "env": Param(str | None, None)}),
    # -- tokens ------------------------------------------------------------------------------
    Operation("create_token", "POST", "/v1/tokens", "admin", NewToken, body=TokenBody,
              writes=True, status=201),
    Operation("list_tokens", "GET", "/v1/tokens", "admin", list[TokenInfo]),
    Operation("revoke_token", "DELETE", "/v1/tokens/{token_id}", "admin", RevokedToken,
              writes=True),
    Operation("rotate_token", "POST", "/v1/tokens/{token_id}/rotate", "admin", NewToken,
              body=RotateTokenBody, writes=True, status=201, errors=(404, 409)),
    # -- owners, alerts, deprecation, jobs ---------------------------------------------------
    Operation("owners", "GET", "/v1/owners", "reader", list[OwnerInfo]),
    Operation("owner", "GET", "/v1/names/{name}/owner", "reader", OwnerResponse),
    Operation("set_owner", "POST", "/v1/names/{name}/owner", "publisher", OwnerInfo,
              body=OwnerBody, writes=True),
    Operation("alerts", "GET", "/v1/alerts", "reader", list[AlertInfo],
              query={"all": Param(bool, False)}),
    Operation("ack_alert", "POST", "/v1/alerts/{alert_id}/ack", "publisher", AlertInfo,
              body=AckBody, path_types={"alert_id": RowId}, writes=True, errors=(404,)),
    Operation("deprecation_plan", "GET", "/v1/deprecation/plan", "reader", DeprecationReport),
    Operation("deprecation_run", "POST", "/v1/deprecation/run", "admin", DeprecationReport,
              writes=True),
    Operation("run_jobs", "POST", "/v1/jobs/run", "admin", list[JobRunInfo], body=JobsBody,
              writes=True),
    # -- webhooks ------------------------------------------------------------------------------
    Operation("add_webhook", "POST", "/v1/webhooks", "admin", NewWebhook, body=WebhookBody,
              writes=True, status=201),
    Operation("list_webhooks", "GET", "/v1/webhooks", "admin", list[WebhookInfo]),
    Operation("remove_webhook", "DELETE", "/v1/webhooks/{webhook_id}", "admin", WebhookInfo,
              path_types={"webhook_id": RowId}, writes=True, errors=(404,)),
    Operation("test_webhook", "POST", "/v1/webhooks/{webhook_id}/test", "admin", DeliveryInfo,
              path_types={"webhook_id": RowId}, writes=True, errors=(404,)),
    Operation("deliveries", "GET", "/v1/webhook-deliveries", "admin", list[DeliveryInfo],
              filters=True, query={"failed": Param(bool, False), "limit": Param(Limit, 100)}),
    Operation("redeliver", "POST", "/v1/webhook-deliveries/{delivery_id}/redeliver", "admin",
              DeliveryInfo, path_types={"delivery_id": RowId}, writes=True, errors=(404,)),
    # -- beside the registry only ------------------------------------------------------------
    Operation("publish", "POST", "/v1/mirror/publications", "admin", dict[str, Any],
              body=PublishBody, writes=True, http=False,
              beside="publishing runs beside the registry, not through a server: run `llmreg "
                     "publish` on the registry folder, or start the server with `llmreg "
                     "serve --publish DEST`"),
    Operation("import_mlflow", "POST", "/v1/imports/mlflow", "admin", ImportReport,
              body=ImportBody, writes=True, http=False,
              beside="an import writes to the registry itself, not through a server; "
                     + _NOT_THROUGH_A_SERVER),
)
"""Every operation by name. Streams of bytes (blob upload and download) and the resolve
hot path are transport primitives of each backend, not rows here."""


def operation(name: str) -> Operation:
    """The declaration of ``name``; an undeclared name is an
    :class:`~llmreg.errors.UnknownOperationError` naming the closest declared ones.

    Example:
        >>> operation("promote").path
        '/v1/promotions'
        >>> operation("promot")
        Traceback (most recent call last):
        ...
        llmreg.errors.UnknownOperationError: operation 'promot' is not declared in ...
    """
    try:
        return OPERATIONS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), OPERATIONS, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else \
            "see llmreg.contract.operations.OPERATIONS for the declared names"
        raise UnknownOperationError(
            f"operation {str(name)[:80]!r} is not declared in "
            f"llmreg.contract.operations.OPERATIONS; {hint}") from None

