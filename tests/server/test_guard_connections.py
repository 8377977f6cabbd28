"""The body guard's bounds in-process: the role checked before a body byte is read, JSON
counted before it is parsed, large bodies capped, a deadline on the whole body.

What only a real server shows (request heads, slow clients, memory) is in
``tests/e2e/test_slow_clients.py``."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.types import Message

from llmreg.bundle.parse import MAX_DEPTH
from llmreg.contract.operations import OPERATIONS
from llmreg.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServerBusyError,
)
from llmreg.server.guard import BODY_METHODS, LargeBodies, Roles, body_chunks, strict_json
from llmreg.server.routes import blobs, operations, resolve
from llmreg.settings import Settings
from llmreg.types import roles_of
from tests.server.conftest import Server

CHUNK = 64 * 1024
WHO = {"rita": "reader", "pat": "publisher", "ann": "approver"}  # tokens of tests/server


def one_error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text[:300]
    (error,) = response.json()["errors"]
    assert error["code"] == code
    assert response.headers["cache-control"] == "no-store"
    return str(error["message"])


def concrete(path: str) -> str:
    """A path template with each parameter filled in (ids with a number)."""
    return re.sub(r"{(\w+)}", lambda m: "1" if m.group(1).endswith("_id") else "chat", path)


# -- the role, before the body --------------------------------------------------------

WRITES = [(op.method, op.path, op.role) for op in OPERATIONS.values()
          if op.http and op.method in BODY_METHODS and op.role != "reader"]
WRITES.append(("PUT", "/v1/blobs/{digest}", "publisher"))  # the stream, not a table row
ROUTES = [r for module in (resolve, operations, blobs) for r in module.router.routes]


def test_the_guard_knows_every_operation_s_role_from_its_route() -> None:
    roles = Roles(ROUTES)
    for op in OPERATIONS.values():
        if op.http:
            assert roles.role(op.method, concrete(op.path)) == op.role, op.name
    assert roles.role("PUT", "/v1/blobs/sha256:" + "a" * 64) == "publisher"
    assert roles.role("POST", "/v1/no-such-thing") is None
    assert roles.role("PATCH", "/v1/promotions") is None


class Counted:
    """A 16 MiB body handed over chunk by chunk, counting what the server pulled."""

    def __init__(self, total: int = 16 * 1024 * 1024, fill: bytes = b"[") -> None:
        self.total, self.fill, self.pulled = total, fill, 0

    def __iter__(self) -> Iterator[bytes]:
        while self.pulled < self.total:
            self.pulled += CHUNK
            yield self.fill * CHUNK


@pytest.mark.parametrize(("method", "path", "role"), WRITES,
                         ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_a_token_without_the_role_is_refused_before_the_body_is_read(
        server: Server, method: str, path: str, role: str) -> None:
    before = server.http.get("/v1/audit", headers=server.headers("ada")).json()
    url = concrete(path).replace("/v1/blobs/chat", "/v1/blobs/sha256:" + "b" * 64)
    below = [who for who, has in WHO.items() if role not in roles_of(has)]
    assert below
    for who in below:
        body = Counted()
        answer = server.http.request(method, url, content=body, headers={
            **server.headers(who), "Content-Type": "application/json"})
        message = one_error(answer, 403, "DENIED")
        assert f"this needs {role}" in message
        assert body.pulled <= CHUNK  # at most what the test client hands over unasked
    for header in ({}, {"Authorization": "Bearer llmreg_not-a-token"}):
        body = Counted()
        answer = server.http.request(method, url, content=body, headers=header)
        one_error(answer, 401, "UNAUTHORIZED")
        assert body.pulled <= CHUNK
    # Nothing changed: no audit entry, no name.
    assert server.http.get("/v1/audit", headers=server.headers("ada")).json() == before
    assert server.http.get("/v1/names", headers=server.headers("rita")).json()["items"] == []


@pytest.mark.parametrize("path", ["/v1/no-such-thing", "/v1/names", "/v1/whoami"])
def test_a_body_for_a_route_that_does_not_take_one_is_never_read(server: Server,
                                                                  path: str) -> None:
    body = Counted()
    answer = server.http.post(path, content=body, headers=server.headers("ada"))
    assert answer.status_code in (404, 405), answer.text
    assert body.pulled <= CHUNK


# -- JSON: values and depth counted on the bytes ------------------------------------------

DEEP = [
    b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
    b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1),
    b"[{" * 40 + b'"x": 1' + b"}]" * 40,  # 80 levels, alternating
    b'{"manifest": ' + b'{"k": [' * 33 + b"0" + b"]}" * 33 + b"}",  # inside a real key
    b"[" * 1_000_000,  # not even closed
    b'["a", ' + b"[" * 5000 + b"]" * 5000 + b"]",
]
WIDE = [
    b"[" + b"0," * 600_000 + b"0]",
    b"[" + b"{}," * 600_000 + b"{}]",
    b"[" + b'"",' * 600_000 + b'""]',
    b'{"items": [' + b"[[],[]]," * 200_000 + b"[]]}",
    b"{" + b",".join(b'"k%d": null' % i for i in range(600_001)) + b"}",
    b"," * 3_000_000,
]
WITHIN = [
    b"[" * MAX_DEPTH + b"]" * MAX_DEPTH,  # exactly the limit
    json.dumps({"system_prompt": "[" * 100_000 + "," * 100_000}).encode(),  # text, not structure
    json.dumps({"a": 'quote \\" [[[ ' * 1000, "b": [1, 2, [3, [4]]]}).encode(),
    json.dumps([{"k": i} for i in range(100_000)]).encode(),
]


@pytest.mark.parametrize("body", DEEP, ids=range(len(DEEP)))
def test_json_nested_deeper_than_the_limit_is_refused_before_parsing(body: bytes) -> None:
    with pytest.raises(InvalidRequestError, match=f"nested more than {MAX_DEPTH} levels"):
        strict_json(body)


@pytest.mark.parametrize("body", WIDE, ids=range(len(WIDE)))
def test_json_with_more_values_than_the_limit_is_refused_before_parsing(body: bytes) -> None:
    started = time.monotonic()
    with pytest.raises(PayloadTooLargeError, match="LLMREG_MAX_JSON_NODES"):
        strict_json(body, max_nodes=500_000)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("body", WITHIN, ids=range(len(WITHIN)))
def test_json_within_the_bounds_parses(body: bytes) -> None:
    assert strict_json(body, max_nodes=500_000) == json.loads(body)


@pytest.mark.parametrize("body", [
    b'"' + b'\\"' * 4_000_000,  # an escape-only string that never ends
    b'["' + b"\\\\" * 4_000_000 + b'", [[[[]]]]]',
    b'"' * 8_000_000,
    b'["a\\' + b"," * 4_000_000,
])
def test_counting_never_backtracks_or_grows(body: bytes) -> None:
    started = time.monotonic()
    try:
        strict_json(body, max_nodes=1000)
    except (ValueError, InvalidRequestError):  # JSONDecodeError or a bound: either is fine
        pass
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("body", DEEP[:3] + WIDE[:3], ids=range(6))
def test_a_deep_or_wide_body_gets_the_one_error_shape_and_registers_nothing(
        server: Server, body: bytes) -> None:
    for path in ("/v1/names/chat/versions", "/v1/heartbeats", "/v1/evidence"):
        answer = server.http.post(path, content=body, headers={
            **server.headers("pat"), "Content-Type": "application/json"})
        if answer.status_code == 413:
            assert "LLMREG_MAX_JSON_NODES" in one_error(answer, 413, "PAYLOAD_TOO_LARGE")
        else:
            assert "levels deep" in one_error(answer, 400, "REQUEST_INVALID")
    assert server.http.get("/v1/names", headers=server.headers("rita")).json()["items"] == []


# -- large bodies: a few at once --------------------------------------------------------

def test_large_bodies_take_a_slot_and_the_one_too_many_is_told_to_retry() -> None:
    async def scenario() -> None:
        bodies = LargeBodies(Settings(max_large_bodies=2, large_body=1000,
                                      body_idle_timeout=0.2))
        first, second, third = bodies.slot(), bodies.slot(), bodies.slot()
        await first.take_if(999)  # small: no slot
        assert not first.held
        await first.take_if(1000)
        await second.take_if(5000)
        with pytest.raises(ServerBusyError, match="LLMREG_MAX_LARGE_BODIES"):
            await third.take_if(10**9)
        first.give_back()
        first.give_back()  # once only
        await third.take()
        assert third.held and second.held
        second.give_back(), third.give_back()
        for _ in range(2):
            await bodies.slot().take()  # both free again

    asyncio.run(scenario())


# -- the deadline of a whole body -------------------------------------------------------

def trickle(every: float) -> Any:
    async def receive() -> Message:
        await asyncio.sleep(every)
        return {"type": "http.request", "body": b"x" * 100_000, "more_body": True}
    return receive


@pytest.mark.parametrize("every", [0.01, 0.05, 0.15])
def test_a_body_that_keeps_coming_meets_its_deadline(every: float) -> None:
    settings = Settings(body_idle_timeout=1, body_grace=100, max_body=10**12)

    async def read() -> int:
        got = 0
        async for chunk in body_chunks(trickle(every), settings.max_body, settings,
                                       deadline=0.5):
            got += len(chunk)
        return got

    started = time.monotonic()
    with pytest.raises(RequestTimeoutError, match="not complete within 0.5s"):
        asyncio.run(read())
    assert time.monotonic() - started < 1.0
