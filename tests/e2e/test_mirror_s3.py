"""The mirror on a real S3 server (SeaweedFS): `llmreg serve --publish s3://…` publishes
each move; with the server stopped, a fresh application process resolves production
from the bucket alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from llmreg.service import RegistryService
from tests.conftest import free_port
from tests.mirror import make_keys, ready_for_production, register, to_production
from tests.s3 import BUCKET, Weed, new_prefix

pytestmark = [pytest.mark.slow, pytest.mark.s3]


def test_an_app_resolves_production_from_the_bucket_with_the_server_stopped(
        weed: Weed, tmp_path: Path) -> None:
    home = tmp_path / "srv" / ".llmreg"
    svc = RegistryService.open_home(home)
    to_production(svc, register(svc, 1))
    v2 = register(svc, 2)
    ready_for_production(svc, v2, accuracy=0.97, reason="next")
    token, _ = svc.access.create_token("pat", "publisher", created_by="setup")
    want = svc.versions.resolve(v2).digest
    svc.close()
    keys = make_keys(tmp_path)
    dest = f"s3://{BUCKET}/{new_prefix()}/mirror"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMREG_", "AWS_"))}
    env.update(AWS_ENDPOINT_URL_S3=weed.endpoint, AWS_ACCESS_KEY_ID="llmreg",
               AWS_SECRET_ACCESS_KEY="llmreg-secret", AWS_DEFAULT_REGION="us-east-1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "llmreg_cli", "--registry", str(home), "serve", "--port",
             str(port), "--publish", dest, "--mirror-keys", str(keys)],
            env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, log.read_text()
            time.sleep(0.1)
        answer = httpx.post(f"{url}/v1/promotions", headers={"Authorization": f"Bearer {token}"},
                            json={"ref": v2, "env": "production", "reason": "ship"}, timeout=30)
        assert answer.status_code == 201, answer.text
    finally:
        server.terminate()
        server.wait(timeout=30)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/readyz", timeout=1)  # the registry server is gone
    app = ("import llmreg, sys\n"
           "b = llmreg.connect().resolve('chat', env='production', strict=True)\n"
           "print(b.version, b.digest, b.served_from_cache, 'boto3' in sys.modules)\n")
    result = subprocess.run(
        [sys.executable, "-c", app], capture_output=True, text=True, timeout=60,
        env=dict(env, LLMREG_URL=dest, LLMREG_TRUSTED_ROOT=str(keys / "root.json"),
                 LLMREG_CACHE=str(tmp_path / "app-cache")))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", want, "False", "True"]
