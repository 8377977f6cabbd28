"""The pages: environments board, name, version, diff, audit timeline, sign-in.

Each has a stable URL a chat message can carry::

    /                                  every name x every environment
    /names/{name}                      versions, slot history
    /names/{name}/versions/{n}         every section, evidence, approvals, gates, actions
    /names/{name}/diff/{a}..{b}        two versions side by side
    /audit?name=&env=&actor=           the audit timeline and the chain's status

They read through the service's parts exactly as the JSON routes do; lists are pages
cut by the database (``?offset=``; the audit timeline by key, ``?before=SEQ``).

Example:
    >>> from llmreg.policy import Policy
    >>> [e for e, _ in next_envs(Policy.default(), "staging")]
    ['shadow', 'production']
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from llmreg.bundle.names import check_name
from llmreg.bundle.schema import Bundle
from llmreg.errors import InvalidRefError, LLMRegError, TransitionError, shown
from llmreg.policy import Policy, Threshold, describe_approvals
from llmreg.server.deps import state_of
from llmreg.server.errors import status_for
from llmreg.server.state import ChainCheck, ServerState
from llmreg.server.web.auth import SignInRequired, Viewer, new_signin_token, safe_next, viewer
from llmreg.server.web.render import page
from llmreg.server.web.sidebyside import side_by_side
from llmreg.service.registry import RegistryService
from llmreg.teams import check_team
from llmreg.types import EvidenceInfo, GateReport, VersionInfo

router = APIRouter(include_in_schema=False)
PAGE = 50  # rows per page of every list
MAX_OFFSET = 10**9
VERIFY_TTL = 60.0  # seconds an audit-chain verification is shown before it is redone
BUNDLE_CACHE = 256  # parsed bundles kept by digest
_BUNDLES: OrderedDict[str, Bundle] = OrderedDict()
_DIFF_RE = re.compile(r"^([1-9][0-9]{0,8})\.\.([1-9][0-9]{0,8})$")


def html_page(fn: Callable[..., Response]) -> Callable[..., Response]:
    """Wrap a page route: no session where one is needed sends the browser to sign in;
    an :class:`LLMRegError` is shown as an error page with its HTTP status."""

    @functools.wraps(fn)
    def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return fn(request, *args, **kwargs)
        except SignInRequired:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/signin?next={_quote(target)}", status_code=303)
        except LLMRegError as exc:
            return error_page(request, exc)

    return wrapper


def error_page(request: Request, exc: LLMRegError, viewer_: Viewer | None = None) -> Response:
    """The error as the CLI prints it (``error: …``), with the error's HTTP status."""
    return page("error.html", status_for(exc), title="Error", message=str(exc),
                code=exc.code, viewer=viewer_ or Viewer(None))


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def _offset(value: str | None) -> int:
    if value is None or value == "":
        return 0
    if not value.isdigit() or int(value) > MAX_OFFSET:
        raise InvalidRefError(f"offset {shown(value, limit=20)} must be a whole number from 0 to "
                              f"{MAX_OFFSET}")
    return int(value)


@router.get("/")
@html_page
def board(request: Request) -> Response:
    """The environments board: every name x every environment, one page of names."""
    who = viewer(request)
    svc = state_of(request).service
    team = (request.query_params.get("team") or "").strip() or None
    if team is not None:
        check_team(team, field="team")
    rows = svc.overview.board(offset=_offset(request.query_params.get("offset")), limit=PAGE,
                              team=team)
    first, last = svc.overview.drift_pair()
    mine = sorted(t for t in ((who.actor.teams or {}) if who.actor else {}) if t != "*")
    return page("board.html", title="Environments", viewer=who, rows=rows, page_size=PAGE,
                envs=list(svc.policy.environments), drift_pair=(first, last), team=team,
                my_teams=mine)


@router.get("/names/{name}")
@html_page
def name_page(request: Request, name: str) -> Response:
    """A name: its versions (newest first, with the changelog) and its slot history."""
    who = viewer(request)
    check_name(name)
    svc = state_of(request).service
    q = request.query_params
    versions = svc.overview.versions_page(name, offset=_offset(q.get("offset")), limit=PAGE)
    events = svc.overview.slot_events_page(name, offset=_offset(q.get("moves")), limit=PAGE)
    slots = svc.overview.slots_of(name)
    owner = svc.owners.get(name)
    return page("name.html", title=name, viewer=who, name=name, versions=versions,
                events=events, slots=slots, envs=list(svc.policy.environments),
                owner=owner, alerts=svc.alerts.list(name=name), page_size=PAGE,
                rules=who_may(svc.policy, owner.team if owner else None))


def who_may(policy: Policy, owner: str | None) -> list[tuple[str, str]]:
    """Each transition's approvals and movers in words, for a name owned by ``owner``.

    Example:
        >>> who_may(Policy.default(), "search")[0][1][-16:]
        'from team search'
    """
    team = f"team {owner}" if owner else "the owning team"
    rules = []
    for t in policy.transitions:
        parts = []
        if t.gates.approvals is not None:
            parts.append(describe_approvals(t.gates.approvals, owner))
        if t.by:
            parts.append("moved by " + ", ".join(team if b == "owner" else f"team {b}"
                                                 for b in t.by))
        if parts:
            rules.append((f"{t.from_} → {t.to}", "; ".join(parts)))
    return rules


@router.get("/names/{name}/versions/{number}")
@html_page
def version_page(request: Request, name: str, number: str) -> Response:
    """One version: every section, evidence, approvals, gate checks and actions."""
    who = viewer(request)
    done = request.query_params.get("done")
    return page("version.html", **version_context(state_of(request).service, who, name, number,
                                                  done=DONE.get(done or "")))


DONE = {"approved": "Approved.", "promoted": "Promoted.", "rolled-back": "Rolled back."}


def version_context(svc: RegistryService, who: Viewer, name: str, number: str, *,
                    done: str | None = None, error: str | None = None) -> dict[str, Any]:
    """Everything the version page shows (also used to show a refused action)."""
    check_name(name)
    if not number.isdigit() or not 0 < int(number) < 10**9:
        raise InvalidRefError(f"version {shown(number, limit=20)} must be a version number, e.g. "
                              f"/names/{name}/versions/1")
    info = svc.versions.resolve(f"{name}@{number}")
    bundle = load(svc, info.digest)
    evidence = svc.evidence.of_digest(info.digest)
    slots = svc.overview.slots_of(name)
    checks: list[tuple[str, GateReport | None, str]] = []
    for env, _ in next_envs(svc.policy, info.status):
        try:
            checks.append((env, svc.lifecycle.check_gates(info.ref, env), ""))
        except (TransitionError, LLMRegError) as exc:
            checks.append((env, None, str(exc)))
    approvals = svc.overview.approvals_of(name, info.digest)
    weights: list[VersionInfo] = []
    if bundle.model is not None and bundle.model.weights:
        weights = svc.overview.versions_with_digest(bundle.model.weights)
    held = [env for env, v in slots.items() if v == info.version]
    return dict(title=f"{info.ref}", viewer=who, info=info, bundle=bundle, evidence=evidence,
                metric_rows=metric_rows(evidence, svc.policy), checks=checks,
                approvals=approvals, weights=weights, slots=slots, held=held,
                envs=list(svc.policy.environments), done=done, error=error,
                sections=sections_of(bundle), provenance=info.provenance)


def load(svc: RegistryService, digest: str) -> Bundle:
    """The bundle stored under ``digest``, parsed once per process: content never changes
    under its digest, and it was verified when first read."""
    bundle = _BUNDLES.get(digest)
    if bundle is None:
        bundle = svc.versions.load(digest)
        _BUNDLES[digest] = bundle
        if len(_BUNDLES) > BUNDLE_CACHE:
            _BUNDLES.popitem(last=False)
    else:
        _BUNDLES.move_to_end(digest)
    return bundle


def next_envs(policy: Policy, status: str) -> list[tuple[str, Any]]:
    """The environments a version with ``status`` may move to, with their transitions."""
    return [(t.to, t) for t in policy.transitions_from(status)]


def sections_of(bundle: Bundle) -> list[tuple[str, str]]:
    """(anchor, title) of the sections this bundle has, for the page's contents list."""
    present = [("model", "Model", bundle.model is not None),
               ("system-prompt", "System prompt", bool(bundle.system_prompt)),
               ("template", "Template", bundle.template is not None),
               ("few-shot", "Few-shot examples", bool(bundle.few_shot)),
               ("tools", "Tools", bool(bundle.tools)),
               ("response-schema", "Response schema", bundle.response_schema is not None),
               ("retrieval", "Retrieval", bundle.retrieval is not None),
               ("postprocess", "Post-processing", bool(len(bundle.postprocess))),
               ("artifacts", "Artifacts", bool(bundle.artifacts))]
    return [(a, t) for a, t, shown in present if shown]


def metric_rows(evidence: list[EvidenceInfo], policy: Policy
                ) -> dict[int, list[tuple[str, float, list[tuple[str, str, bool | None]]]]]:
    """Evidence id -> (metric, value, [(env, gate bound, met?)]) for each metric: the
    bound of every policy gate that judges it, as its kind declares (``met`` None: judged
    against the slot)."""
    out: dict[int, list[tuple[str, float, list[tuple[str, str, bool | None]]]]] = {}
    for ev in evidence:
        rows = []
        for metric, value in ev.metrics.items():
            bounds: list[tuple[str, str, bool | None]] = []
            for t in policy.transitions:
                for kind, gate in t.gates.each():
                    th = kind.bounds(gate, ev.type, ev.suite).get(metric)
                    if th is not None:
                        bounds.append((f"{t.from_} → {t.to}", th.describe(metric),
                                       _met(th, value)))
            rows.append((metric, value, bounds))
        out[ev.id] = rows
    return out


def _met(th: Threshold, value: float) -> bool | None:
    if th.min is not None and value < th.min:
        return False
    if th.max is not None and value > th.max:
        return False
    if th.min is None and th.max is None:
        return None  # only "no regression": judged against what the slot holds
    return True


@router.get("/names/{name}/diff/{span}")
@html_page
def diff_page(request: Request, name: str, span: str) -> Response:
    """Two versions of a name: prompts side by side, field changes, few-shot, the pin."""
    who = viewer(request)
    check_name(name)
    match = _DIFF_RE.fullmatch(span)
    if match is None:
        raise InvalidRefError(f"diff {shown(span, limit=40)} must be OLD..NEW version "
                              f"numbers, e.g. /names/{name}/diff/1..2")
    a, b = match.groups()
    svc = state_of(request).service
    old_info = svc.versions.resolve(f"{name}@{a}")
    new_info = svc.versions.resolve(f"{name}@{b}")
    old, new = load(svc, old_info.digest), load(svc, new_info.digest)
    d = svc.versions.diff(old, new)
    prompt = side_by_side(old.system_prompt, new.system_prompt) if d.system_prompt else []
    template = side_by_side(old.template.source if old.template else "",
                            new.template.source if new.template else "") \
        if d.template and d.template.source else []
    fields = [("model.parameters", c) for c in (d.model.parameters if d.model else [])]
    fields += [(section, c) for section in ("tools", "response_schema", "retrieval")
               for c in getattr(d, section)]
    return page("diff.html", title=f"{name} @{a} → @{b}", viewer=who, name=name,
                old=old_info, new=new_info, d=d, prompt=prompt, template=template,
                fields=fields)


@router.get("/audit")
@html_page
def audit_page(request: Request) -> Response:
    """The audit timeline, newest first, filtered by name, environment and actor, with
    the hash chain's verification status."""
    who = viewer(request)
    state = state_of(request)
    svc = state.service
    q = request.query_params
    filters = {k: (q.get(k) or "").strip()[:255] for k in ("name", "env", "actor")}
    before = q.get("before")
    entries = svc.overview.audit_page(name=filters["name"] or None,
                                      env=filters["env"] or None,
                                      actor=filters["actor"] or None,
                                      before=_offset(before) if before else None, limit=PAGE)
    given = q.get("head")
    if given is not None:  # a head the reader kept (a webhook event's, a CLI write's)
        if not _HEAD.fullmatch(given):
            raise InvalidRefError("head must be sha256: and 64 lowercase hex digits, as "
                                  "printed by a write or carried by a webhook event")
        chain = ChainCheck()
        check_chain(svc, chain, (f"the head you gave ({given})", given))
    else:
        chain = verified_chain(svc, state.chain, published_anchor(state))
    return page("audit.html", title="Audit log", viewer=who, entries=entries, filters=filters,
                envs=list(svc.policy.environments), chain=chain, page_size=PAGE)


_HEAD = re.compile(r"sha256:[0-9a-f]{64}")
Anchor = tuple[str, str | None]  # what it is, for people; the head hash


def published_anchor(state: ServerState) -> Anchor | None:
    """The audit head this server last signed into its mirror (``serve --publish``): kept
    in this process and in the mirror, out of reach of someone with the database only.

    Example:
        >>> published_anchor(state)  # doctest: +SKIP
        ('the head this server last signed into the mirror file:///srv/m (#42)', 'sha256:…')
    """
    last = state.publisher.last if state.publisher is not None else None
    if last is None or last.audit_head is None:
        return None
    return (f"the head this server last signed into the mirror {last.dest} "
            f"(#{last.audit_seq})", last.audit_head)


def verified_chain(svc: RegistryService, memo: ChainCheck,
                   anchor: Anchor | None = None) -> ChainCheck:
    """The chain's status as last checked. The first audit page checks it there and
    then; after that it is re-checked in the background at most every
    :data:`VERIFY_TTL` seconds (verifying re-hashes every entry, seconds at 10,000s)."""
    if memo.count is None:
        check_chain(svc, memo, anchor)
    elif time.monotonic() - memo.at >= VERIFY_TTL and not memo.running:
        memo.running = True
        threading.Thread(target=check_chain, args=(svc, memo, anchor), daemon=True).start()
    return memo


def check_chain(svc: RegistryService, memo: ChainCheck, anchor: Anchor | None = None) -> None:
    """Verify the audit chain (against ``anchor``'s head, if any) and the rows it covers
    now, and record the answer in ``memo``."""
    head = svc.audit.head()
    rows = unrecorded = 0
    try:
        found = svc.audit.check(anchor[1] if anchor else None)
        count, rows, unrecorded, problem = found.entries, found.rows, found.unrecorded, None
    except LLMRegError as exc:
        count, problem = 0, str(exc)
    finally:
        memo.running = False
    memo.head, memo.count, memo.problem = head, count, problem
    memo.rows, memo.unrecorded, memo.anchor = rows, unrecorded, anchor[0] if anchor else None
    memo.at, memo.checked_at = time.monotonic(), datetime.now(UTC)


@router.get("/signin")
def signin_page(request: Request) -> Response:
    """The sign-in form: paste a token; it becomes a session cookie."""
    return signin_form(request, next_=safe_next(request.query_params.get("next")))


def signin_form(request: Request, *, next_: str, error: str | None = None,
                status: int = 200) -> Response:
    """The sign-in page with a fresh CSRF value (in the form and in its cookie)."""
    holder = Response()
    csrf = new_signin_token(holder, request)
    out = page("signin.html", status, title="Sign in", viewer=Viewer(None), csrf=csrf,
               next=next_, error=error)
    out.headers.append("set-cookie", holder.headers["set-cookie"])
    return out
