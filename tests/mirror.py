"""Helpers for the signed-mirror tests: a registry with slots, keys and a published mirror."""

from __future__ import annotations

from pathlib import Path

from llmreg.bundle.schema import Bundle
from llmreg.service import RegistryService
from llmreg.service.mirror.keys import keygen
from llmreg.types import Actor
from tests.conftest import minimal

ANA, BO, CY = Actor("ana"), Actor("bo"), Actor("cy")


def register(svc: RegistryService, i: int, name: str = "chat") -> str:
    """Register variant ``i`` of ``name``; its ref."""
    bundle = Bundle.from_dict(minimal(system_prompt=f"variant {i}"))
    return svc.versions.register(bundle, name=name, message=f"v{i}", author="ana").version.ref


def ready_for_production(svc: RegistryService, ref: str, *, accuracy: float = 0.95,
                         reason: str = "try it") -> None:
    """Into staging, with the default policy's production gates met (not promoted yet)."""
    svc.lifecycle.promote(ref, "staging", actor=ANA, reason=reason)
    svc.evidence.attach(ref, type="eval", suite="regression",
                        metrics={"accuracy": accuracy}, actor=ANA)
    svc.approvals.approve(ref, "production", actor=BO)
    svc.approvals.approve(ref, "production", actor=CY)


def to_production(svc: RegistryService, ref: str) -> None:
    """Through staging, with the default policy's gates met."""
    ready_for_production(svc, ref)
    svc.lifecycle.promote(ref, "production", actor=ANA, reason="ship")


def make_keys(tmp: Path) -> Path:
    return keygen(tmp / "keys")
