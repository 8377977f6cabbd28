"""Regenerate the generated docs: the bundle JSON Schema and the CLI reference.

Run: python scripts/gen_docs.py   (tests fail when either file is stale)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bundle_schema() -> str:
    from llmreg.bundle import Bundle

    return json.dumps(Bundle.model_json_schema(), indent=2, sort_keys=True) + "\n"


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
    from llmreg.diff import BundleDiff

    schema = BundleDiff.model_json_schema(by_alias=True)
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


OUTPUTS = {
    "docs/bundle.schema.json": bundle_schema,
    "docs/diff.schema.json": diff_schema,
    "docs/cli.md": cli_reference,
}


def main() -> int:
    for rel, make in OUTPUTS.items():
        (ROOT / rel).write_text(make(), encoding="utf-8")
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
