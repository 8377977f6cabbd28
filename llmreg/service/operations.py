"""What each operation of :data:`llmreg.contract.operations.OPERATIONS` does: one
handler per operation, shared by the server's routes and the embedded backend.

A handler takes the service, the acting identity and the operation's inputs as keyword
arguments (path, query and body fields, flattened), and returns the declared response.
The server validates inputs against the contract first; in-process callers pass them as
they are, and the service parts check what they must.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from llmreg.service.registry import RegistryService
    >>> from llmreg.types import Actor
    >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
    >>> HANDLERS["status"](svc, Actor("ana"), name=None, env=None)
    []
    >>> svc.close()
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from llmreg.bundle.schema import Bundle
from llmreg.contract.models import (
    ApprovalResult,
    AuditVerifyResult,
    BundleResponse,
    DeployedBundle,
    EnvironmentResponse,
    FsckResult,
    GateVerdict,
    GcResult,
    HeartbeatResult,
    NewToken,
    NewWebhook,
    OwnerResponse,
    PolicyResponse,
    PromotionResult,
    RegistrationBatch,
    RevokedToken,
    WhoAmI,
)
from llmreg.errors import InvalidBundleError
from llmreg.service.registry import RegistryService
from llmreg.types import Actor

Handler = Callable[..., Any]
HANDLERS: dict[str, Handler] = {}


def handles(name: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the handler of operation ``name``."""

    def register(fn: Handler) -> Handler:
        assert name not in HANDLERS, f"operation {name} has two handlers"
        HANDLERS[name] = fn
        return fn

    return register


def _bundle(svc: RegistryService, manifest: Bundle | dict[str, Any]) -> Bundle:
    """A bundle passed in-process as it is; a manifest sent over HTTP, parsed."""
    if isinstance(manifest, Bundle):
        return manifest
    return Bundle.from_dict(manifest, allow_floating_model_ids=svc.policy.models.allow_floating)


def _provenance(actor: Actor, record: dict[str, Any] | None) -> dict[str, Any]:
    """The provenance as sent, with the workload identity (OIDC) that registered it, which
    the caller cannot write for itself."""
    out = {k: v for k, v in (record or {}).items() if k != "workload"}
    return out | ({"workload": dict(actor.workload)} if actor.workload else {})


def _author(actor: Actor, author: str | None) -> str:
    return author or actor.name


# -- who, what policy ----------------------------------------------------------------------


@handles("whoami")
def whoami(svc: RegistryService, actor: Actor) -> WhoAmI:
    """The identity and roles of the caller's token (``anonymous`` with open reads)."""
    return WhoAmI(subject=actor.name, roles=sorted(actor.roles or []),
                  token_id=actor.token_id, expires_at=actor.expires_at, teams=actor.teams)


@handles("policy")
def policy(svc: RegistryService, actor: Actor) -> PolicyResponse:
    """The policy this registry enforces, its digest and its flow."""
    p = svc.policy
    return PolicyResponse(digest=p.digest, flow=p.describe(), policy=p.canonical_dict())


# -- versions and bundles -------------------------------------------------------------------


@handles("version")
def version(svc: RegistryService, actor: Actor, *, ref: str) -> Any:
    """The version a ref points to (``name@7``, ``name@sha256:…``, ``name@production``)."""
    return svc.versions.resolve(ref)


@handles("bundle")
def bundle(svc: RegistryService, actor: Actor, *, ref: str) -> BundleResponse:
    """A version and its manifest (the client re-hashes the manifest to verify it)."""
    info = svc.versions.resolve(ref)
    return BundleResponse(version=info, manifest=json.loads(svc.blobs.read(info.digest)))


@handles("names")
def names(svc: RegistryService, actor: Actor, *, offset: int = 0, limit: int = 100) -> Any:
    """Registered names with their latest version, by name (paginated)."""
    return svc.versions.names_page(offset=offset, limit=limit)


@handles("versions")
def versions(svc: RegistryService, actor: Actor, *, name: str, offset: int = 0,
             limit: int = 100) -> Any:
    """Every version of a name, oldest first (paginated)."""
    return svc.versions.history_page(name, offset=offset, limit=limit)


@handles("changelog")
def changelog(svc: RegistryService, actor: Actor, *, name: str) -> Any:
    """The release history of a name, newest first."""
    return svc.versions.changelog(name)


@handles("diff")
def diff(svc: RegistryService, actor: Actor, *, old: str, new: str) -> Any:
    """The semantic diff of two refs (``?old=name@3&new=name@production``)."""
    return svc.versions.diff(svc.versions.get(old), svc.versions.get(new))


@handles("stored_diff")
def stored_diff(svc: RegistryService, actor: Actor, *, ref: str) -> Any:
    """The full diff recorded when a version was registered (null for a first version)."""
    return svc.versions.stored_diff(svc.versions.resolve(ref))


@handles("register")
def register(svc: RegistryService, actor: Actor, *, name: str,
             manifest: Bundle | dict[str, Any], message: str,
             provenance: dict[str, Any] | None = None, author: str | None = None,
             team: str | None = None) -> Any:
    """Register a manifest under ``name``; its artifacts must be uploaded first. A new
    name is claimed by the caller's team (``team``: which, for a token in several)."""
    return svc.versions.register(_bundle(svc, manifest), name=name, message=message,
                                 author=_author(actor, author),
                                 provenance=_provenance(actor, provenance), actor=actor,
                                 team=team)


@handles("register_many")
def register_many(svc: RegistryService, actor: Actor, *, name: str,
                  items: list[dict[str, Any]], message: str,
                  author: str | None = None, team: str | None = None) -> RegistrationBatch:
    """Register several manifests as consecutive versions of ``name``, in one
    transaction (at most 500 a request over HTTP; artifacts must be uploaded first)."""
    bundles = []
    for i, item in enumerate(items):
        try:
            bundles.append(_bundle(svc, item["manifest"]))
        except InvalidBundleError as exc:
            raise type(exc)(f"items[{i}]: {exc}") from None
    return RegistrationBatch(items=svc.versions.register_many(
        bundles, name=name, message=message, author=_author(actor, author),
        provenance=[_provenance(actor, item.get("provenance")) for item in items], actor=actor,
        team=team))


# -- environments and slots ------------------------------------------------------------------


@handles("environment")
def environment(svc: RegistryService, actor: Actor, *, env: str) -> EnvironmentResponse:
    """Everything active in one environment, with manifests, in one response."""
    return EnvironmentResponse(env=svc.policy.canonical_env(env), items=[
        DeployedBundle(**dict(r), manifest=json.loads(svc.blobs.read(r.digest)))
        for r in svc.slots.status(env=env)])


@handles("environments")
def environments(svc: RegistryService, actor: Actor) -> Any:
    """Each environment of the policy, its aliases and how many names it holds."""
    return svc.environments.list()


@handles("status")
def status(svc: RegistryService, actor: Actor, *, name: str | None = None,
           env: str | None = None) -> Any:
    """What runs where: one row per environment slot."""
    return svc.slots.status(name, env)


@handles("slot_history")
def slot_history(svc: RegistryService, actor: Actor, *, name: str, env: str) -> Any:
    """Every move of one environment slot."""
    return svc.slots.history(name, env)


@handles("drift")
def drift(svc: RegistryService, actor: Actor, *, a: str, b: str) -> Any:
    """For every name, what environments ``a`` and ``b`` hold and how they differ."""
    return svc.environments.drift(a, b)


# -- evidence, approvals, gates, moves ---------------------------------------------------------


@handles("evidence")
def evidence(svc: RegistryService, actor: Actor, *, ref: str) -> Any:
    """Evidence attached to the digest a ref points to."""
    return svc.evidence.of_digest(svc.versions.resolve(ref).digest)


@handles("attach_evidence")
def attach_evidence(svc: RegistryService, actor: Actor, *, ref: str, type: str, suite: str,
                    metrics: dict[str, Any], links: list[str] | None = None,
                    passed: bool | None = None, report_digest: str | None = None) -> Any:
    """Attach an eval or shadow-metrics record to a ref's digest."""
    return svc.evidence.attach(
        ref, type=type, suite=suite, metrics=dict(metrics), actor=actor,
        links=list(links or []), passed=passed, report_digest=report_digest)


@handles("approvals")
def approvals(svc: RegistryService, actor: Actor, *, ref: str, env: str) -> Any:
    """The approvals a version holds for an environment, oldest first."""
    return svc.approvals.list(ref, env)


@handles("approve")
def approve(svc: RegistryService, actor: Actor, *, ref: str, env: str,
            comment: str = "") -> ApprovalResult:
    """Approve a version for an environment as the caller."""
    info, created = svc.approvals.approve(ref, env, actor=actor, comment=comment)
    return ApprovalResult(**dict(info), created=created)


@handles("gates")
def gates(svc: RegistryService, actor: Actor, *, ref: str, to: str) -> GateVerdict:
    """Judge every gate of promoting ``ref`` to ``to`` (changes nothing)."""
    return GateVerdict(**dict(svc.lifecycle.check_gates(ref, to)))


@handles("promote")
def promote(svc: RegistryService, actor: Actor, *, ref: str, env: str, reason: str,
            expect_current: str | None = None) -> PromotionResult:
    """Promote if every gate is met. ``expect_current`` (or the ``If-Match`` header) is
    compare-and-set: the move happens only if the slot holds that ref now."""
    event, report = svc.lifecycle.promote(ref, env, actor=actor, reason=reason,
                                          expect_current=expect_current)
    return PromotionResult(event=event, report=GateVerdict(**dict(report)))


@handles("rollback")
def rollback(svc: RegistryService, actor: Actor, *, name: str, env: str, reason: str,
             to: int | None = None) -> Any:
    """Return a slot to the version it held before the current one."""
    return svc.lifecycle.rollback(name, env, actor=actor, reason=reason, to=to)


@handles("deprecate")
def deprecate(svc: RegistryService, actor: Actor, *, ref: str, reason: str = "") -> Any:
    """Mark a version deprecated (it keeps serving; new promotions of it are refused)."""
    return svc.lifecycle.deprecate(ref, actor=actor, reason=reason)


@handles("archive")
def archive(svc: RegistryService, actor: Actor, *, ref: str, reason: str = "") -> Any:
    """Archive a version that no slot holds."""
    return svc.lifecycle.archive(ref, actor=actor, reason=reason)


@handles("restore")
def restore(svc: RegistryService, actor: Actor, *, ref: str, reason: str) -> Any:
    """Take an archived version out of the archive (admin; audited with the reason)."""
    return svc.lifecycle.restore(ref, actor=actor, reason=reason)


# -- audit and integrity ------------------------------------------------------------------------


@handles("audit")
def audit(svc: RegistryService, actor: Actor, *, name: str | None = None,
          limit: int | None = None, env: str | None = None) -> Any:
    """Audit-log entries, oldest first (``name``, ``env``: only those; ``limit``: only
    the last N)."""
    return svc.audit.entries(name, limit, env)


@handles("audit_verify")
def audit_verify(svc: RegistryService, actor: Actor, *,
                 head: str | None = None) -> AuditVerifyResult:
    """Recompute the hash chain; 409 ``AUDIT_BROKEN`` naming the first bad entry, or
    saying that ``head`` (a hash noted earlier) is no longer in the log."""
    found = svc.audit.check(head)
    return AuditVerifyResult(verified=found.entries, head=found.head, rows=found.rows,
                             unrecorded=found.unrecorded, anchor=found.anchor)


@handles("verify")
def verify(svc: RegistryService, actor: Actor, *, ref: str) -> Any:
    """Re-hash a version's manifest and artifacts; the problems found (empty: intact)."""
    return svc.integrity.verify(ref)


@handles("fsck")
def fsck(svc: RegistryService, actor: Actor) -> FsckResult:
    """Check every blob and every reference; problems by digest."""
    count, problems = svc.integrity.fsck()
    return FsckResult(blobs=count, problems=problems)


@handles("gc")
def gc(svc: RegistryService, actor: Actor, *, dry_run: bool = True,
       grace: float = 24 * 3600) -> GcResult:
    """List (dry run) or delete unreferenced blobs older than the grace period."""
    return GcResult(blobs=svc.integrity.gc(dry_run=dry_run, grace=grace), deleted=not dry_run)


# -- served traffic -----------------------------------------------------------------------------


@handles("heartbeats")
def heartbeats(svc: RegistryService, actor: Actor, *,
               beats: list[dict[str, Any]]) -> HeartbeatResult:
    """Served-request counts from clients (they feed the stale-production alert)."""
    return HeartbeatResult(accepted=svc.access.record_heartbeats(list(beats), actor=actor))


@handles("served")
def served(svc: RegistryService, actor: Actor, *, name: str | None = None,
           env: str | None = None) -> Any:
    """Per slot and version: when it last served, requests in the last day and week."""
    return svc.traffic.served(name, env)


# -- tokens -------------------------------------------------------------------------------------


@handles("create_token")
def create_token(svc: RegistryService, actor: Actor, *, subject: str, role: str = "reader",
                 expires: str | None = None, teams: dict[str, str] | None = None) -> NewToken:
    """Create a token (expiring at ``expires``, or never) with a registry-wide ``role`` and
    a role in each of its ``teams``; the secret is in this response only."""
    token, info = svc.access.create_token(subject, role, created_by=actor.name,
                                          expires=expires, teams=dict(teams or {}))
    return NewToken(**dict(info), token=token)


@handles("rotate_token")
def rotate_token(svc: RegistryService, actor: Actor, *, token_id: str,
                 expires: str | None = None) -> NewToken:
    """A new token for the subject and role of ``token_id``, which is revoked; the new
    secret is in this response only."""
    token, info = svc.access.rotate_token(token_id, actor=actor.name, expires=expires)
    return NewToken(**dict(info), token=token)


@handles("list_tokens")
def list_tokens(svc: RegistryService, actor: Actor) -> Any:
    """Every token's record (never a secret)."""
    return svc.access.list_tokens()


@handles("revoke_token")
def revoke_token(svc: RegistryService, actor: Actor, *, token_id: str) -> Any:
    """Revoke a token: a server refuses it at once, its other replicas within seconds."""
    info, now = svc.access.revoke(token_id, actor=actor.name)
    return RevokedToken(**dict(info), revoked_now=now)


# -- owners, alerts, deprecation, jobs ---------------------------------------------------------


@handles("owners")
def owners(svc: RegistryService, actor: Actor) -> Any:
    """Every name's owner, by name."""
    return svc.owners.list()


@handles("owner")
def owner(svc: RegistryService, actor: Actor, *, name: str) -> OwnerResponse:
    """The owner of a name (``owner`` is null when it has none)."""
    return OwnerResponse(owner=svc.owners.get(name))


@handles("set_owner")
def set_owner(svc: RegistryService, actor: Actor, *, name: str, team: str,
              contacts: list[str]) -> Any:
    """Set the owning team and contacts of a registered name (audited)."""
    return svc.owners.set(name, team=team, contacts=list(contacts), actor=actor)


@handles("alerts")
def alerts(svc: RegistryService, actor: Actor, *, all: bool = False) -> Any:
    """Open and acknowledged alerts, newest first (``all=true``: closed ones too)."""
    return svc.alerts.list(include_closed=all)


@handles("ack_alert")
def ack_alert(svc: RegistryService, actor: Actor, *, alert_id: int, reason: str) -> Any:
    """Acknowledge an open alert with a reason (audited): it is not reminded again."""
    return svc.alerts.ack(alert_id, reason=reason, actor=actor)


@handles("deprecation_plan")
def deprecation_plan(svc: RegistryService, actor: Actor) -> Any:
    """What the deprecation policy would do now, and why (changes nothing)."""
    return svc.deprecation.plan()


@handles("deprecation_run")
def deprecation_run(svc: RegistryService, actor: Actor) -> Any:
    """Apply the deprecation policy now (under its lock; a second run does nothing)."""
    return svc.deprecation.run()


@handles("run_jobs")
def run_jobs(svc: RegistryService, actor: Actor, *, jobs: list[str] | None = None) -> Any:
    """Run every scheduled job whose period has not run yet (or only ``jobs``)."""
    return svc.jobs.run_due(only=jobs)


# -- webhooks -----------------------------------------------------------------------------------


@handles("add_webhook")
def add_webhook(svc: RegistryService, actor: Actor, *, url: str, events: list[str],
                format: str = "cloudevents", team: str | None = None,
                names: list[str] | None = None) -> NewWebhook:
    """Add a webhook; its `whsec_` signing secret is in this response only. `team` and
    `names` (patterns) scope it to the events about those names. A URL whose host
    resolves to a private, loopback, link-local or metadata address is refused (400)
    unless the policy's `webhooks.allow_hosts` names it."""
    info = svc.notify.add(url, list(events), actor=actor, format=format, team=team,
                          names=list(names or []))
    assert info.secret is not None
    return NewWebhook(**info.model_dump(exclude={"secret"}), secret=info.secret)


@handles("list_webhooks")
def list_webhooks(svc: RegistryService, actor: Actor) -> Any:
    """The webhooks in use (never their secrets)."""
    return svc.notify.list_webhooks()


@handles("remove_webhook")
def remove_webhook(svc: RegistryService, actor: Actor, *, webhook_id: int) -> Any:
    """Remove a webhook; its pending deliveries are dropped."""
    return svc.notify.remove(webhook_id, actor=actor)


@handles("test_webhook")
def test_webhook(svc: RegistryService, actor: Actor, *, webhook_id: int) -> Any:
    """Send a `test` event to the webhook now (one attempt) and answer its outcome."""
    return svc.notify.test(webhook_id, actor=actor)


@handles("deliveries")
def deliveries(svc: RegistryService, actor: Actor, *, failed: bool = False,
               limit: int = 100) -> Any:
    """Deliveries, newest first (`failed`: dead, or pending after a failed attempt)."""
    return svc.notify.deliveries(failed=failed, limit=limit)


@handles("redeliver")
def redeliver(svc: RegistryService, actor: Actor, *, delivery_id: int) -> Any:
    """Queue a delivery again, due now, with the same `webhook-id`."""
    return svc.notify.redeliver(delivery_id, actor=actor)


# -- beside the registry only -------------------------------------------------------------------


@handles("publish")
def publish(svc: RegistryService, actor: Actor, *, dest: str, keys: str,
            timestamp_expiry: float | None = None) -> dict[str, Any]:
    """Publish the signed static mirror (TUF) of what clients read to ``dest``."""
    from llmreg.service.mirror.publisher import publish as publish_mirror

    expiry = timedelta(seconds=timestamp_expiry) if timestamp_expiry else None
    return dict(publish_mirror(svc, dest, Path(keys), timestamp_expiry=expiry).__dict__)


@handles("import_mlflow")
def import_mlflow(svc: RegistryService, actor: Actor, *, tracking_uri: str,
                  map_aliases: dict[str, str] | None = None,
                  model_map: dict[str, str] | None = None, default_model: str | None = None,
                  dry_run: bool = False) -> Any:
    """Import an MLflow registry: read it all first, then write it in one transaction."""
    from llmreg.service.importers.mlflow import MlflowSource, blob_sink, hash_only, plan_mlflow

    source = MlflowSource(tracking_uri)
    try:
        plan = plan_mlflow(source, svc.policy, map_aliases=dict(map_aliases or {}),
                           model_map=dict(model_map or {}), default_model=default_model,
                           sink=hash_only if dry_run else blob_sink(svc.blobs))
    finally:
        source.close()
    return svc.imports.apply(plan, actor=actor, dry_run=dry_run)
