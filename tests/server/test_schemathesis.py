"""Schemathesis generates requests from the app's own OpenAPI and checks each answer
against it: the status is declared, the body matches the declared schema, no 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from llmreg.bundle.directory import load_bundle_dir
from llmreg.server.app import create_app
from llmreg.service import RegistryService
from llmreg.settings import Settings
from tests.conftest import EXAMPLES

# A schema-valid string can still name an environment the policy lacks (400): the
# OpenAPI cannot know the policy, so "valid data is accepted" is not checked.
positive_data_acceptance = schemathesis.checks.positive_data_acceptance


@pytest.mark.parametrize("who", ["admin", "nobody"])
def test_the_app_keeps_its_openapi_contract(tmp_path: Path, who: str) -> None:
    """Every operation, with an admin token and with none: zero 5xx, and every answer
    (401s included) has a declared status and matches its declared schema."""
    service = RegistryService.open_home(tmp_path / ".llmreg")
    bundle, _ = load_bundle_dir(EXAMPLES / "support-rag")
    service.versions.register(bundle, name="support-rag", message="m", author="ana")
    token, _ = service.access.create_token("fuzz", "admin", created_by="test")
    app = create_app(Settings(read_auth="token", resolve_ttl=0), service=service)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"} if who == "admin" else {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        check()
    service.close()
