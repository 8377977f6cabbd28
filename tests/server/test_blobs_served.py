"""Blob reads on a real ``llmreg serve``: peak memory under concurrent Range reads of a
big blob, and a connection closed before the last byte when the blob changes mid-stream."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmreg.store import LocalStore
from tests.e2e.test_serve import Served, local_cli

pytestmark = pytest.mark.slow
MIB = 1024 * 1024


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Served, str]]:
    home = tmp_path / "srv" / ".llmreg"
    s = Served(home, tmp_path)
    local_cli(home, "init")
    token = json.loads(local_cli(home, "token", "create", "--subject", "app", "--role",
                                 "reader", "--json"))["token"]
    s.start()
    yield s, token
    s.stop()


def sparse_blob(home: Path, size: int) -> str:
    """A blob of ``size`` zero bytes, stored as a sparse file (no disk used); its digest."""
    store = LocalStore(home)
    hasher, zeros, left = hashlib.sha256(), bytes(MIB), size
    while left:
        hasher.update(zeros[:min(left, MIB)])
        left -= min(left, MIB)
    digest = f"sha256:{hasher.hexdigest()}"
    store.dir.mkdir(parents=True, exist_ok=True)
    with open(store.path(digest), "wb") as fh:
        fh.truncate(size)
    return digest


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_concurrent_range_reads_of_a_big_blob_stay_in_bounded_memory(
        served: tuple[Served, str]) -> None:
    s, token = served
    assert s.proc is not None
    size = 320 * MIB
    digest = sparse_blob(s.home, size)
    url, auth = f"{s.url}/v1/blobs/{digest}", {"Authorization": f"Bearer {token}"}
    ranges = ["bytes=0-", "bytes=0-", f"bytes=-{200 * MIB}", f"bytes={50 * MIB}-{250 * MIB}",
              None]
    got: dict[int, tuple[int, int]] = {}

    def read(k: int, header: str | None) -> None:
        extra = {"Range": header} if header else {}
        with httpx.stream("GET", url, headers={**auth, **extra}, timeout=60) as answer:
            got[k] = (answer.status_code, sum(len(c) for c in answer.iter_bytes(MIB)))

    threads = [threading.Thread(target=read, args=(k, h)) for k, h in enumerate(ranges)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert got == {0: (206, size), 1: (206, size), 2: (206, 200 * MIB),
                   3: (206, 200 * MIB + 1), 4: (200, size)}
    assert peak_rss(s.proc.pid) < 300 * MIB, peak_rss(s.proc.pid)


@pytest.mark.parametrize("how", ["in place", "renamed over"])
def test_a_blob_changed_mid_stream_closes_the_connection_before_the_last_byte(
        served: tuple[Served, str], how: str) -> None:
    s, token = served
    size = 64 * MIB
    digest = sparse_blob(s.home, size)
    path = LocalStore(s.home).path(digest)
    received = 0
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream(
            "GET", f"{s.url}/v1/blobs/{digest}", headers={"Authorization": f"Bearer {token}",
                                                          "Range": "bytes=0-"},
            timeout=30) as answer:
        assert answer.status_code == 206
        for chunk in answer.iter_raw(MIB):
            if received == 0:
                if how == "in place":
                    with open(path, "r+b") as fh:
                        fh.seek(size - 100)
                        fh.write(b"\x01")
                else:
                    other = path.with_name(".other")
                    with open(other, "wb") as fh:
                        fh.truncate(size)
                        fh.seek(size // 2)
                        fh.write(b"\x01")
                    os.replace(other, path)
            received += len(chunk)
    assert 0 < received < size
    # The server is still well, and says the blob is corrupt from now on.
    again = httpx.get(f"{s.url}/v1/blobs/{digest}", headers={"Authorization": f"Bearer {token}"},
                      timeout=30)
    assert again.status_code == 500
    assert again.json()["errors"][0]["code"] == "INTEGRITY_FAILED"
