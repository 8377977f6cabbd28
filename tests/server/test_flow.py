"""The whole flow over HTTP, through the remote client and raw requests."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from llmreg.client.remote import RemoteClient
from llmreg.errors import (
    ApprovalError,
    AuthError,
    EmptySlotError,
    GateFailedError,
    IntegrityError,
    PermissionDeniedError,
    RefNotFoundError,
    RegistryUnavailableError,
    SlotConflictError,
    UnknownEnvironmentError,
)
from tests.conftest import EXAMPLES
from tests.server.conftest import Server


def ship(server: Server) -> str:
    """pat registers and promotes support-rag@1 to production with ann's and abe's approval."""
    pat = server.client("pat")
    bundle = pat.log_bundle(EXAMPLES / "support-rag", message="first")
    ref = f"{bundle.name}@{bundle.version}"
    pat.promote(ref, to="staging", reason="try")
    pat.log_eval(ref, suite="regression", metrics={"accuracy": 0.93}, report=b"<html>ok</html>")
    server.client("ann").approve(ref, to="production")
    server.client("abe").approve(ref, to="prod", comment="fine")
    pat.promote(ref, to="production", reason="passes")
    return bundle.digest


def test_register_gate_approve_promote_over_http(server: Server) -> None:
    pat = server.client("pat")
    bundle = pat.log_bundle(EXAMPLES / "ticket-classifier", message="first")
    assert (bundle.name, bundle.version, bundle.newly_registered) == ("ticket-classifier", 1,
                                                                      True)
    assert bundle.info is not None and bundle.info.author == "pat"  # the token's subject
    assert bundle.info.provenance["llmreg_version"]
    # The artifact was uploaded as a blob first.
    art = bundle.artifacts[0]
    blob = server.http.get(f"/v1/blobs/{art.digest}", headers=server.headers("rita"))
    assert blob.status_code == 200 and len(blob.content) == art.size
    pat.promote("ticket-classifier@1", to="staging", reason="try")
    with pytest.raises(GateFailedError) as refused:
        pat.promote("ticket-classifier@1", to="production", reason="ship")
    assert refused.value.report is not None
    assert {r.gate for r in refused.value.report.unmet()} == {"eval:regression", "approvals"}
    ann = server.client("ann")  # an approver may publish too, but never approve her own
    ann.log_bundle(EXAMPLES / "meeting-summariser", message="first")
    with pytest.raises(ApprovalError, match="ann is the author of meeting-summariser@1"):
        ann.approve("meeting-summariser@1", to="production")
    digest = ship(server)
    response = server.http.get("/v1/resolve/support-rag/production",
                               headers=server.headers("rita"))
    assert response.status_code == 200
    assert response.headers["ETag"] == f'"{digest}"'
    assert response.headers["X-Llmreg-Version"] == "1"
    again = server.http.get("/v1/resolve/support-rag/prod", headers={
        **server.headers("rita"), "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    subjects = {(e.action, e.actor) for e in server.client("rita").audit("support-rag")}
    assert {("register", "pat"), ("approval", "ann"), ("approval", "abe"),
            ("promote", "pat"), ("evidence", "pat")} <= subjects


def test_write_without_token_401_and_reader_promoting_403(server: Server) -> None:
    ship(server)
    no_token = server.http.post("/v1/promotions", json={"ref": "support-rag@1",
                                                        "env": "staging", "reason": "x"})
    assert no_token.status_code == 401
    assert no_token.json()["errors"][0]["code"] == "UNAUTHORIZED"
    reader = server.client("rita")
    with pytest.raises(PermissionDeniedError, match="this needs publisher"):
        reader.promote("support-rag@1", to="staging", reason="x")
    raw = server.http.post("/v1/promotions", headers=server.headers("rita"),
                           json={"ref": "support-rag@1", "env": "staging", "reason": "x"})
    assert raw.status_code == 403 and raw.json()["errors"][0]["code"] == "DENIED"
    anonymous = RemoteClient("http://registry.test", cache=server.cache / "anon",
                             http=TestClient(server.http.app, base_url="http://registry.test"))
    with pytest.raises(AuthError, match="needs a token with the reader role"):
        anonymous.status()


def test_errors_map_to_client_exceptions(server: Server) -> None:
    ship(server)
    pat = server.client("pat")
    with pytest.raises(RefNotFoundError, match="'nope' is not registered"):
        pat.get("nope@1")
    with pytest.raises(UnknownEnvironmentError, match="use one of staging"):
        pat.resolve("support-rag", env="qa")
    with pytest.raises(EmptySlotError, match="nothing in 'shadow'"):
        pat.resolve("support-rag", env="shadow")
    from llmreg.bundle.schema import Bundle

    v2 = pat.log_bundle(Bundle.from_dict({"model": {"provider": "openai",
                                                    "id": "gpt-4o-2024-08-06"},
                                          "template": {"source": "x"}}),
                        name="support-rag", message="v2")
    with pytest.raises(SlotConflictError, match="holds @1, not @2 as expected"):
        pat.promote(f"support-rag@{v2.version}", to="staging", reason="x",
                    expect_current="support-rag@2")
    # The same compare-and-set as the declared If-Match header (an entity tag: quotes
    # dropped); the header wins over the body's expect_current.
    raw = server.http.post("/v1/promotions",
                           headers={**server.headers("pat"), "If-Match": '"support-rag@2"'},
                           json={"ref": f"support-rag@{v2.version}", "env": "staging",
                                 "reason": "x", "expect_current": "support-rag@1"})
    assert raw.status_code == 409 and "holds @1, not @2 as expected" in raw.text
    raw = server.http.post("/v1/promotions",
                           headers={**server.headers("pat"), "If-Match": '"support-rag@1"'},
                           json={"ref": f"support-rag@{v2.version}", "env": "staging",
                                 "reason": "x"})
    assert raw.status_code == 201 and raw.json()["event"]["to_version"] == v2.version
    body = server.http.get("/v1/refs/nope@1", headers=server.headers("rita")).json()
    assert body == {"errors": [{"code": "BUNDLE_UNKNOWN", "detail": None,
                                "message": "'nope' is not registered; see `llmreg list` for "
                                           "the names there are"}]}


def test_same_api_reads(server: Server) -> None:
    ship(server)
    rita = server.client("rita")
    assert [n.name for n in rita.list()] == ["support-rag"]
    assert [v.version for v in rita.history("support-rag")] == [1]
    assert rita.get("support-rag@production").digest == rita.info("support-rag@1").digest
    (row,) = rita.status(env="production")
    assert row.promoted_by == "pat"
    assert [e.type for e in rita.evidence("support-rag@1")] == ["eval"]
    assert rita.evidence("support-rag@1")[0].report_digest is not None
    assert rita.verify_audit() >= 7
    assert rita.policy.digest == server.service.policy.digest
    assert rita.actor.name == "rita"
    assert rita.diff("support-rag@1", "support-rag@production").identical
    assert rita.diff("support-rag@1", str(EXAMPLES / "support-rag")).identical
    everything = server.http.get("/v1/environments/prod", headers=server.headers("rita")).json()
    assert everything["env"] == "production"
    assert everything["items"][0]["manifest"]["model"]["id"] == "gpt-4o-2024-08-06"


def test_blob_range_and_pagination(server: Server) -> None:
    data = bytes(range(256)) * 40
    from llmreg.bundle.digest import digest_bytes

    d = digest_bytes(data)
    put = server.http.put(f"/v1/blobs/{d}", content=data, headers=server.headers("pat"))
    assert put.status_code == 200 and put.json()["created"] is True
    wrong = server.http.put(f"/v1/blobs/{digest_bytes(b'other')}", content=data,
                            headers=server.headers("pat"))
    other = digest_bytes(b"other")
    assert wrong.status_code == 400
    assert wrong.json() == {"errors": [{
        "code": "DIGEST_INVALID",
        "message": f"upload for {other} hashes to {d}; nothing was stored",
        "detail": None}]}
    assert not server.service.blobs.exists(other)
    part = server.http.get(f"/v1/blobs/{d}", headers={**server.headers("rita"),
                                                      "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert "immutable" in part.headers["Cache-Control"]
    tail = server.http.get(f"/v1/blobs/{d}", headers={**server.headers("rita"),
                                                      "Range": "bytes=-5"})
    assert tail.content == data[-5:]
    bad = server.http.get(f"/v1/blobs/{d}", headers={**server.headers("rita"),
                                                     "Range": f"bytes={len(data)}-"})
    assert bad.status_code == 416
    pat = server.client("pat")
    for i in range(5):
        from llmreg.bundle.schema import Bundle

        pat.log_bundle(Bundle.from_dict({"model": {"provider": "openai",
                                                   "id": "gpt-4o-2024-08-06"},
                                         "template": {"source": f"v{i}"}}),
                       name="paged", message=f"v{i}")
    first = server.http.get("/v1/names/paged/versions?limit=2",
                            headers=server.headers("rita")).json()
    assert (first["total"], first["next"], len(first["items"])) == (5, 2, 2)
    assert [v.version for v in pat.history("paged")] == [1, 2, 3, 4, 5]


def test_oversized_and_malformed_bodies(server: Server) -> None:
    huge = server.http.post("/v1/names/x/versions", headers={
        **server.headers("pat"), "Content-Type": "application/json",
        "Content-Length": str(64 * 1024 * 1024)}, content=b"{}")
    assert huge.status_code == 413 and huge.json()["errors"][0]["code"] == "PAYLOAD_TOO_LARGE"
    bad = server.http.post("/v1/promotions", headers=server.headers("pat"),
                           json={"ref": "x@1"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["code"] == "REQUEST_INVALID"
    assert "env" in bad.json()["errors"][0]["message"]
    floating = server.http.post("/v1/names/x/versions", headers=server.headers("pat"), json={
        "manifest": {"model": {"provider": "openai", "id": "gpt-4o"},
                     "template": {"source": "x"}}, "message": "m"})
    assert floating.status_code == 400
    assert floating.json()["errors"][0]["code"] == "MODEL_ID_FLOATING"
    assert server.service.versions.list_names() == []


def test_resolve_cache_fallback_with_mock_transport(server: Server, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    ship(server)
    app_http = server.client("rita")._backend._http
    state = {"down": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if state["down"] == "500":
            return httpx.Response(503, json={"errors": [{"code": "SERVER_ERROR",
                                                         "message": "db down"}]})
        if state["down"]:
            raise httpx.ConnectError("connection refused", request=request)
        forwarded = app_http.request(request.method, str(request.url.path),
                                     headers=dict(request.headers))
        return httpx.Response(forwarded.status_code, headers=forwarded.headers,
                              content=forwarded.content)

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://registry.test",
                        headers=server.headers("rita"))
    client = RemoteClient("http://registry.test", http=http, cache=tmp_path / "c")
    live = client.resolve("support-rag", env="production")
    assert (live.version, live.env, live.served_from_cache) == (1, "production", False)
    assert client.resolve("support-rag", env="prod").digest == live.digest  # via 304
    for mode in (True, "500"):
        state["down"] = mode
        with caplog.at_level(logging.WARNING, logger="llmreg"):
            cached = client.resolve("support-rag", env="production")
        assert cached.digest == live.digest and cached.served_from_cache
        assert "serving the cached support-rag@production" in caplog.text
        with pytest.raises(RegistryUnavailableError, match="strict=True"):
            client.resolve("support-rag", env="production", strict=True)
        with pytest.raises(RegistryUnavailableError, match="over max_stale"):
            client.resolve("support-rag", env="production", max_stale=-1)
    with pytest.raises(RegistryUnavailableError, match="no cached answer"):
        client.resolve("support-rag", env="staging")
    # A cached manifest edited on disk is detected, never served.
    blob = client._backend._cache._blobs.path(live.digest)
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes().replace(b"Acme", b"Evil"))
    with pytest.raises(RegistryUnavailableError, match="cannot be used.*corrupt"):
        client.resolve("support-rag", env="production")
    state["down"] = False  # back up: the damaged copy is replaced, and served live again
    healed = client.resolve("support-rag", env="production")
    assert healed.digest == live.digest and not healed.served_from_cache
    assert client._backend._cache.read(live.digest)


def test_tampered_answer_is_refused(server: Server, tmp_path: Path) -> None:
    ship(server)
    app_http = server.client("rita")._backend._http

    def handler(request: httpx.Request) -> httpx.Response:
        real = app_http.get(str(request.url.path), headers=dict(request.headers))
        return httpx.Response(200, headers=real.headers,
                              content=real.content.replace(b"Acme", b"Evil"))

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://registry.test")
    with pytest.raises(IntegrityError, match="does not hash to its ETag"):
        RemoteClient("http://registry.test", http=http,
                     cache=tmp_path / "c").resolve("support-rag", env="production")


def test_heartbeats_are_batched(server: Server) -> None:
    ship(server)
    client = server.client("rita")
    bundle = client.resolve("support-rag", env="production")
    for _ in range(5):
        client.report_served(bundle)
    assert server.service.access.heartbeats() == []  # nothing sent yet: batched
    client.flush_heartbeats()
    (beat,) = server.service.access.heartbeats("support-rag")
    assert (beat["env"], beat["count"], beat["digest"]) == ("production", 5, bundle.digest)


def test_watch_sees_a_promotion(server: Server, examples: Path) -> None:
    ship(server)
    pat = server.client("pat")
    seen = []
    watcher = server.client("rita").watch("support-rag", env="staging", interval=0.05,
                                          on_change=seen.append)
    try:
        assert watcher.current.version == 1
        (examples / "support-rag" / "system.md").write_text("Be brief.\n")
        pat.log_bundle(examples / "support-rag", message="brief")
        pat.promote("support-rag@2", to="staging", reason="next")
        import time

        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop()
    assert [b.version for b in seen] == [2]

