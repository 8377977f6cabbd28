"""Two `llmreg serve` processes over one PostgreSQL database run each scheduled job once
per period in total, not once per process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from llmreg.bundle.schema import Bundle
from llmreg.policy import DEFAULT_POLICY_YAML, parse_policy
from llmreg.service import RegistryService
from tests.conftest import free_port, minimal, until_ready

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
PERIOD = 3  # seconds: short, so that three periods pass in a test
POLICY = (DEFAULT_POLICY_YAML.replace("keep_last: 10", "keep_last: 3")
          .replace("deprecation: 1h", f"deprecation: {PERIOD}s")
          .replace("alerts: 1h", f"alerts: {PERIOD}s"))


@pytest.fixture
def pg_url() -> Iterator[str]:
    from tests.pg import fresh_database

    yield from fresh_database()


def start(home: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llmreg_cli", "--registry", str(home),
                                 "serve", "--port", str(port)], env=env, stdout=out,
                                stderr=out)
    url = f"http://127.0.0.1:{port}"
    if until_ready(url):
        return proc, url
    proc.kill()
    raise AssertionError(f"server did not start: {log.read_text()}")


def test_two_servers_run_each_job_once_per_period(tmp_path: Path, pg_url: str) -> None:
    policy_file = tmp_path / "llmreg-policy.yaml"
    policy_file.write_text(POLICY)
    home = tmp_path / "srv" / ".llmreg"
    svc = RegistryService.open_home(home, database_url=pg_url,
                                    policy=parse_policy(POLICY, source=str(policy_file)))
    for i in range(10):  # keep_last 3: seven versions for the deprecation job to archive
        svc.versions.register(Bundle.from_dict(minimal(system_prompt=f"v{i}")), name="chat",
                              message=f"v{i}", author="ana")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMREG_")}
    env.update(LLMREG_DATABASE_URL=pg_url, LLMREG_POLICY=str(policy_file),
               LLMREG_JOBS_TICK="0.2")
    procs = []
    try:
        for n in range(2):
            procs.append(start(home, env, tmp_path / f"server{n}.log")[0])
        first = int(time.time() // PERIOD) + 1  # the first period both servers see whole
        while time.time() < (first + 3) * PERIOD + 1:  # three whole periods, and a second
            time.sleep(0.2)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
    with svc.db.read() as s:
        rows = s.execute(text("SELECT job, period, runner FROM job_runs ORDER BY period")).all()
        archives = s.execute(text("SELECT actor FROM audit_log WHERE action = 'archive'")
                             ).scalars().all()
    for job in ("deprecation", "alerts"):
        periods = [p for j, p, _ in rows if j == job and first <= p < first + 3]
        assert periods == [first, first + 1, first + 2], (job, rows)
    assert len(rows) == len({(j, p) for j, p, _ in rows})
    runners = {r for _, _, r in rows}
    assert 1 <= len(runners) <= 2
    assert archives == ["policy:deprecation"] * 7  # acted once in total, not once per server
    assert svc.audit.verify() > 0
    svc.close()
