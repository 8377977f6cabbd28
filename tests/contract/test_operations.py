"""The operation table: every row has a handler whose inputs are exactly the row's, a
route on the server (unless it runs beside the registry only), and a role."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import llmreg
from llmreg.contract.operations import OPERATIONS, Operation
from llmreg.errors import UnknownOperationError
from llmreg.service.operations import HANDLERS


def test_every_operation_has_exactly_one_handler() -> None:
    assert set(HANDLERS) == set(OPERATIONS)


@pytest.mark.parametrize("op", OPERATIONS.values(), ids=lambda o: o.name)
def test_a_handler_takes_exactly_the_declared_inputs(op: Operation) -> None:
    params = list(inspect.signature(HANDLERS[op.name]).parameters)
    assert params[:2] == ["svc", "actor"]
    assert sorted(params[2:]) == sorted(op.inputs), op.name


@pytest.mark.parametrize("op", OPERATIONS.values(), ids=lambda o: o.name)
def test_a_write_is_never_a_get_and_every_path_is_versioned(op: Operation) -> None:
    assert op.path.startswith("/v1/")
    assert op.writes == (op.method != "GET"), op.name
    assert op.http or op.beside, f"{op.name} runs beside the registry only: say why"


def test_the_server_binds_every_http_operation_and_no_other(tmp_path: Path) -> None:
    from llmreg.server.app import create_app
    from llmreg.service.registry import RegistryService
    from llmreg.settings import Settings

    svc = RegistryService.open_home(tmp_path)
    try:
        paths = create_app(Settings(), service=svc).openapi()["paths"]
    finally:
        svc.close()
    for op in OPERATIONS.values():
        bound = paths.get(op.path, {}).get(op.method.lower())
        if not op.http:
            assert bound is None, op.name
            continue
        assert bound is not None, f"{op.method} {op.path} is not bound"
        assert bound["x-llmreg-role"] == op.role
        assert str(op.status) in bound["responses"]
        for status in op.errors:
            assert str(status) in bound["responses"], (op.name, status)


def test_approvals_are_read_by_ref_and_environment(reg: llmreg.Client,
                                                   examples: Path) -> None:
    reg.log_bundle(examples / "ticket-classifier", message="first", author="ana")
    assert reg.approvals("ticket-classifier@1", "production") == []
    reg.approve("ticket-classifier@1", to="production", comment="looks right")
    [got] = reg.approvals("ticket-classifier@1", "production")
    assert (got.approver, got.env, got.comment) == (reg.actor.name, "production",
                                                    "looks right")
    assert reg.approvals("ticket-classifier@1", "staging") == []


def test_an_operation_outside_the_table_is_no_call(reg: llmreg.Client) -> None:
    with pytest.raises(UnknownOperationError,
                       match=r"^operation 'drop_everything' is not declared in llmreg\.contract"
                             r"\.operations\.OPERATIONS; see llmreg\.contract\.operations"):
        reg._backend.call("drop_everything")
    with pytest.raises(UnknownOperationError, match=r"'promot' .*; did you mean promote\?$"):
        reg._backend.call("promot")


def test_every_backend_refuses_an_undeclared_operation(tmp_path: Path) -> None:
    from llmreg.client.mirror_reader import MirrorBackend
    from llmreg.client.remote import HTTPBackend
    from llmreg.settings import Settings

    settings = Settings(cache=tmp_path / "c")
    (tmp_path / "root.json").write_text("{}")
    remote = HTTPBackend("http://registry.invalid", settings=settings, cache=tmp_path / "c")
    mirror = MirrorBackend(f"file://{tmp_path}", trusted_root=tmp_path / "root.json",
                           settings=settings)
    for backend in (remote, mirror):  # refused before anything is sent or read
        with pytest.raises(UnknownOperationError, match="'approve_all' is not declared"):
            backend.call("approve_all")
