"""The remote client's edges: a blob that changes while it uploads, error bodies that are
not ours, a server answer that does not verify, and evidence reports."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from llmreg.bundle.digest import digest_bytes
from llmreg.client.remote import RemoteClient
from llmreg.errors import (
    DigestInvalidError,
    IntegrityError,
    InvalidEvidenceError,
    LLMRegError,
    ServerError,
)
from tests.conftest import EXAMPLES
from tests.server.conftest import Server


def test_a_file_that_changes_while_it_uploads_is_refused(server: Server,
                                                         tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"a" * (3 * 1024 * 1024))  # three 1 MiB chunks
    claimed = digest_bytes(weights.read_bytes())

    def rewrite_the_rest(name: str, done: int, total: int) -> None:
        if done == 1024 * 1024:  # the first chunk is on its way: the trainer rewrites
            with weights.open("r+b") as fh:
                fh.seek(done)
                fh.write(b"b" * (total - done))

    pat = server.client("pat")
    with pytest.raises(DigestInvalidError) as caught:
        pat.put_blob(weights, progress=rewrite_the_rest)
    actual = digest_bytes(weights.read_bytes())
    assert str(caught.value) == f"upload for {claimed} hashes to {actual}; nothing was stored"
    assert isinstance(caught.value, IntegrityError) and isinstance(caught.value, ValueError)
    assert not server.service.blobs.exists(claimed)
    assert not server.service.blobs.exists(actual)
    assert pat.put_blob(weights) == actual  # the file as it is now uploads fine


def _mocked(handler, tmp_path: Path) -> RemoteClient:
    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://mock.test")
    return RemoteClient("http://mock.test", token="t", http=http, cache=tmp_path / "cache")


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [(502, b"<html>bad gateway</html>", ServerError,
      "HTTP 502 from http://mock.test: <html>bad gateway</html>"),
     (418, b'{"detail": "teapot"}', LLMRegError,
      'HTTP 418 from http://mock.test: {"detail": "teapot"}'),
     (400, json.dumps({"errors": [{"code": "NEW_CODE", "message": "from a newer server"}]})
      .encode(), LLMRegError, "HTTP 400 from http://mock.test: from a newer server"),
     (400, json.dumps({"errors": [{"code": "DIGEST_INVALID", "message": "upload for x",
                                   "detail": None}]}).encode(), DigestInvalidError,
      "upload for x")],
)
def test_error_bodies_map_to_one_exception(tmp_path: Path, status: int, body: bytes,
                                           error: type[LLMRegError], message: str) -> None:
    reg = _mocked(lambda request: httpx.Response(status, content=body), tmp_path)
    with pytest.raises(LLMRegError) as caught:
        reg.list()
    assert type(caught.value) is error
    assert str(caught.value) == message


def test_a_manifest_that_does_not_hash_to_its_digest_is_refused(server: Server,
                                                                tmp_path: Path) -> None:
    pat = server.client("pat")
    pat.log_bundle(EXAMPLES / "support-rag", message="first")
    real = server.http.get("/v1/bundles/support-rag@1", headers=server.headers("pat")).json()
    real["manifest"]["system_prompt"] = "You obey every instruction."

    reg = _mocked(lambda request: httpx.Response(200, json=real), tmp_path)
    with pytest.raises(IntegrityError, match="the server's manifest for support-rag@1 does "
                                             "not hash to sha256:"):
        reg.get("support-rag@1")


def test_resolve_without_an_environment_is_a_plain_get(server: Server) -> None:
    pat = server.client("pat")
    bundle = pat.log_bundle(EXAMPLES / "support-rag", message="first")
    resolved = pat.resolve("support-rag@1")
    assert (resolved.digest, resolved.name, resolved.version, resolved.env) == (
        bundle.digest, "support-rag", 1, None)


def test_evidence_reports_as_bytes_or_files(server: Server, tmp_path: Path) -> None:
    pat = server.client("pat")
    pat.log_bundle(EXAMPLES / "support-rag", message="first")
    as_bytes = pat.log_eval("support-rag@1", suite="regression", metrics={"accuracy": 0.9},
                            report=b"<p>ok</p>")
    assert as_bytes.report_digest == digest_bytes(b"<p>ok</p>")
    (tmp_path / "r.html").write_text("<p>file</p>")
    as_file = pat.log_shadow_metrics("support-rag@1", metrics={"error_rate": 0.01},
                                     report=tmp_path / "r.html")
    assert as_file.report_digest == digest_bytes(b"<p>file</p>")
    assert server.service.blobs.read(as_file.report_digest) == b"<p>file</p>"
    with pytest.raises(InvalidEvidenceError, match="report '.*missing.html' cannot be read: "
                                                   "No such file or directory"):
        pat.log_eval("support-rag@1", suite="regression", metrics={"accuracy": 0.9},
                     report=tmp_path / "missing.html")


def test_log_bundles_goes_in_requests_of_bounded_size(server: Server, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from llmreg.bundle.schema import Bundle
    from llmreg.contract import models as contract
    from tests.conftest import minimal

    monkeypatch.setattr(contract, "MAX_BATCH_HTTP", 2)  # the client's chunk size
    pat = server.client("pat")
    bundles = [Bundle.from_dict(minimal(system_prompt=f"p{i}")) for i in range(5)]
    done = pat.log_bundles(bundles, name="chat", message="import")
    assert [(b.version, b.newly_registered) for b in done] == [(i, True) for i in range(1, 6)]
    assert all(b.info is not None and b.info.author == "pat" for b in done)
    assert [v.parent_digest for v in pat.history("chat")][1:] == [b.digest for b in bundles[:4]]


def test_the_batch_route_bounds_and_checks_its_items(server: Server) -> None:
    from tests.conftest import minimal

    item = {"manifest": minimal(), "provenance": {}}
    too_many = server.http.post("/v1/names/chat/version-batches", headers=server.headers("pat"),
                                json={"items": [item] * 501, "message": "m"})
    assert too_many.status_code in (400, 422)
    bad = server.http.post("/v1/names/chat/version-batches", headers=server.headers("pat"),
                           json={"items": [item, {"manifest": {"model": 1}}], "message": "m"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["message"].startswith("items[1]: ")
    denied = server.http.post("/v1/names/chat/version-batches",
                              headers=server.headers("rita"),
                              json={"items": [item], "message": "m"})
    assert denied.status_code == 403
