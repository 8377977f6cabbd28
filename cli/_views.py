"""Human views of bundles, diffs and changelogs, printed through the :class:`Output` they
are given (``--json`` never reaches them): coloured for terminals, plain when piped."""

from __future__ import annotations

import json
from typing import Any

from rich.markup import escape
from rich.table import Table

import llmreg
from llmreg.bundle.diff import BundleDiff, FieldChange, TextDiff
from llmreg.bundle.digest import short

from ._output import Output, when


def bundle_json(bundle: llmreg.Bundle) -> dict[str, Any]:
    """Registration fields plus every section, for ``out.json(bundle_json(bundle))``."""
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


def print_bundle(out: Output, bundle: llmreg.Bundle, weights_label: str | None = None) -> None:
    """Who/when/why, then each section: ``out.view(print_bundle, bundle, label)``."""
    info = bundle.info
    title = f"{bundle.name}@{bundle.version}" if info else "(unregistered bundle)"
    out.line(f"[bold]{title}[/]  {bundle.digest}")
    if info:
        out.line(f"registered {when(info.created_at)} by {info.author}: {info.message}")
        prov = info.provenance
        git = prov.get("git") or {}
        commit = (f"{git.get('commit', '')[:12]}" + (" (dirty)" if git.get("dirty") else "")
                  if git else "- (not a git working tree)")
        out.line(f"git {commit}  host {prov.get('host')}", markup=False)
        out.line(f"provenance: user {prov.get('user')}, llmreg {prov.get('llmreg_version')}, "
                 f"Python {prov.get('python_version')}, {prov.get('platform')}", markup=False)
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
    out.line(table)


def _v(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return escape(text if len(text) <= 120 else text[:117] + "...")


def _field(change: FieldChange) -> str:
    if change.kind == "added":
        return f"  [green]+ {escape(change.path)}: {_v(change.new)}[/]"
    if change.kind == "removed":
        return f"  [red]- {escape(change.path)}: {_v(change.old)}[/]"
    return f"  {escape(change.path)}: {_v(change.old)} → {_v(change.new)}"


def _text(out: Output, diff: TextDiff) -> None:
    for line in diff.lines:
        style = ("green" if line.startswith("+") else "red" if line.startswith("-")
                 else "cyan" if line.startswith("@@") else "")
        body = escape(line)
        out.line(f"  [{style}]{body}[/]" if style else f"  {body}")


def print_diff(out: Output, d: BundleDiff, old_label: str, new_label: str) -> None:
    """A diff by bundle section: ``out.view(print_diff, diff, "chat@1", "chat@2")``."""
    out.line(f"[bold]{escape(old_label)}[/] ({short(d.old_digest)}) → "
             f"[bold]{escape(new_label)}[/] ({short(d.new_digest)})")
    if d.kind:
        out.line(f"\n[bold]kind[/]\n  {d.kind.old} → {d.kind.new}")
    if d.model:
        out.line("\n[bold]model[/]")
        if d.model.provider:
            out.line(f"  [bold yellow]! provider changed {d.model.provider.old} → "
                     f"{d.model.provider.new}[/]")
        if d.model.pin:
            out.line(f"  [bold yellow]! model pin changed {escape(d.model.pin.old)} → "
                     f"{escape(d.model.pin.new)}[/]")
        if d.model.weights:
            out.line(f"  [bold yellow]! weights changed {d.model.weights.old} → "
                     f"{d.model.weights.new}[/]")
        for change in d.model.parameters:
            out.line(_field(change))
    if d.system_prompt:
        out.line(f"\n[bold]system_prompt[/] (+{d.system_prompt.added} "
                 f"-{d.system_prompt.removed} lines)")
        _text(out, d.system_prompt)
    if d.template:
        out.line("\n[bold]template[/]")
        for v in d.template.variables_added:
            out.line(f"  [green]+ variable {v}[/]")
        for v in d.template.variables_removed:
            out.line(f"  [red]- variable {v}[/]")
        if d.template.source:
            _text(out, d.template.source)
    if d.few_shot:
        fs = d.few_shot
        out.line(f"\n[bold]few_shot[/] ({fs.old_count} → {fs.new_count} examples)")
        for item in fs.added:
            out.line(f"  [green]+ added #{item['index']}: {_v(item['example'])}[/]")
        for item in fs.removed:
            out.line(f"  [red]- removed #{item['index']}: {_v(item['example'])}[/]")
        for m in fs.modified:
            out.line(f"  [yellow]~ modified #{m.old_index} → #{m.new_index} "
                     f"(same {m.matched_by})[/]")
            if m.output:
                _text(out, m.output)
            for change in m.input:
                out.line("  " + _field(change))
        if fs.reordered:
            out.line("  [yellow]↕ examples reordered[/]")
    for section in ("tools", "response_schema", "retrieval"):
        changes: list[FieldChange] = getattr(d, section)
        if changes:
            out.line(f"\n[bold]{section}[/]")
            for change in changes:
                out.line(_field(change))
    if d.postprocess:
        out.line("\n[bold]postprocess[/]")
        for s in d.postprocess:
            where = {"inserted": f"at #{s.new_index}", "removed": f"from #{s.old_index}",
                     "moved": f"#{s.old_index} → #{s.new_index}",
                     "changed": f"#{s.new_index}"}[s.kind]
            out.line(f"  {s.kind} {s.type} {where}")
            for change in s.fields:
                out.line("  " + _field(change))
    if d.artifacts:
        out.line("\n[bold]artifacts[/]")
        for a in d.artifacts:
            if a.kind == "swapped":
                out.line(f"  {a.name} swapped {short(a.old_digest or '')} ({a.old_size} B) → "
                         f"{short(a.new_digest or '')} ({a.new_size} B)")
            elif a.kind == "added":
                out.line(f"  [green]+ {a.name} {short(a.new_digest or '')} ({a.new_size} B)[/]")
            elif a.kind == "removed":
                out.line(f"  [red]- {a.name} {short(a.old_digest or '')} ({a.old_size} B)[/]")
            for change in a.fields:
                out.line("  " + _field(change))


def print_text_changelog(out: Output, entries: list[llmreg.ChangelogEntry]) -> None:
    """The changelog for a terminal: ``out.view(print_text_changelog, entries)``."""
    for e in entries:
        v = e.version
        out.line(f"[bold]{v.name}@{v.version}[/]  {short(v.digest)}  {when(v.created_at)}  "
                 f"{escape(v.author)}")
        for line in v.message.splitlines():
            out.line(f"    {escape(line)}")
        for line in (["first version"] if e.first else v.changes or ["no content change"]):
            out.line(f"    [dim]• {escape(line)}[/]")
        out.line("")


def markdown_changelog(name: str, entries: list[llmreg.ChangelogEntry]) -> str:
    """The changelog as a CHANGELOG.md: ``out.raw(markdown_changelog("chat", entries))``."""
    lines = [f"# Changelog: {name}", ""]
    for e in entries:
        v = e.version
        lines += [f"## {v.version} — {v.created_at:%Y-%m-%d}", "",
                  f"`{v.digest}` by {v.author}", "", v.message, ""]
        changes = ["first version"] if e.first else v.changes or ["no content change"]
        lines += [f"- {c}" for c in changes]
        lines.append("")
    return "\n".join(lines)
