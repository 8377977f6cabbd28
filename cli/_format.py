"""Human and JSON views of a bundle for the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.table import Table

import llmreg
from llmreg.digest import short

from ._common import out


def when(moment: datetime) -> str:
    """A timestamp as ``2026-11-26 14:03 UTC``."""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def bundle_json(bundle: llmreg.Bundle) -> dict[str, Any]:
    """Registration fields plus every bundle section, for ``--json``."""
    info = bundle.info
    head: dict[str, Any] = {
        "name": bundle.name, "version": bundle.version, "digest": bundle.digest,
        "author": info.author if info else None,
        "created_at": info.created_at.isoformat() if info else None,
        "message": info.message if info else None,
        "parent_digest": info.parent_digest if info else None,
        "provenance": info.provenance if info else None,
    }
    return {**head, **bundle.model_dump(mode="json")}


def _provenance_rows(table: Table, prov: dict[str, Any]) -> None:
    dataset = prov.get("dataset")
    if isinstance(dataset, dict):
        table.add_row("dataset", f"{dataset.get('digest')} ({dataset.get('kind')}, "
                                 f"{dataset.get('files', 1)} file(s))")
    if prov.get("config"):
        table.add_row("config", ", ".join(f"{k}={v}" for k, v in prov["config"].items()))
    if prov.get("metrics"):
        table.add_row("metrics", ", ".join(f"{k}={v}" for k, v in prov["metrics"].items()))


def print_bundle(bundle: llmreg.Bundle, weights_label: str | None = None) -> None:
    """Print a bundle for people: who/when/why first, then each section."""
    info = bundle.info
    title = f"{bundle.name}@{bundle.version}" if info else "(unregistered bundle)"
    out.print(f"[bold]{title}[/]  {bundle.digest}")
    if info:
        out.print(f"registered {when(info.created_at)} by {info.author}: {info.message}")
        git = info.provenance.get("git") or {}
        if git:
            dirty = " (dirty)" if git.get("dirty") else ""
            host = info.provenance.get("host")
            out.print(f"git {git.get('commit', '')[:12]}{dirty}  host {host}")
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    m = bundle.model
    if bundle.kind == "weights":
        table.add_row("kind", "weights" + (f" ({bundle.framework})" if bundle.framework else ""))
        if bundle.base_model:
            table.add_row("base model", bundle.base_model)
        _provenance_rows(table, info.provenance if info else {})
    if m is not None:
        params = ", ".join(f"{k}={v}"
                           for k, v in m.parameters.model_dump(exclude_none=True).items())
        table.add_row("model", f"{m.provider} {m.id}" + (f"  weights {m.weights}"
                                                          if m.weights else ""))
        if weights_label:
            table.add_row("weights bundle", weights_label)
        table.add_row("parameters", params or "(provider defaults)")
        table.add_row("system prompt", f"{len(bundle.system_prompt.splitlines())} lines")
    if bundle.template is not None:
        table.add_row("template", f"variables: {', '.join(bundle.template.variables) or 'none'}")
        table.add_row("few-shot", f"{len(bundle.few_shot)} examples")
    if bundle.tools:
        table.add_row("tools", ", ".join(t.name for t in bundle.tools))
    if bundle.response_schema:
        table.add_row("response schema", "yes")
    r = bundle.retrieval
    if r is not None:
        table.add_row("retrieval", f"{r.retriever} {r.index.name}@{r.index.version}, "
                                   f"top_k={r.top_k}, embed {r.embedding_model.id}"
                                   + (f", rerank {r.reranker.id}" if r.reranker else ""))
    if len(bundle.postprocess):
        table.add_row("postprocess", " → ".join(s.type for s in bundle.postprocess))
    for a in bundle.artifacts:
        table.add_row("artifact", f"{a.name}  {a.media_type}  {a.size} B  {short(a.digest)}")
    out.print(table)
