"""Regenerate the generated docs: the bundle JSON Schema and the CLI reference.

Run: python scripts/gen_docs.py   (tests fail when either file is stale)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


DRAFT = "https://json-schema.org/draft/2020-12/schema"


def canonical_bundle_schema() -> dict[str, Any]:
    """The JSON Schema of a bundle's canonical form: what is stored and hashed (the
    manifest blob, the HTTP resolve body), with its ``schema`` and ``kind`` fields."""
    from llmreg.bundle.schema import Bundle
    from llmreg.bundle.sections import SCHEMA_ID

    schema = Bundle.model_json_schema(mode="serialization")
    schema["properties"]["schema"] = {
        "const": SCHEMA_ID, "description": "The canonical form's version.", "title": "Schema"}
    schema["required"] = sorted({*schema.get("required", []), "kind", "schema"})
    return {"$schema": DRAFT, "$id": "https://llmreg.dev/schemas/bundle.schema.json",
            "title": "llmreg bundle (canonical form)", **schema}


def bundle_schema() -> str:
    return json.dumps(canonical_bundle_schema(), indent=2, sort_keys=True) + "\n"


def show_schema() -> str:
    """The JSON Schema of ``llmreg show REF --json``: the bundle's sections (with their
    defaults filled in), its registration record, and for a registered version where it
    runs, its owner, archive tag, evidence and approvals."""
    from llmreg.bundle.schema import Bundle
    from llmreg.types import EvidenceInfo, OwnerInfo

    bundle = Bundle.model_json_schema(mode="serialization")
    evidence = EvidenceInfo.model_json_schema(mode="serialization")
    owner = OwnerInfo.model_json_schema(mode="serialization")
    defs = {**bundle.pop("$defs", {}), **evidence.pop("$defs", {}), **owner.pop("$defs", {}),
            "EvidenceInfo": evidence, "OwnerInfo": owner}
    nullable_str = {"type": ["string", "null"]}
    props = {
        **bundle["properties"],
        "name": nullable_str, "version": {"type": ["integer", "null"]},
        "digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
        "author": nullable_str, "created_at": nullable_str, "message": nullable_str,
        "parent_digest": nullable_str, "provenance": {"type": ["object", "null"]},
        "status": nullable_str,
        "owner": {"anyOf": [{"$ref": "#/$defs/OwnerInfo"}, {"type": "null"}]},
        "retired": {"anyOf": [{"type": "null"}, {
            "type": "object", "additionalProperties": False, "required": ["at", "rule", "policy"],
            "properties": {"at": {"type": "string"}, "rule": nullable_str,
                           "policy": nullable_str}}]},
        "environments": {"type": "array", "items": {"type": "string"}},
        "evidence": {"type": "array", "items": {"$ref": "#/$defs/EvidenceInfo"}},
        "approvals": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["env", "approver", "comment", "at"],
            "properties": {"env": {"type": "string"}, "approver": {"type": "string"},
                           "comment": {"type": "string"}, "at": {"type": "string"}}}},
    }
    schema = {"$schema": DRAFT, "$id": "https://llmreg.dev/schemas/show.schema.json",
              "title": "llmreg show --json", "type": "object", "additionalProperties": False,
              "required": ["name", "version", "digest", "kind"],
              "properties": props, "$defs": defs}
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def command_paths() -> list[list[str]]:
    """Every command path of the CLI, e.g. ``[[], ["init"], ["register"], ...]``."""
    import typer.main

    from llmreg_cli.main import app

    paths: list[list[str]] = []

    def walk(cmd: object, path: list[str]) -> None:
        paths.append(path)
        for name in sorted(getattr(cmd, "commands", {}) or {}):
            walk(cmd.commands[name], [*path, name])  # type: ignore[attr-defined]

    walk(typer.main.get_command(app), [])
    return paths


def cli_reference() -> str:
    """The CLI reference, built from each command's --help (fixed 88 columns)."""
    from typer.testing import CliRunner

    from llmreg_cli.main import app

    runner = CliRunner()
    parts = ["# CLI reference\n\n",
             "Generated from `--help` by `python scripts/gen_docs.py`; do not edit.\n"]
    for path in command_paths():
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "88", "TERM": "dumb"},
                               prog_name="llmreg")
        assert result.exit_code == 0, result.output
        title = " ".join(["llmreg", *path])
        parts.append(f"\n## `{title}`\n\n```\n{result.output.rstrip()}\n```\n")
    return "".join(parts)


def diff_schema() -> str:
    from llmreg.bundle.diff import BundleDiff

    schema = BundleDiff.model_json_schema(by_alias=True)
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


OUTPUTS = {
    "docs/bundle.schema.json": bundle_schema,
    "docs/diff.schema.json": diff_schema,
    "docs/show.schema.json": show_schema,
    "docs/cli.md": cli_reference,
}


def main() -> int:
    for rel, make in OUTPUTS.items():
        (ROOT / rel).write_text(make(), encoding="utf-8")
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
