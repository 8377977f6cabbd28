"""Many processes promoting one slot at once, through the real CLI code path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import llmreg
from llmreg.bundle.schema import Bundle
from tests._mp import worker_context
from tests.conftest import minimal

WORKERS = 16
ROUNDS = 10  # 10 contested 16-way rounds (160 promotions); each round checks one winner


def _worker(home: str, url: str | None, user: str, tasks: Any, results: Any,
            barrier: Any) -> None:
    os.environ["LLMREG_HOME"] = home
    os.environ["LLMREG_USER"] = user
    if url is not None:
        os.environ["LLMREG_DATABASE_URL"] = url
    from typer.testing import CliRunner

    from llmreg_cli.main import app

    runner = CliRunner()
    while (task := tasks.get()) is not None:
        barrier.wait(timeout=120)
        result = runner.invoke(app, task, prog_name="llmreg")
        results.put((task[1], result.exit_code, result.stderr))


class Pool:
    """16 warm worker processes that start each round together (a barrier)."""

    def __init__(self, home: Path, url: str | None) -> None:
        ctx = worker_context()
        self.barrier = ctx.Barrier(WORKERS)
        self.results = ctx.Queue()
        self.queues = [ctx.Queue() for _ in range(WORKERS)]
        self.procs = [ctx.Process(target=_worker, args=(str(home), url, f"ops-{i}", q,
                                                        self.results, self.barrier))
                      for i, q in enumerate(self.queues)]
        for p in self.procs:
            p.start()

    def round(self, commands: list[list[str]]) -> list[tuple[str, int, str]]:
        for q, cmd in zip(self.queues, commands, strict=True):
            q.put(cmd)
        return [self.results.get(timeout=300) for _ in commands]

    def close(self) -> None:
        for q in self.queues:
            q.put(None)
        for p in self.procs:
            p.join(timeout=60)


def _register(reg: llmreg.Client, start: int, count: int) -> list[int]:
    out = []
    for i in range(start, start + count):
        b = reg.log_bundle(Bundle.from_dict(minimal(system_prompt=f"candidate {i}")),
                           name="race", message=f"candidate {i}")
        assert b.version is not None
        out.append(b.version)
    return out


@pytest.mark.slow
def test_sixteen_way_promotion_race(tmp_path: Path, database_url: str | None) -> None:
    home = tmp_path / "race" / ".llmreg"
    settings = llmreg.Settings(database_url=database_url, user="tester")
    with llmreg.connect(home, create=True, settings=settings) as reg:
        (base,) = _register(reg, 0, 1)
        reg.promote(f"race@{base}", to="staging", reason="base")
        pool = Pool(home, database_url)
        try:
            current = base
            for r in range(ROUNDS):
                versions = _register(reg, 1 + r * WORKERS, WORKERS)
                results = pool.round([
                    ["promote", f"race@{v}", "--to", "staging", "--reason", f"round {r}",
                     "--expect-current", f"race@{current}"] for v in versions])
                winners = [ref for ref, code, _ in results if code == 0]
                losers = [(code, err) for _, code, err in results if code != 0]
                assert len(winners) == 1, results
                assert len(losers) == WORKERS - 1
                for code, err in losers:
                    assert code == 1
                    assert f"not @{current} as expected; nothing changed" in err
                current = int(winners[0].split("@")[1])
                assert reg.status("race", "staging")[0].version == current

            # Without --expect-current every promotion succeeds, one after another.
            versions = _register(reg, 10_000, WORKERS)
            results = pool.round([["promote", f"race@{v}", "--to", "staging", "--reason",
                                   "free-for-all"] for v in versions])
            assert all(code == 0 for _, code, _ in results), results
        finally:
            pool.close()

        history = reg.slot_history("race", "staging")
        assert len(history) == 1 + ROUNDS + WORKERS
        for before, after in zip(history, history[1:], strict=False):
            assert after.from_version == before.to_version  # a chain, nothing lost
        promotions = [e for e in reg.audit("race") if e.action == "promote"]
        assert len(promotions) == len(history)
        assert reg.verify_audit() == len(reg.audit())
