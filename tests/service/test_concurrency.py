"""Many processes registering into one SQLite registry at once."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

import llmreg
from llmreg.bundle.schema import Bundle
from tests._mp import worker_context
from tests.conftest import minimal

PROCESSES = 8
PER_PROCESS = 50


def _settings(url: str | None) -> llmreg.Settings:
    return llmreg.Settings(database_url=url, user="tester")


def _worker(home: str, url: str | None, worker: int, start: object, errors: object) -> None:
    try:
        start.wait()  # type: ignore[attr-defined]
        with llmreg.connect(home, create=True, settings=_settings(url)) as reg:
            for i in range(PER_PROCESS):
                bundle = Bundle.from_dict(minimal(system_prompt=f"worker {worker} item {i}"))
                reg.log_bundle(bundle, name="busy-bot", message=f"w{worker} i{i}",
                               author=f"worker-{worker}")
    except BaseException:  # report everything, including SystemExit, to the parent
        errors.put(traceback.format_exc())  # type: ignore[attr-defined]


@pytest.mark.slow
def test_parallel_registrations_number_without_gaps(tmp_path: Path,
                                                    database_url: str | None) -> None:
    home = tmp_path / "shared" / ".llmreg"  # brand new: the processes also race to migrate
    ctx = worker_context()
    start = ctx.Event()
    errors = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(home), database_url, w, start, errors))
             for w in range(PROCESSES)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=300)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    assert [p.exitcode for p in procs] == [0] * PROCESSES

    with llmreg.connect(home, settings=_settings(database_url)) as reg:
        history = reg.history("busy-bot")
        assert reg.verify_audit() == len(history)
    total = PROCESSES * PER_PROCESS
    assert [v.version for v in history] == list(range(1, total + 1))
    assert len({v.digest for v in history}) == total
    # Every version's parent is the version before it: no lost updates.
    for prev, cur in zip(history, history[1:], strict=False):
        assert cur.parent_digest == prev.digest


@pytest.mark.slow
def test_parallel_identical_registrations_make_one_version(tmp_path: Path,
                                                           database_url: str | None) -> None:
    home = tmp_path / "same" / ".llmreg"
    with llmreg.connect(home, create=True, settings=_settings(database_url)):
        pass
    ctx = worker_context()
    start = ctx.Event()
    errors = ctx.Queue()
    procs = [ctx.Process(target=_same_worker, args=(str(home), database_url, start, errors))
             for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=120)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    # None means still running after the timeout; 0 means the worker finished cleanly.
    assert [p.exitcode for p in procs] == [0] * 4
    with llmreg.connect(home, settings=_settings(database_url)) as reg:
        (only,) = reg.history("same-bot")
        assert only.version == 1
        assert reg.verify_audit() == 1  # one register entry, not one per process


def _same_worker(home: str, url: str | None, start: object, errors: object) -> None:
    try:
        start.wait()  # type: ignore[attr-defined]
        with llmreg.connect(home, settings=_settings(url)) as reg:
            for _ in range(10):
                reg.log_bundle(Bundle.from_dict(minimal()), name="same-bot", message="same")
    except BaseException:
        errors.put(traceback.format_exc())  # type: ignore[attr-defined]
