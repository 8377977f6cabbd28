"""Commands for trained models: log-model and reproduce-check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from llmreg.bundle.digest import short
from llmreg.bundle.parse import load_json
from llmreg.errors import InvalidEvidenceError, shown

from ._common import connect, handle_errors, note_audit_head
from ._output import JSON_OPTION, Output


def register_commands(app: typer.Typer) -> None:
    app.command("log-model")(handle_errors(log_model))
    app.command("reproduce-check")(handle_errors(reproduce_check))


def log_model(
    name: Annotated[str, typer.Argument(help="The model's registered name.")],
    weights: Annotated[list[Path], typer.Option("--weights", help="Weights file or folder "
                                                "(repeatable).")],
    message: Annotated[str, typer.Option("--message", "-m", help="What this run changed.")],
    dataset: Annotated[str | None, typer.Option(
        "--dataset", help="Training data: a file, a folder, or a sha256: digest.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="JSON/YAML config.")] = None,
    metrics: Annotated[Path | None, typer.Option("--metrics", help="Flat JSON of numbers.")
                       ] = None,
    framework: Annotated[str | None, typer.Option("--framework", help="e.g. pytorch.")
                         ] = None,
    base_model: Annotated[str | None, typer.Option("--base-model", help="What was tuned.")
                          ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Log trained weights (streamed) with dataset digest, git commit, config and metrics."""
    out = Output(as_json)
    values: dict[str, Any] | None = None
    if metrics is not None:
        try:
            text = metrics.read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise InvalidEvidenceError(f"--metrics {shown(str(metrics))}: {exc}") from None
        # parsed as manifests are: a key named twice is refused, never "last one wins"
        values = load_json(text, f"--metrics {shown(str(metrics))}", error=InvalidEvidenceError)
    with out.progress("upload") as progress, connect() as reg:
        bundle = reg.log_model(name, weights=list(weights), message=message, dataset=dataset,
                               config=config, metrics=values, framework=framework,
                               base_model=base_model, progress=progress)
        note_audit_head(reg)
    verb = "logged" if bundle.newly_registered else "unchanged"
    out.result({"name": bundle.name, "version": bundle.version, "digest": bundle.digest,
                "created": bundle.newly_registered},
               f"{verb} {bundle.name}@{bundle.version}  {short(bundle.digest)}  "
               f"({len(bundle.artifacts)} file(s))")


def reproduce_check(
    ref: Annotated[str, typer.Argument(help="The registered model, e.g. my-lora@3.")],
    weights: Annotated[list[Path], typer.Option("--weights", help="Rebuilt weights.")],
    dataset: Annotated[str | None, typer.Option("--dataset", help="Rebuilt dataset.")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Tell whether rebuilt weights (and dataset) match the registered digests. Exit 1 if
    anything differs, naming what."""
    out = Output(as_json)
    with connect() as reg:
        report = reg.reproduce_check(ref, weights=list(weights), dataset=dataset)
    out.json(report)
    for row in report["weights"]:
        mark = "match " if row["match"] else "DIFFER"
        out.line(f"{mark} weights {row['name']}: registered {row['registered']}, "
                 f"rebuilt {row['rebuilt']}", markup=False)
    ds = report["dataset"]
    if ds is not None:
        mark = "match " if ds["match"] else "DIFFER"
        out.line(f"{mark} dataset: registered {ds['registered']}, rebuilt {ds['rebuilt']}",
                 markup=False)
        for line in ds.get("differing_files", []):
            out.line(f"       {line}", markup=False)
    if not report["match"]:
        raise typer.Exit(1)
