"""Fuzzing the template language: templates drawn from its grammar, with hostile sizes
(long literals and text, wide widths, nested loops, big values given), always register,
and always render within the bounds: a ``RenderError`` line, or at most
``max_chars`` characters, within the timeout (plus slack for a loaded machine)."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmreg.bundle.render import limits, referenced_variables, render_manifest
from llmreg.errors import RenderError

SLACK = 1.5  # seconds over the timeout a loaded machine may take
SIZES = st.sampled_from([0, 1, 7, 1000, 250_000, 999_999, 1_000_001])
NUMBERS = st.sampled_from([0, 1, 2, 8, 15, 16, 1000, 999_999, 1_000_001, 2**53])


@st.composite
def sizes(draw: st.DrawFn) -> tuple[str, int, int, int]:
    """What the given values are made of (they are built in the test: hypothesis would
    print megabytes of them)."""
    return (draw(st.sampled_from(["a", "<", "\n", "a b ", "%s", "é"])), draw(SIZES),
            draw(st.sampled_from([0, 3, 1000, 200_000])), draw(NUMBERS))


def values(char: str, size: int, many: int, number: int) -> dict[str, Any]:
    text = char * size
    return {"s": text, "xs": [text] * min(many, 1000), "ns": list(range(many)),
            "d": {"a": text, "b": [text, text], "x": number}, "n": number}


def literal(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["str", "int", "list", "dict"]))
    if kind == "str":
        return repr(draw(st.sampled_from(["", "x", "<&>", "\n"])) * draw(
            st.sampled_from([0, 1, 100, 3000])))
    if kind == "int":
        return str(draw(NUMBERS))
    items = ", ".join(["s"] * draw(st.sampled_from([0, 1, 3, 200])))
    return f"[{items}]" if kind == "list" else "{'a': s, 'b': [" + items + "]}"


FILTERS = ["upper", "lower", "title", "capitalize", "trim", "length", "string", "escape",
           "tojson", "first", "last", "list", "reverse", "sort", "unique|list", "e",
           "dictsort", "items|list", "max", "min", "int", "float", "abs", "round(2)"]


@st.composite
def expr(draw: st.DrawFn, depth: int = 0, names: tuple[str, ...] = ()) -> str:
    leaves = ["s", "xs", "ns", "d", "n", "d.b", "d['a']", *names]
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(leaves)) if draw(st.booleans()) else literal(draw)
    sub = expr(depth + 1, names)
    kind = draw(st.integers(0, 11))
    a = draw(sub)
    if kind == 0:
        return f"({a} ~ {draw(sub)})"
    if kind == 1:
        return f"({a} + {draw(sub)})"
    if kind == 2:
        return f"({a} - {draw(sub)})"
    if kind == 3:
        return f"({a})|{draw(st.sampled_from(FILTERS))}"
    if kind == 4:
        return f"({a})|replace({draw(sub)}, {draw(sub)})"
    if kind == 5:
        width = draw(st.sampled_from(["2", "1000000", "' > '", "n"]))
        return f"({a})|indent({width}, true, true)"
    if kind == 6:
        return f"({a})|join({draw(sub)})"
    if kind == 7:
        return f"({a})|truncate({draw(NUMBERS)}, true, {draw(sub)}, 0)"
    if kind == 8:
        return f"({a})|tojson(indent={draw(st.integers(0, 8))})"
    if kind == 9:
        return f"({a})[{draw(st.sampled_from(['1:', ':-1', '::-1', '0', '-1']))}]"
    if kind == 10:
        return f"({a} if {draw(sub)} else {draw(sub)})"
    return f"[{a}, {draw(sub)}, {a}]|{draw(st.sampled_from(['length', 'join', 'string']))}"


@st.composite
def body(draw: st.DrawFn, depth: int = 0, names: tuple[str, ...] = ()) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.integers(0, 5 if depth < 3 else 2))
        if kind == 0:
            parts.append("t" * draw(st.sampled_from([0, 10, 2000])))
        elif kind == 1:
            parts.append("{{ " + draw(expr(0, names)) + " }}")
        elif kind == 2:
            parts.append("{% set v = " + draw(expr(0, names)) + " %}{{ v|length }}")
        elif kind == 3:
            inner = draw(body(depth + 1, (*names, "x", "loop.index", "loop.length")))
            cycle = "{{ loop.cycle(" + draw(expr(1, names)) + ", s) }}"
            parts.append("{% for x in " + draw(expr(1, names)) + " %}" + inner + cycle
                         + "{% endfor %}")
        elif kind == 4:
            parts.append("{% if " + draw(expr(1, names)) + " %}" + draw(body(depth + 1, names))
                         + "{% else %}" + draw(body(depth + 1, names)) + "{% endif %}")
        else:
            parts.append("{% set b %}" + draw(body(depth + 1, names)) + "{% endset %}"
                         "{{ b ~ b }}")
    return "".join(parts)


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(source=body(), made_of=sizes())
def test_templates_from_the_grammar_stay_within_the_bounds(
        source: str, made_of: tuple[str, int, int, int]) -> None:
    given_values = values(*made_of)
    used = referenced_variables(source)  # the grammar is inside the language
    manifest = {"kind": "llm", "model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
                "template": {"source": source, "variables": sorted(used)}}
    started = time.monotonic()
    try:
        out = render_manifest(manifest, {k: given_values[k] for k in used})
        assert len(out.turns[-1]["content"]) <= limits().max_chars
    except RenderError as exc:
        assert "\n" not in str(exc)
    assert time.monotonic() - started <= limits().timeout + SLACK
