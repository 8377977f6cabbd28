"""The composition root: one database, one store and one policy shared by every part,
the embedded registry's folder, and the readiness check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from llmreg.bundle.schema import Bundle
from llmreg.db.engine import HEAD_REVISION
from llmreg.errors import ServerError
from llmreg.policy import DEFAULT_POLICY_YAML as INIT_POLICY_YAML
from llmreg.policy import parse_policy
from llmreg.service import RegistryService
from llmreg.store import LocalStore, MemoryStore
from llmreg.types import Actor
from tests.conftest import minimal

# These tests are about gates, not owners: the init policy without require_owner.
DEFAULT_POLICY_YAML = INIT_POLICY_YAML.replace("require_owner: true", "require_owner: false")


def test_open_home_makes_the_folder_and_reopens_it(tmp_path: Path) -> None:
    home = tmp_path / "deep" / "er" / ".llmreg"
    svc = RegistryService.open_home(home)
    svc.versions.register(Bundle.from_dict(minimal()), name="chat", message="m", author="a")
    svc.close()
    assert (home / "registry.db").is_file()
    again = RegistryService.open_home(home)  # an existing folder is fine
    assert [n.name for n in again.versions.list_names()] == ["chat"]
    assert isinstance(again.blobs.store, LocalStore) and again.blobs.store.root == home
    again.close()


def test_a_store_and_a_database_elsewhere(tmp_path: Path) -> None:
    store = tmp_path / "blobs"
    svc = RegistryService.open_home(tmp_path / "home", store=str(store),
                                    database_url=f"sqlite:///{tmp_path / 'meta.db'}")
    info = svc.versions.register(Bundle.from_dict(minimal()), name="chat", message="m",
                                 author="a").version
    assert LocalStore(store).exists(info.digest)
    assert (tmp_path / "meta.db").is_file() and not (tmp_path / "home" / "registry.db").exists()
    svc.close()


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[RegistryService]:
    """A policy with an environment the default lacks, and floating ids allowed."""
    text_ = DEFAULT_POLICY_YAML.replace("allow_floating: false", "allow_floating: true")
    text_ = text_.replace("  shadow:", "  canary:\n    aliases: [early]\n  shadow:", 1)
    text_ = text_.replace("  - from: staging\n    to: shadow",
                          "  - from: registered\n    to: canary\n\n  - from: staging\n"
                          "    to: shadow", 1)
    policy = parse_policy(text_, source="t")
    service = RegistryService.open(f"sqlite:///{tmp_path / 'r.db'}", MemoryStore(), policy)
    yield service
    service.close()


def test_every_part_works_under_the_one_policy_store_and_database(
        strict: RegistryService) -> None:
    floating = Bundle.from_dict(minimal(model={"provider": "openai", "id": "gpt-4o"}),
                                allow_floating_model_ids=True)
    info = strict.versions.register(floating, name="chat", message="m", author="a").version
    strict.lifecycle.promote("chat@1", "early", actor=Actor("ana"), reason="x")
    assert [(s.env, s.version) for s in strict.slots.status()] == [("canary", 1)]
    assert strict.access.record_heartbeats(
        [{"name": "chat", "env": "early", "digest": info.digest}]) == 1
    assert strict.access.heartbeats()[0]["env"] == "canary"
    assert strict.integrity.verify("chat@canary") == []
    count, problems = strict.integrity.fsck()
    assert problems == [] and count == len(list(strict.blobs.iter_digests()))
    secret, _ = strict.access.create_token("ci", "reader", created_by="a")
    assert strict.access.authenticate(secret) is not None
    assert strict.audit.verify() == len(strict.audit.entries())


def test_ready_when_the_schema_is_current_and_the_store_answers(tmp_path: Path) -> None:
    svc = RegistryService.open_home(tmp_path / "reg")
    svc.check_ready()
    with svc.db.write_engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    with pytest.raises(ServerError, match=f"^the database schema is at 0001, not {HEAD_REVISION}; "
                                          "restart the server"):
        svc.check_ready()
    svc.close()

    class Broken(MemoryStore):
        def iter_digests(self):  # type: ignore[no-untyped-def]
            raise OSError("the bucket is gone")

    broken = RegistryService.open(f"sqlite:///{tmp_path / 'b.db'}", Broken())
    with pytest.raises(OSError, match="the bucket is gone"):
        broken.check_ready()
    broken.close()
