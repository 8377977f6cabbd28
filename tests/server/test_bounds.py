"""Bounded cost and honest answers at the HTTP surface: no 2xx for corrupt bytes, bodies
refused before they are read or parsed, and every refusal a 4xx in the one error shape."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llmreg.bundle.digest import digest_bytes
from llmreg.bundle.directory import load_bundle_dir
from llmreg.server.app import create_app
from llmreg.service import RegistryService
from llmreg.settings import Settings
from llmreg.store import LocalStore
from llmreg.store.base import BlobStore
from tests.conftest import EXAMPLES
from tests.server.conftest import Server


def one_error(response, status: int, code: str) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["errors"] and body["errors"][0]["code"] == code
    message: str = body["errors"][0]["message"]
    return message


def manifest() -> dict[str, object]:
    bundle, _ = load_bundle_dir(EXAMPLES / "support-rag")
    return json.loads(bundle.canonical_bytes())


# -- blobs: never a 2xx for bytes that do not match the digest --------------------------

def flip(store: BlobStore, digest: str) -> None:
    """Change one byte of a stored blob, keeping its size (only a hash can tell)."""
    if isinstance(store, LocalStore):
        path = store.path(digest)
        path.chmod(0o644)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        from llmreg.store.s3 import S3Store

        assert isinstance(store, S3Store)
        data = bytearray(store.client.get_object(Bucket=store.bucket,
                                                 Key=store.key(digest))["Body"].read())
        data[len(data) // 2] ^= 0xFF
        store.client.put_object(Bucket=store.bucket, Key=store.key(digest), Body=bytes(data))


def corrupt_blob_answers(http: TestClient, service: RegistryService, token: str,
                         size: int) -> None:
    data = os.urandom(size)
    digest = service.blobs.put_bytes(data).digest
    headers = {"Authorization": f"Bearer {token}"}
    assert http.get(f"/v1/blobs/{digest}", headers=headers).content == data
    flip(service.blobs.store, digest)
    for extra in ({}, {"Range": "bytes=0-99"}, {"Range": f"bytes={size - 10}-"}):
        answer = http.get(f"/v1/blobs/{digest}", headers={**headers, **extra})
        message = one_error(answer, 500, "INTEGRITY_FAILED")
        assert f"blob {digest} is corrupt" in message
        assert answer.headers["cache-control"] == "no-store"
        assert "etag" not in answer.headers
    # The right bytes repair it: the upload is stored, and served again.
    put = http.put(f"/v1/blobs/{digest}", content=data, headers=headers)
    assert put.status_code == 200 and put.json()["created"] is True
    assert http.get(f"/v1/blobs/{digest}", headers=headers).content == data


@pytest.mark.parametrize("size", [1000, 17 * 1024 * 1024], ids=["small", "streamed"])
def test_a_corrupt_local_blob_is_never_served_with_2xx(server: Server, size: int) -> None:
    corrupt_blob_answers(server.http, server.service, server.tokens["pat"], size)


@pytest.mark.s3
def test_a_corrupt_s3_blob_is_never_served_with_2xx(weed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from llmreg.store.s3 import S3Store
    from tests.s3 import BUCKET, new_prefix

    store = S3Store(BUCKET, new_prefix(), client=weed.client())
    service = RegistryService.open(f"sqlite:///{tmp_path / 'r.db'}", store)
    token, _ = service.access.create_token("pat", "publisher", created_by="t")
    with TestClient(create_app(Settings(), service=service)) as http:
        for size in (1000, 17 * 1024 * 1024):
            corrupt_blob_answers(http, service, token, size)
    service.close()


# -- bodies: refused before they are read, bounded while they are read ------------------

@pytest.fixture
def small_limits(tmp_path: Path) -> Iterator[Server]:
    service = RegistryService.open_home(tmp_path / "srv" / ".llmreg")
    app = create_app(Settings(max_body=64 * 1024), service=service)
    token, _ = service.access.create_token("pat", "publisher", created_by="setup")
    with TestClient(app, base_url="http://registry.test") as http:
        yield Server(service, http, {"pat": token}, tmp_path / "cache")
    service.close()


def chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        sent += size
        yield b" " * size


def test_a_body_without_a_token_is_refused_before_it_is_read(small_limits: Server) -> None:
    pulled = 0

    def counted() -> Iterator[bytes]:
        nonlocal pulled
        for chunk in chunks(10 * 1024 * 1024):
            pulled += len(chunk)
            yield chunk

    answer = small_limits.http.post("/v1/names/chat/versions", content=counted(),
                                    headers={"Content-Type": "application/json"})
    message = one_error(answer, 401, "UNAUTHORIZED")
    assert "needs a token" in message and answer.headers["www-authenticate"] == "Bearer"
    assert pulled <= 64 * 1024  # the test client hands over what it has; nothing is parsed
    bad = small_limits.http.post("/v1/evidence", content=b"{}",
                                 headers={"Authorization": "Bearer llmreg_nope"})
    one_error(bad, 401, "UNAUTHORIZED")


def test_a_chunked_body_over_the_limit_is_413_while_streaming(small_limits: Server) -> None:
    answer = small_limits.http.post(
        "/v1/names/chat/versions", content=chunks(1024 * 1024),
        headers={**small_limits.headers("pat"), "Content-Type": "application/json"})
    assert "over 65536 bytes; the limit is 65536" in one_error(answer, 413,
                                                               "PAYLOAD_TOO_LARGE")
    declared = small_limits.http.post(
        "/v1/names/chat/versions", content=b"{}",
        headers={**small_limits.headers("pat"), "Content-Length": str(10**12)})
    one_error(declared, 413, "PAYLOAD_TOO_LARGE")
    nonsense = small_limits.http.post(
        "/v1/names/chat/versions", content=b"{}",
        headers={**small_limits.headers("pat"), "Content-Length": "12abc"})
    assert "Content-Length '12abc' is not a number" in one_error(nonsense, 400, "REF_INVALID")


# -- inputs that used to be 500s ---------------------------------------------------------

def test_what_used_to_be_500s_are_4xx_in_the_one_shape(server: Server) -> None:
    http, pat = server.http, server.headers("pat")
    server.client("pat").log_bundle(EXAMPLES / "support-rag", message="first")
    text = http.post("/v1/evidence", content=b'{"ref": "support-rag@1"}',
                     headers={**pat, "Content-Type": "text/plain"})
    one_error(text, 400, "REQUEST_INVALID")
    assert "input" not in str(text.json()["errors"][0]["detail"])  # nothing echoed back
    nan = http.post("/v1/evidence", content=b'{"ref": "support-rag@1", "type": "eval", '
                    b'"suite": "s", "metrics": {"a": NaN}}',
                    headers={**pat, "Content-Type": "application/json"})
    assert "metrics['a'] = nan is not a number" in one_error(nan, 400, "EVIDENCE_INVALID")
    body = json.dumps({"manifest": manifest(), "message": "m",
                       "provenance": {"metrics": {"loss": float("nan")}}}).encode()
    prov = http.post("/v1/names/other/versions", content=body,
                     headers={**pat, "Content-Type": "application/json"})
    assert "provenance" in one_error(prov, 400, "MANIFEST_INVALID")
    deep = manifest()
    deep["template"] = {"source": "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}"}
    nested = http.post("/v1/names/other/versions", json={"manifest": deep, "message": "m"},
                       headers=pat)
    assert "nests too deeply" in one_error(nested, 400, "TEMPLATE_INVALID")


def test_a_name_with_a_trailing_newline_creates_nothing(server: Server) -> None:
    http, pat = server.http, server.headers("pat")
    assert http.post("/v1/names/support-rag/versions",
                     json={"manifest": manifest(), "message": "m"}, headers=pat
                     ).status_code == 201
    again = http.post("/v1/names/support-rag%0A/versions",
                      json={"manifest": manifest(), "message": "m"}, headers=pat)
    assert "name 'support-rag\\n' has surrounding whitespace or control characters" in \
        one_error(again, 400, "NAME_INVALID")
    names = http.get("/v1/names", headers=pat).json()
    assert [n["name"] for n in names["items"]] == ["support-rag"]


def test_digest_invalid_upload_stores_nothing(server: Server) -> None:
    claimed = digest_bytes(b"what was promised")
    answer = server.http.put(f"/v1/blobs/{claimed}", content=b"something else",
                             headers=server.headers("pat"))
    assert "hashes to" in one_error(answer, 400, "DIGEST_INVALID")
    assert not server.service.blobs.exists(claimed)


def test_no_error_is_cacheable(server: Server) -> None:
    for answer in (server.http.get("/v1/nowhere"),
                   server.http.get("/v1/refs/nobody@1", headers=server.headers("rita")),
                   server.http.get("/v1/names?limit=0", headers=server.headers("rita")),
                   server.http.get("/v1/names")):
        assert answer.status_code >= 400
        assert answer.headers["cache-control"] == "no-store"


def test_every_integer_in_a_path_is_bounded(server: Server) -> None:
    """Each route whose path holds an integer answers a 400 naming it for one the database
    cannot bind (schemathesis once found an alert id of 2**63 raising OverflowError)."""
    spec = server.http.get("/openapi.json").json()
    found = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ints = [p["name"] for p in op.get("parameters", [])
                    if p["in"] == "path" and p["schema"].get("type") == "integer"]
            if not ints:
                continue
            found.append(path)
            for bad in (0, -1, 2**63, 10**30):
                url = path
                for name in ints:
                    url = url.replace("{" + name + "}", str(bad))
                answer = server.http.request(method.upper(), url, json={"reason": "r"},
                                             headers=server.headers("ada"))
                assert ints[0] in one_error(answer, 400, "REQUEST_INVALID"), (method, url)
    assert "/v1/alerts/{alert_id}/ack" in found and len(found) >= 4
