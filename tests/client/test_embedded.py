"""The embedded backend: reads through the read-only path, the service opened lazily."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmreg
from llmreg.errors import (
    EmptySlotError,
    InvalidNameError,
    InvalidRefError,
    PolicyError,
    RefNotFoundError,
    UnknownEnvironmentError,
)
from llmreg.settings import Settings
from tests.conftest import minimal


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A registry with chat@1..3, chat@2 in staging."""
    path = tmp_path / "app" / ".llmreg"
    with llmreg.connect(path, create=True) as reg:
        for i in range(3):
            reg.log_bundle(llmreg.Bundle.from_dict(minimal(system_prompt=f"v{i}")),
                           name="chat", message=f"v{i}")
        reg.promote("chat@2", to="staging", reason="try")
    return path


def _service_opened(reg: llmreg.Client) -> bool:
    return reg._backend._service is not None  # type: ignore[attr-defined]


def test_reads_answer_as_the_service_does_without_opening_it(home: Path) -> None:
    with llmreg.connect(home) as reg:
        got = {ref: reg.get(ref) for ref in ("chat@1", "chat", "chat@latest", "chat@staging")}
        prefix = got["chat@1"].digest.split(":")[1][:10]
        got[f"chat@{prefix}"] = reg.get(f"chat@{prefix}")
        resolved = reg.resolve("chat", env="staging")
        by_ref = reg.resolve("chat@3")
        assert not _service_opened(reg)
        service = reg._backend.service  # type: ignore[attr-defined]
        for ref, bundle in got.items():
            want = service.versions.get(ref)
            assert (bundle.digest, bundle.info) == (want.digest, want.info), ref
    assert (resolved.name, resolved.version, resolved.env) == ("chat", 2, "staging")
    assert resolved.digest == got["chat@staging"].digest
    assert (by_ref.name, by_ref.version, by_ref.env) == ("chat", 3, None)
    assert by_ref.render(q="x").to_openai()[0] == {"role": "system", "content": "v2"}


def test_misses_raise_the_services_errors(home: Path) -> None:
    with llmreg.connect(home) as reg:
        with pytest.raises(EmptySlotError, match="'chat' has nothing in 'production'"):
            reg.resolve("chat", env="production")
        with pytest.raises(EmptySlotError, match="'chat' has nothing in 'production'"):
            reg.resolve("chat", env="prod")  # an alias: the service canonicalises it
        with pytest.raises(RefNotFoundError, match="'nope' is not registered"):
            reg.resolve("nope", env="staging")
        with pytest.raises(RefNotFoundError, match="has no version 9"):
            reg.get("chat@9")
        with pytest.raises(RefNotFoundError, match="'nope' is not registered"):
            reg.resolve("nope@1")
        with pytest.raises(InvalidRefError):
            reg.get("chat@nowhere")
        with pytest.raises(UnknownEnvironmentError):
            reg.resolve("chat", env="nowhere")
        with pytest.raises(InvalidNameError):
            reg.resolve("Chat!", env="staging")
        with pytest.raises(InvalidRefError):
            reg.resolve("chat@@")
        # What the reader does not answer, the service does.
        assert reg.resolve("chat", env="pre-prod").env == "staging"
        digest = reg.get("chat@1").digest
        assert reg.resolve(digest).version == 1
        assert _service_opened(reg)


def test_writes_open_the_service_and_reads_see_them(home: Path) -> None:
    with llmreg.connect(home) as reg:
        assert reg.resolve("chat", env="staging").version == 2
        assert not _service_opened(reg)
        reg.promote("chat@3", to="staging", reason="newer")
        assert _service_opened(reg)
        assert reg.resolve("chat", env="staging").version == 3
        reg.log_bundle(llmreg.Bundle.from_dict(minimal(system_prompt="v4")), name="chat",
                       message="v4")
        assert reg.get("chat").version == 4


def test_a_policy_file_is_honoured_before_the_slot_is_read(home: Path) -> None:
    policy = home.parent / "llmreg-policy.yaml"
    policy.write_text("version: 1\nenvironments:\n  production: {}\n"
                      "transitions:\n  - from: registered\n    to: production\n")
    with llmreg.connect(home) as reg:  # staging is gone from the policy: refused
        with pytest.raises(UnknownEnvironmentError):
            reg.resolve("chat", env="staging")
    policy.write_text("version: 1\nenvironments:\n  staging: {}\n"
                      "transitions:\n  - from: registered\n    to: staging\n")
    with llmreg.connect(home) as reg:
        assert reg.resolve("chat", env="staging").version == 2
        assert not _service_opened(reg)
        reg.policy  # noqa: B018 - once loaded, the policy itself answers
        assert reg.resolve("chat", env="staging").version == 2
        with pytest.raises(UnknownEnvironmentError):
            reg.resolve("chat", env="production")  # not in this policy
    policy.write_text("environments: [unclosed\n")
    with llmreg.connect(home) as reg, pytest.raises(PolicyError):
        reg.resolve("chat", env="staging")


def test_a_database_elsewhere_uses_the_service_from_the_start(home: Path,
                                                               tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'other.db'}")
    with llmreg.connect(home, settings=settings) as reg:
        assert _service_opened(reg)
        assert reg.list() == []
    with llmreg.connect(tmp_path / "new" / ".llmreg", create=True) as reg:
        assert _service_opened(reg)  # a new registry is created at once, as before
        assert (tmp_path / "new" / ".llmreg" / "registry.db").is_file()
