"""The published JSON Schemas describe what is really stored and printed.

docs/bundle.schema.json is the canonical form (the manifest blob, whose SHA-256 is the
digest); docs/show.schema.json is ``llmreg show --json``. Every example bundle and a set
of generated ones validate with ``jsonschema`` against the published files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

import llmreg
from tests.conftest import EXAMPLE_NAMES, EXAMPLES, ROOT
from tests.sdk.test_sdk_requests import generated


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((ROOT / "docs" / name).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors(v: Draft202012Validator, doc: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in v.iter_errors(doc)]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_canonical_form_validates(name: str) -> None:
    bundle, _ = llmreg.load_bundle_dir(EXAMPLES / name)
    canonical = json.loads(bundle.canonical_bytes())
    assert canonical["schema"] == "llmreg.bundle/v1"
    assert errors(validator("bundle.schema.json"), canonical) == []


def test_generated_bundles_validate_and_a_wrong_one_does_not() -> None:
    v = validator("bundle.schema.json")
    for bundle in generated(40, seed=3):
        assert errors(v, json.loads(bundle.canonical_bytes())) == []
    bad = json.loads(generated(1)[0].canonical_bytes())
    assert errors(v, {**bad, "schema": "llmreg.bundle/v0"})
    assert errors(v, {**bad, "surprise": 1})


def test_show_json_validates(examples: Path) -> None:
    runner = CliRunner()
    from llmreg_cli.main import app

    v = validator("show.schema.json")
    assert runner.invoke(app, ["init"]).exit_code == 0
    for name in EXAMPLE_NAMES:
        assert runner.invoke(app, ["register", str(examples / name), "-m", "x"]).exit_code == 0
        shown = json.loads(runner.invoke(app, ["show", f"{name}@1", "--json"]).stdout)
        assert errors(v, shown) == [], name
        folder = json.loads(runner.invoke(app, ["show", str(examples / name), "--json"]
                                          ).stdout)
        assert errors(v, folder) == [], name
    assert runner.invoke(app, ["eval", "attach", "support-rag@1", "--suite", "regression",
                               "--metrics", str(ROOT / "examples/evals/support-rag"
                                                ".regression.json")]).exit_code == 0
    shown = json.loads(runner.invoke(app, ["show", "support-rag@1", "--json"]).stdout)
    assert shown["evidence"] and errors(v, shown) == []
