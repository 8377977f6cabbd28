"""`llmreg serve --workers 2` under wrk: /metrics counts every resolve, whichever worker
answered it (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES
from tests.e2e.test_serve import Served, local_cli

pytestmark = [pytest.mark.slow, pytest.mark.flaky_prone]

RESOLVES = "llmreg_resolves_total"


def workers_that_counted(folder: Path) -> int:
    """How many worker processes have written a resolve tally to their own counter file
    (prometheus-client names each `counter_<pid>.db`)."""
    from prometheus_client.mmap_dict import MmapedDict

    counted = 0
    for path in folder.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        if any(RESOLVES in key and value > 0 for key, value, *_ in values):
            counted += 1
    return counted


def warm_every_worker(url: str, auth: dict[str, str], folder: Path, workers: int) -> int:
    """Resolve on fresh connections until every worker has served and written its tally:
    the kernel hands each new connection to one worker, so a load started as soon as the
    first worker is ready may never reach the second. Returns the requests sent."""
    sent = 0
    deadline = time.monotonic() + 60
    while workers_that_counted(folder) < workers:
        assert time.monotonic() < deadline, f"only {workers_that_counted(folder)} workers served"
        for _ in range(10):
            with httpx.Client(timeout=10) as fresh:  # one connection each
                assert fresh.get(url, headers=auth).status_code == 200
            sent += 1
        time.sleep(0.6)  # a worker writes its tallies within FLUSH_AFTER (0.5 s)
    return sent


def test_the_resolve_counter_equals_wrks_request_count_across_two_workers(
        tmp_path: Path) -> None:
    wrk = shutil.which("wrk")
    assert wrk, "wrk is needed (apt-get install wrk)"
    home = tmp_path / "srv" / ".llmreg"
    s = Served(home, tmp_path)
    local_cli(home, "init")
    token = json.loads(local_cli(home, "token", "create", "--subject", "app", "--role",
                                 "reader", "--json"))["token"]
    local_cli(home, "register", str(EXAMPLES / "ticket-classifier"), "-m", "first")
    local_cli(home, "owner", "set", "ticket-classifier", "--team", "support", "--contact",
              "support@example.com")
    local_cli(home, "promote", "ticket-classifier@1", "--to", "staging", "--reason", "r")
    folder = tmp_path / "prom"
    s.env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    s.start(workers=2)
    try:
        auth = {"Authorization": f"Bearer {token}"}
        resolve = f"{s.url}/v1/resolve/ticket-classifier/staging"
        warm = warm_every_worker(resolve, auth, folder, workers=2)
        run = subprocess.run(
            [wrk, "-t2", "-c8", "-d3s", "-H", f"Authorization: Bearer {token}",
             resolve],
            capture_output=True, text=True, timeout=60, check=True)
        m = re.search(r"(\d+) requests in", run.stdout)
        assert m and "Non-2xx" not in run.stdout, run.stdout
        sent = int(m.group(1)) + warm
        time.sleep(1.5)  # each worker writes its tallies within FLUSH_AFTER (0.5 s)
        text = httpx.get(f"{s.url}/metrics", headers=auth, timeout=10).text
        counted = sum(float(v) for v in re.findall(
            "^" + RESOLVES + r'\{[^}]*status="200"[^}]*\} (\S+)$', text, re.M))
        assert sent > 1000
        assert abs(counted - sent) <= 0.01 * sent, (counted, sent)
        # Both workers wrote their own values.
        assert workers_that_counted(folder) == 2
    finally:
        s.stop()
