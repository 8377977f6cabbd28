"""Human views of diffs and changelogs: coloured for terminals, plain when piped."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.markup import escape

import llmreg
from llmreg.diff import BundleDiff, FieldChange, TextDiff
from llmreg.digest import short

from ._common import out
from ._format import when


def _v(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return escape(text if len(text) <= 120 else text[:117] + "...")


def _field(change: FieldChange) -> str:
    if change.kind == "added":
        return f"  [green]+ {escape(change.path)}: {_v(change.new)}[/]"
    if change.kind == "removed":
        return f"  [red]- {escape(change.path)}: {_v(change.old)}[/]"
    return f"  {escape(change.path)}: {_v(change.old)} → {_v(change.new)}"


def _text(diff: TextDiff) -> None:
    for line in diff.lines:
        style = ("green" if line.startswith("+") else "red" if line.startswith("-")
                 else "cyan" if line.startswith("@@") else "")
        body = escape(line)
        out.print(f"  [{style}]{body}[/]" if style else f"  {body}")


def _example(example: Any) -> str:
    return _v(example)


def print_diff(d: BundleDiff, old_label: str, new_label: str) -> None:
    """Print a diff grouped by bundle section."""
    out.print(f"[bold]{escape(old_label)}[/] ({short(d.old_digest)}) → "
              f"[bold]{escape(new_label)}[/] ({short(d.new_digest)})")
    if d.kind:
        out.print(f"\n[bold]kind[/]\n  {d.kind.old} → {d.kind.new}")
    if d.model:
        out.print("\n[bold]model[/]")
        if d.model.provider:
            out.print(f"  [bold yellow]! provider changed {d.model.provider.old} → "
                      f"{d.model.provider.new}[/]")
        if d.model.pin:
            out.print(f"  [bold yellow]! model pin changed {escape(d.model.pin.old)} → "
                      f"{escape(d.model.pin.new)}[/]")
        if d.model.weights:
            out.print(f"  [bold yellow]! weights changed {d.model.weights.old} → "
                      f"{d.model.weights.new}[/]")
        for change in d.model.parameters:
            out.print(_field(change))
    if d.system_prompt:
        out.print(f"\n[bold]system_prompt[/] (+{d.system_prompt.added} "
                  f"-{d.system_prompt.removed} lines)")
        _text(d.system_prompt)
    if d.template:
        out.print("\n[bold]template[/]")
        for v in d.template.variables_added:
            out.print(f"  [green]+ variable {v}[/]")
        for v in d.template.variables_removed:
            out.print(f"  [red]- variable {v}[/]")
        if d.template.source:
            _text(d.template.source)
    if d.few_shot:
        fs = d.few_shot
        out.print(f"\n[bold]few_shot[/] ({fs.old_count} → {fs.new_count} examples)")
        for item in fs.added:
            out.print(f"  [green]+ added #{item['index']}: {_example(item['example'])}[/]")
        for item in fs.removed:
            out.print(f"  [red]- removed #{item['index']}: {_example(item['example'])}[/]")
        for m in fs.modified:
            out.print(f"  [yellow]~ modified #{m.old_index} → #{m.new_index} "
                      f"(same {m.matched_by})[/]")
            if m.output:
                _text(m.output)
            for change in m.input:
                out.print("  " + _field(change))
        if fs.reordered:
            out.print("  [yellow]↕ examples reordered[/]")
    for section in ("tools", "response_schema", "retrieval"):
        changes: list[FieldChange] = getattr(d, section)
        if changes:
            out.print(f"\n[bold]{section}[/]")
            for change in changes:
                out.print(_field(change))
    if d.postprocess:
        out.print("\n[bold]postprocess[/]")
        for s in d.postprocess:
            where = {"inserted": f"at #{s.new_index}", "removed": f"from #{s.old_index}",
                     "moved": f"#{s.old_index} → #{s.new_index}",
                     "changed": f"#{s.new_index}"}[s.kind]
            out.print(f"  {s.kind} {s.type} {where}")
            for change in s.fields:
                out.print("  " + _field(change))
    if d.artifacts:
        out.print("\n[bold]artifacts[/]")
        for a in d.artifacts:
            if a.kind == "swapped":
                out.print(f"  {a.name} swapped {short(a.old_digest or '')} ({a.old_size} B) → "
                          f"{short(a.new_digest or '')} ({a.new_size} B)")
            elif a.kind == "added":
                out.print(f"  [green]+ {a.name} {short(a.new_digest or '')} ({a.new_size} B)[/]")
            elif a.kind == "removed":
                out.print(f"  [red]- {a.name} {short(a.old_digest or '')} ({a.old_size} B)[/]")
            for change in a.fields:
                out.print("  " + _field(change))


def print_text_changelog(entries: list[llmreg.ChangelogEntry]) -> None:
    """The changelog for a terminal."""
    for e in entries:
        v = e.version
        out.print(f"[bold]{v.name}@{v.version}[/]  {short(v.digest)}  {when(v.created_at)}  "
                  f"{escape(v.author)}")
        for line in v.message.splitlines():
            out.print(f"    {escape(line)}")
        for line in (["first version"] if e.first else v.changes or ["no content change"]):
            out.print(f"    [dim]• {escape(line)}[/]")
        out.print("")


def print_markdown_changelog(name: str, entries: list[llmreg.ChangelogEntry]) -> None:
    """The changelog as Markdown, like a CHANGELOG.md."""
    lines = [f"# Changelog: {name}", ""]
    for e in entries:
        v = e.version
        lines += [f"## {v.version} — {v.created_at:%Y-%m-%d}", "",
                  f"`{v.digest}` by {v.author}", "", v.message, ""]
        changes = ["first version"] if e.first else v.changes or ["no content change"]
        lines += [f"- {c}" for c in changes]
        lines.append("")
    sys.stdout.write("\n".join(lines))
