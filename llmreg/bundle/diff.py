"""Semantic diff: what changed between two bundles, in the bundle's own terms.

Each section is compared the way people think about it:

- ``model``: a change of provider, id or weights is a *pin change*; each generation
  parameter is reported old -> new.
- ``system_prompt`` and ``template``: unified line diffs; declared variables added or
  removed.
- ``few_shot``: examples are matched by content, not position — added, removed,
  modified (same input, new output, or the reverse; with an inner diff) and a pure
  reordering reported as such.
- ``tools`` (matched by name), ``response_schema``, ``retrieval``: field by field,
  old -> new, computed with deepdiff.
- ``postprocess``: an ordered list — steps inserted, removed, moved and changed.
- ``artifacts`` (matched by name): digests swapped with sizes, added, removed.

The result is a :class:`BundleDiff` (pydantic), whose JSON form is documented in
``docs/diff.md`` and exported to ``docs/diff.schema.json``.

Example:
    >>> from llmreg.bundle.schema import Bundle
    >>> a = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-05-13"},
    ...                       "template": {"source": "{{ q }}", "variables": ["q"]}})
    >>> b = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06",
    ...                                 "parameters": {"temperature": 0.2}},
    ...                       "template": {"source": "{{ q }}", "variables": ["q"]}})
    >>> d = diff_bundles(a, b)
    >>> d.model.pin.old, d.model.pin.new, d.model.parameters[0].path
    ('gpt-4o-2024-05-13', 'gpt-4o-2024-08-06', 'temperature')
    >>> d.stat()
    ['model: pin gpt-4o-2024-05-13 -> gpt-4o-2024-08-06, 1 parameter changed']
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from llmreg.bundle.schema import Bundle

DIFF_SCHEMA = "llmreg.diff/v1"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class FieldChange(_Out):
    """One field, old -> new. ``old`` is absent for an addition, ``new`` for a removal."""

    path: str
    kind: Literal["changed", "added", "removed"]
    old: Any = None
    new: Any = None


class PinChange(_Out):
    old: str
    new: str


class ArtifactChange(_Out):
    name: str
    kind: Literal["added", "removed", "swapped", "changed"]
    old_digest: str | None = None
    new_digest: str | None = None
    old_size: int | None = None
    new_size: int | None = None
    fields: list[FieldChange] = []


class ModelDiff(_Out):
    provider: PinChange | None = None
    pin: PinChange | None = None
    weights: PinChange | None = None
    # When the weights changed and the registry could load both weights bundles: what
    # changed inside them (artifacts swapped, added, removed).
    weights_artifacts: list[ArtifactChange] = []
    parameters: list[FieldChange] = []


class TextDiff(_Out):
    """A unified line diff (``lines`` without trailing newlines) and its counts."""

    added: int
    removed: int
    lines: list[str]


class TemplateDiff(_Out):
    source: TextDiff | None = None
    variables_added: list[str] = []
    variables_removed: list[str] = []


class ExampleChange(_Out):
    old_index: int
    new_index: int
    matched_by: Literal["input", "output"]
    old: dict[str, Any]
    new: dict[str, Any]
    output: TextDiff | None = None
    input: list[FieldChange] = []


class FewShotDiff(_Out):
    added: list[dict[str, Any]] = []  # each: {"index": i, "example": {...}}
    removed: list[dict[str, Any]] = []
    modified: list[ExampleChange] = []
    reordered: bool = False
    old_count: int
    new_count: int


class StepChange(_Out):
    kind: Literal["inserted", "removed", "moved", "changed"]
    type: str
    old_index: int | None = None
    new_index: int | None = None
    fields: list[FieldChange] = []


class BundleDiff(_Out):
    """The semantic diff of two bundles; empty sections are ``None`` / empty lists."""

    # JSON calls it "schema"; the Python name avoids shadowing BaseModel.schema.
    model_config = ConfigDict(frozen=True, populate_by_name=True)
    schema_: Literal["llmreg.diff/v1"] = Field("llmreg.diff/v1", alias="schema")
    old_digest: str
    new_digest: str
    identical: bool
    kind: PinChange | None = None
    model: ModelDiff | None = None
    system_prompt: TextDiff | None = None
    template: TemplateDiff | None = None
    few_shot: FewShotDiff | None = None
    tools: list[FieldChange] = []
    response_schema: list[FieldChange] = []
    retrieval: list[FieldChange] = []
    postprocess: list[StepChange] = []
    artifacts: list[ArtifactChange] = []

    def to_json(self) -> dict[str, Any]:
        """The documented JSON form (``schema`` instead of the Python name ``schema_``)."""
        return self.model_dump(mode="json", by_alias=True)

    def stat(self) -> list[str]:
        """One line per changed section, e.g. ``few_shot: +1 -1 ~0, reordered``."""
        out = []
        if self.kind:
            out.append(f"kind: {self.kind.old} -> {self.kind.new}")
        if self.model:
            bits = []
            for label, pin in (("provider", self.model.provider), ("pin", self.model.pin),
                               ("weights", self.model.weights)):
                if pin:
                    bits.append(f"{label} {pin.old[:19]} -> {pin.new[:19]}" if label == "weights"
                            else f"{label} {pin.old} -> {pin.new}")
            if self.model.parameters:
                n = len(self.model.parameters)
                bits.append(f"{n} parameter{'s' if n != 1 else ''} changed")
            out.append("model: " + ", ".join(bits))
        if self.system_prompt:
            out.append(f"system_prompt: +{self.system_prompt.added} "
                       f"-{self.system_prompt.removed} lines")
        if self.template:
            bits = []
            if self.template.source:
                bits.append(f"+{self.template.source.added} -{self.template.source.removed} "
                            "lines")
            bits += [f"+var {v}" for v in self.template.variables_added]
            bits += [f"-var {v}" for v in self.template.variables_removed]
            out.append("template: " + ", ".join(bits))
        if self.few_shot:
            fs = self.few_shot
            line = f"few_shot: +{len(fs.added)} -{len(fs.removed)} ~{len(fs.modified)}"
            out.append(line + (", reordered" if fs.reordered else ""))
        for section in ("tools", "response_schema", "retrieval"):
            changes = getattr(self, section)
            if changes:
                out.append(f"{section}: {len(changes)} field{'s' if len(changes) != 1 else ''}"
                           " changed")
        if self.postprocess:
            counts: dict[str, int] = defaultdict(int)
            for step in self.postprocess:
                counts[step.kind] += 1
            out.append("postprocess: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        if self.artifacts:
            out.append("artifacts: " + ", ".join(f"{a.name} {a.kind}" for a in self.artifacts))
        return out


# --- computing it -----------------------------------------------------------------


def diff_bundles(old: Bundle, new: Bundle,
                 load: Callable[[str], Bundle] | None = None) -> BundleDiff:
    """Compare two bundles section by section; see the module docstring.

    Example:
        >>> diff_bundles(a, a).identical  # doctest: +SKIP
        True
    """
    if old.digest == new.digest:
        return BundleDiff(old_digest=old.digest, new_digest=new.digest, identical=True)
    return BundleDiff(
        old_digest=old.digest,
        new_digest=new.digest,
        identical=False,
        kind=PinChange(old=old.kind, new=new.kind) if old.kind != new.kind else None,
        model=_model(old, new, load),
        system_prompt=text_diff(old.system_prompt, new.system_prompt),
        template=_template(old, new),
        few_shot=_few_shot(old, new),
        tools=_tools(old, new),
        response_schema=field_changes(old.response_schema, new.response_schema),
        retrieval=field_changes(_dump(old.retrieval), _dump(new.retrieval)),
        postprocess=_steps([_dump(s) for s in old.postprocess],
                           [_dump(s) for s in new.postprocess]),
        artifacts=_artifacts(old, new),
    )


def _dump(model: BaseModel | None) -> Any:
    return None if model is None else model.model_dump(mode="json", exclude_defaults=True)


def text_diff(old: str, new: str, *, context: int = 3) -> TextDiff | None:
    """A unified line diff of two texts, or None when they are equal.

    Example:
        >>> text_diff("a\\nb\\n", "a\\nc\\n").lines
        ['@@ -1,2 +1,2 @@', ' a', '-b', '+c']
    """
    if old == new:
        return None
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="",
                                      n=context))[2:]  # drop the ---/+++ file headers
    added = sum(1 for line in lines if line.startswith("+"))
    removed = sum(1 for line in lines if line.startswith("-"))
    return TextDiff(added=added, removed=removed, lines=lines)


def field_changes(old: Any, new: Any, prefix: str = "") -> list[FieldChange]:
    """Field-by-field changes of two JSON values, computed by deepdiff.

    Example:
        >>> [c.path for c in field_changes({"a": {"b": 1}}, {"a": {"b": 2}, "c": 3})]
        ['a.b', 'c']
    """
    if old == new:
        return []
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [FieldChange(path=prefix or "(whole)", kind=_kind(old, new), old=old, new=new)]
    from deepdiff import DeepDiff
    from deepdiff.helper import NotPresent

    changes = []
    tree = DeepDiff(old, new, view="tree", verbose_level=2)
    for levels in tree.values():
        for level in levels:
            path = _path(level.path(output_format="list"), prefix)
            t1 = None if isinstance(level.t1, NotPresent) else level.t1
            t2 = None if isinstance(level.t2, NotPresent) else level.t2
            kind: Literal["changed", "added", "removed"] = (
                "added" if isinstance(level.t1, NotPresent)
                else "removed" if isinstance(level.t2, NotPresent) else "changed")
            changes.append(FieldChange(path=path, kind=kind, old=t1, new=t2))
    return sorted(changes, key=lambda c: c.path)


def _kind(old: Any, new: Any) -> Literal["changed", "added", "removed"]:
    return "added" if old is None else "removed" if new is None else "changed"


def _path(parts: list[Any], prefix: str) -> str:
    out = prefix
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model(old: Bundle, new: Bundle, load: Callable[[str], Bundle] | None = None
           ) -> ModelDiff | None:
    # A weights bundle has no model section: it compares as an empty one.
    a = old.model.model_dump(mode="json") if old.model else {}
    b = new.model.model_dump(mode="json") if new.model else {}

    def pin(key: str) -> PinChange | None:
        x, y = a.get(key), b.get(key)
        return None if x == y else PinChange(old=str(x), new=str(y))

    params_a = {k: v for k, v in a.get("parameters", {}).items() if v is not None}
    params_b = {k: v for k, v in b.get("parameters", {}).items() if v is not None}
    params = [
        FieldChange(path=k, kind=_kind(params_a.get(k), params_b.get(k)),
                    old=params_a.get(k), new=params_b.get(k))
        for k in sorted(set(params_a) | set(params_b)) if params_a.get(k) != params_b.get(k)
    ]
    inner: list[ArtifactChange] = []
    wa, wb = a.get("weights"), b.get("weights")
    if load is not None and wa and wb and wa != wb:
        inner = _artifacts(load(wa), load(wb))  # follow the reference
    diff = ModelDiff(provider=pin("provider"), pin=pin("id"), weights=pin("weights"),
                     weights_artifacts=inner, parameters=params)
    return diff if diff != ModelDiff() else None


def _template(old: Bundle, new: Bundle) -> TemplateDiff | None:
    ta, tb = old.template, new.template
    va, vb = (ta.variables if ta else []), (tb.variables if tb else [])
    diff = TemplateDiff(
        source=text_diff(ta.source if ta else "", tb.source if tb else ""),
        variables_added=[v for v in vb if v not in va],
        variables_removed=[v for v in va if v not in vb],
    )
    return diff if diff != TemplateDiff() else None


def _key(value: Any) -> str:
    # Matching key for an example: its content as sorted-key JSON (C-fast; only used
    # for equality inside one diff, never hashed into a digest).
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _few_shot(old: Bundle, new: Bundle) -> FewShotDiff | None:
    a = [e.model_dump(mode="json") for e in old.few_shot]
    b = [e.model_dump(mode="json") for e in new.few_shot]
    ka, kb = [_key(e) for e in a], [_key(e) for e in b]
    if ka == kb:
        return None
    # Match equal examples by content (a multiset: duplicates pair up one to one).
    pool: dict[str, list[int]] = defaultdict(list)
    for j, k in enumerate(kb):
        pool[k].append(j)
    matched: dict[int, int] = {}
    for i, k in enumerate(ka):
        if pool.get(k):
            matched[i] = pool[k].pop(0)
    order = [matched[i] for i in sorted(matched)]
    reordered = order != sorted(order)
    gone = [i for i in range(len(a)) if i not in matched]
    taken = set(matched.values())
    fresh = [j for j in range(len(b)) if j not in taken]
    # Pair leftovers that share their input (output edited) or their output (input edited).
    modified: list[ExampleChange] = []
    for field in ("input", "output"):
        by_value: dict[str, list[int]] = defaultdict(list)
        for j in fresh:
            by_value[_key(b[j][field])].append(j)
        still_gone = []
        for i in gone:
            candidates = by_value.get(_key(a[i][field]))
            if candidates:
                j = candidates.pop(0)
                fresh.remove(j)
                modified.append(_example_change(a[i], b[j], i, j, field))
            else:
                still_gone.append(i)
        gone = still_gone
    return FewShotDiff(
        added=[{"index": j, "example": b[j]} for j in fresh],
        removed=[{"index": i, "example": a[i]} for i in gone],
        modified=sorted(modified, key=lambda m: m.new_index),
        reordered=reordered,
        old_count=len(a),
        new_count=len(b),
    )


def _example_change(a: dict[str, Any], b: dict[str, Any], i: int, j: int,
                    matched_by: Literal["input", "output"]) -> ExampleChange:
    output = text_diff(a["output"], b["output"]) if matched_by == "input" else None
    if matched_by == "output":
        if isinstance(a["input"], str) and isinstance(b["input"], str):
            inputs = [FieldChange(path="input", kind="changed", old=a["input"], new=b["input"])]
        else:
            inputs = field_changes(a["input"], b["input"], "input")
    else:
        inputs = []
    return ExampleChange(old_index=i, new_index=j, matched_by=matched_by, old=a, new=b,
                         output=output, input=inputs)


def _tools(old: Bundle, new: Bundle) -> list[FieldChange]:
    a = {t.name: t.model_dump(mode="json") for t in old.tools}
    b = {t.name: t.model_dump(mode="json") for t in new.tools}
    changes: list[FieldChange] = []
    for name in sorted(set(a) | set(b)):
        if name not in b:
            changes.append(FieldChange(path=f"tools[{name}]", kind="removed", old=a[name]))
        elif name not in a:
            changes.append(FieldChange(path=f"tools[{name}]", kind="added", new=b[name]))
        else:
            changes += field_changes(a[name], b[name], f"tools[{name}]")
    return changes


def _steps(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[StepChange]:
    ka, kb = [_key(s) for s in a], [_key(s) for s in b]
    if ka == kb:
        return []
    # The longest common subsequence stays put; everything else was removed or inserted.
    removed: list[int] = []
    inserted: list[int] = []
    matcher = difflib.SequenceMatcher(a=ka, b=kb, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "equal":
            removed += range(i1, i2)
            inserted += range(j1, j2)
    out: list[StepChange] = []
    # A removed step that reappears unchanged elsewhere was moved; one whose type
    # reappears with other settings was changed (and possibly moved too).
    for same_content in (True, False):
        for i in list(removed):
            match = [j for j in inserted
                     if (kb[j] == ka[i] if same_content else b[j]["type"] == a[i]["type"])]
            if not match:
                continue
            j = match[0]
            removed.remove(i)
            inserted.remove(j)
            if same_content:
                out.append(StepChange(kind="moved", type=a[i]["type"], old_index=i,
                                      new_index=j))
            else:
                out.append(StepChange(kind="changed", type=a[i]["type"], old_index=i,
                                      new_index=j, fields=field_changes(a[i], b[j])))
    out += [StepChange(kind="removed", type=a[i]["type"], old_index=i) for i in removed]
    out += [StepChange(kind="inserted", type=b[j]["type"], new_index=j) for j in inserted]
    return sorted(out, key=lambda s: (s.new_index if s.new_index is not None else s.old_index
                                      or 0, s.kind))


def _artifacts(old: Bundle, new: Bundle) -> list[ArtifactChange]:
    a = {x.name: x for x in old.artifacts}
    b = {x.name: x for x in new.artifacts}
    out = []
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        if y is None:
            assert x is not None
            out.append(ArtifactChange(name=name, kind="removed", old_digest=x.digest,
                                      old_size=x.size))
        elif x is None:
            out.append(ArtifactChange(name=name, kind="added", new_digest=y.digest,
                                      new_size=y.size))
        elif x.digest != y.digest:
            out.append(ArtifactChange(name=name, kind="swapped", old_digest=x.digest,
                                      new_digest=y.digest, old_size=x.size, new_size=y.size,
                                      fields=[c for c in field_changes(_dump(x), _dump(y))
                                              if c.path not in ("digest", "size")]))
        elif x != y:
            out.append(ArtifactChange(name=name, kind="changed",
                                      fields=field_changes(_dump(x), _dump(y))))
    return out
