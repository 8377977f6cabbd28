"""``llmreg import …``: bring prompts, models and aliases over from another registry."""

from __future__ import annotations

from typing import Annotated

import typer

from llmreg.bundle.pinning import PROVIDERS
from llmreg.errors import ConfigError
from llmreg.types import ImportReport

from ._common import connect, handle_errors, note_audit_head
from ._output import JSON_OPTION, Output

import_app = typer.Typer(help="Import from another registry (MLflow).", no_args_is_help=True)


def register_commands(app: typer.Typer) -> None:
    """Attach the ``import`` group to the root app."""
    import_app.command("mlflow")(handle_errors(import_mlflow))
    app.add_typer(import_app, name="import")


def parse_pairs(value: str | None, option: str, example: str) -> dict[str, str]:
    """``"a=b,c=d"`` as a dict; a malformed pair names the option and the fix.

    Example:
        >>> parse_pairs("production=production, champion=staging", "--map-aliases", "x=y")
        {'production': 'production', 'champion': 'staging'}
    """
    out: dict[str, str] = {}
    for pair in (value or "").split(","):
        if not pair.strip():
            continue
        key, sep, to = (p.strip() for p in pair.partition("="))
        if not sep or not key or not to:
            raise ConfigError(f"{option} {pair.strip()!r}: each pair is FROM=TO, separated by "
                              f"commas, e.g. {option} {example}")
        out[key] = to
    return out


def import_mlflow(
    tracking_uri: Annotated[str, typer.Option(
        "--tracking-uri", help="The MLflow tracking server, e.g. http://127.0.0.1:5000.")],
    map_aliases: Annotated[str | None, typer.Option(
        "--map-aliases", help="MLflow alias=llmreg environment pairs, comma-separated, e.g. "
                              "production=production,staging=staging. Unmapped aliases are "
                              "skipped.")] = None,
    model_map: Annotated[str | None, typer.Option(
        "--model-map", help="Floating model id=date-pinned id pairs, e.g. "
                            "gpt-4o=gpt-4o-2024-08-06.")] = None,
    default_model: Annotated[str | None, typer.Option(
        "--default-model", help="PROVIDER:ID for prompts with no model_config; PROVIDER "
                                "is one of " + ", ".join(PROVIDERS) + ".")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Read and check everything; write nothing.")] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """Import MLflow prompts (every version), registered models and aliases, in one
    transaction; running it again adds nothing."""
    out = Output(as_json)
    aliases = parse_pairs(map_aliases, "--map-aliases", "production=production")
    models = parse_pairs(model_map, "--model-map", "gpt-4o=gpt-4o-2024-08-06")
    with connect() as reg:
        report = reg.import_mlflow(tracking_uri, map_aliases=aliases, model_map=models,
                                   default_model=default_model, dry_run=dry_run)
        if not dry_run:
            note_audit_head(reg)
    out.json(report)
    out.view(_show, report)


def _show(out: Output, report: ImportReport) -> None:
    verb = "would import" if report.dry_run else "imported"
    out.table(report.versions, ("name", "version", "from", "digest", "new"),
              lambda v: (v.name, v.version, v.source, v.digest[:19],
                         "yes" if v.created else "-"))
    if report.slots:
        out.table(report.slots, ("name", "alias", "env", "version", "moved"),
                  lambda s: (s.name, s.alias, s.env, s.version, "yes" if s.moved else "-"))
    for skipped in report.skipped_aliases:
        out.line(f"skipped alias {skipped} (not in --map-aliases)", markup=False)
    moved = sum(s.moved for s in report.slots)
    out.line(f"{verb} {report.created if not report.dry_run else len(report.versions)} new "
             f"version(s) of {len(report.versions)}, moved {moved} slot(s) from "
             f"{report.source}", markup=False)
