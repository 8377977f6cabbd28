"""Tokens and heartbeats: heartbeats write rows only for versions the registry holds."""

from __future__ import annotations

import pytest

from llmreg.bundle.schema import Bundle
from llmreg.errors import (
    InvalidNameError,
    InvalidRefError,
    RefNotFoundError,
    UnknownEnvironmentError,
)
from llmreg.service import RegistryService
from tests.conftest import minimal


def registered(svc: RegistryService) -> str:
    bundle = Bundle.from_dict(minimal(system_prompt="hi"))
    return svc.versions.register(bundle, name="chat", message="one", author="ana").version.digest


def test_heartbeats_roll_up_per_version_and_environment(svc: RegistryService) -> None:
    digest = registered(svc)
    beat = {"name": "chat", "env": "prod", "digest": digest, "count": 3}
    assert svc.access.record_heartbeats([beat, beat]) == 2
    [row] = svc.access.heartbeats("chat")
    assert (row["env"], row["digest"], row["count"]) == ("production", digest, 6)


@pytest.mark.parametrize("change,error,message", [
    ({"name": "nobody"}, RefNotFoundError, r"beats\[1\]: nobody@sha256:.* is not a registered"),
    ({"digest": "sha256:" + "0" * 64}, RefNotFoundError, "is not a registered version"),
    ({"digest": "anything"}, InvalidRefError, r"beats\[1\].digest 'anything' is not a digest"),
    ({"env": "moon"}, UnknownEnvironmentError, "moon"),
    ({"name": "Chat\n"}, InvalidNameError, r"beats\[1\].name"),
    ({"count": -1}, InvalidRefError, r"beats\[1\].count -1 must be a whole number"),
    ({"count": 10**12}, InvalidRefError,
     r"beats\[1\]\.count is 1000000000000; one beat reports at most 1000000 requests"),
    ({"count": "7"}, InvalidRefError, "must be a whole number"),
])
def test_a_bad_beat_refuses_the_batch_and_writes_nothing(
        svc: RegistryService, change: dict[str, object], error: type[Exception],
        message: str) -> None:
    digest = registered(svc)
    good = {"name": "chat", "env": "production", "digest": digest, "count": 1}
    with pytest.raises(error, match=message):
        svc.access.record_heartbeats([good, {**good, **change}])
    assert svc.access.heartbeats() == []


def test_rows_stay_bounded_by_the_registry(svc: RegistryService) -> None:
    digest = registered(svc)
    for i in range(20):  # what 20 anonymous requests wrote 20,001 rows with
        with pytest.raises(RefNotFoundError):
            svc.access.record_heartbeats(
                [{"name": "chat", "env": "production", "digest": f"sha256:{j:064x}"}
                 for j in range(i * 1000, (i + 1) * 1000)])
    with pytest.raises(InvalidRefError, match="1001 heartbeats in one batch; the limit is 1000"):
        svc.access.record_heartbeats([{"name": "chat", "env": "production",
                                       "digest": digest}] * 1001)
    assert svc.access.heartbeats() == []
