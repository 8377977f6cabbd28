"""The forms: sign in, sign out, approve, promote, roll back.

Every form carries a CSRF token (see :mod:`llmreg.server.web.auth`); a POST without the
right one is refused with 403 before anything else. An action goes through the same
service call as the CLI and the JSON API — the same gates, the same separation of duties,
the same audit entry — and a refusal shows the message the CLI prints (``error: …``) on
the version page, with the error's HTTP status. After a success the browser is sent back
to the page (303), so a reload never repeats the action.

Example:
    >>> expected_ref("support-rag", "3"), expected_ref("support-rag", "")
    ('support-rag@3', None)
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from llmreg.bundle.names import check_name
from llmreg.errors import AuthError, InvalidRefError, LLMRegError, SlotConflictError, shown
from llmreg.server.deps import state_of
from llmreg.server.errors import status_for
from llmreg.server.web.auth import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    Viewer,
    actor_for,
    check_csrf,
    read_form,
    safe_next,
    set_session,
)
from llmreg.server.web.pages import error_page, signin_form, version_context
from llmreg.server.web.render import page
from llmreg.types import Actor

router = APIRouter(include_in_schema=False)


@router.post("/signin")
async def signin(request: Request) -> Response:
    """Exchange a token for a session cookie, then go where the reader was going."""
    try:
        form = await read_form(request)
        check_csrf(form.get("csrf", ""), request.cookies.get(SIGNIN_COOKIE, ""))
    except LLMRegError as exc:
        return error_page(request, exc)
    target = safe_next(form.get("next"))
    sessions = state_of(request).service.sessions
    try:
        cookie, _ = await run_in_threadpool(sessions.start, form.get("token", "").strip())
    except AuthError as exc:
        return signin_form(request, next_=target, error=str(exc), status=401)
    response = RedirectResponse(target, status_code=303)
    set_session(response, request, cookie)
    response.delete_cookie(SIGNIN_COOKIE, path="/")
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    """End the session server-side and forget the cookie."""
    try:
        form = await read_form(request)
        await run_in_threadpool(actor_for, request, form, "reader")
    except LLMRegError as exc:
        return error_page(request, exc)
    sessions = state_of(request).service.sessions
    await run_in_threadpool(sessions.end, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def expected_ref(name: str, version: str) -> str | None:
    """The ``expect_current`` ref of a promote form ('' : the slot was empty)."""
    return f"{name}@{version}" if version else None


@router.post("/names/{name}/versions/{number}/approve")
async def approve(request: Request, name: str, number: str) -> Response:
    """Approve this version for an environment, as the signed-in approver."""

    def act(actor: Actor, form: dict[str, str]) -> None:
        state_of(request).service.approvals.approve(
            f"{name}@{number}", form.get("env", ""), actor=actor,
            comment=form.get("comment", "").strip())

    return await _action(request, name, number, "approver", act, "approved")


@router.post("/names/{name}/versions/{number}/promote")
async def promote(request: Request, name: str, number: str) -> Response:
    """Promote this version if every gate is met and the slot still holds what the page
    showed (compare-and-set on ``expect``)."""

    def act(actor: Actor, form: dict[str, str]) -> None:
        state = state_of(request)
        svc = state.service
        env = form.get("env", "")
        if "expect" not in form:
            raise InvalidRefError("the promote form has no 'expect' field (the version the "
                                  "slot held when the page was shown); reload the page")
        expect = form["expect"].strip()
        if expect and not expect.isdigit():
            raise InvalidRefError(f"expect {shown(expect, limit=20)} must be a version number "
                                  "or empty")
        if not expect:  # the page showed an empty slot: it must still be empty
            current = svc.overview.slots_of(name).get(svc.policy.canonical_env(env))
            if current is not None:
                raise SlotConflictError(
                    f"{name}/{svc.policy.canonical_env(env)} holds @{current}, not nothing as "
                    f"expected; nothing changed; see `llmreg status {name}`")
        event, _ = svc.lifecycle.promote(f"{name}@{number}", env, actor=actor,
                                         reason=form.get("reason", ""),
                                         expect_current=expected_ref(name, expect))
        state.resolve_cache.invalidate(event.name)

    return await _action(request, name, number, "publisher", act, "promoted")


@router.post("/names/{name}/versions/{number}/rollback")
async def rollback(request: Request, name: str, number: str) -> Response:
    """Return an environment slot (held by this version) to the version before."""

    def act(actor: Actor, form: dict[str, str]) -> None:
        state = state_of(request)
        event = state.service.lifecycle.rollback(name, form.get("env", ""), actor=actor,
                                                 reason=form.get("reason", ""))
        state.resolve_cache.invalidate(event.name)

    return await _action(request, name, number, "publisher", act, "rolled-back")


async def _action(request: Request, name: str, number: str, role: str, act: object,
                  done: str) -> Response:
    """Check the form (session, CSRF, role), act, and answer with the version page."""
    assert callable(act)
    try:
        check_name(name)
        form = await read_form(request)
        actor = await run_in_threadpool(actor_for, request, form, role)
    except LLMRegError as exc:
        return error_page(request, exc)
    try:
        await run_in_threadpool(act, actor, form)
    except LLMRegError as exc:
        return await run_in_threadpool(_refused, request, name, number, exc)
    return RedirectResponse(f"/names/{name}/versions/{number}?done={done}", status_code=303)


def _refused(request: Request, name: str, number: str, exc: LLMRegError) -> Response:
    """The version page again, with the refusal as the CLI prints it."""
    svc = state_of(request).service
    session = svc.sessions.lookup(request.cookies.get(SESSION_COOKIE))
    try:
        context = version_context(svc, Viewer(session), name, number,
                                  error=f"error: {exc}")
    except LLMRegError:  # the version itself is unknown: a plain error page
        return error_page(request, exc)
    return page("version.html", status_for(exc), **context)
