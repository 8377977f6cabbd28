"""Every template has a bounded cost: analysing it runs nothing, rendering it is capped
in characters, steps and time, and every failure is one ``RenderError`` line.

Each payload is a class of attack, not one string: numbers that size an allocation
(widths, counts, repeats), loops, references to one big value, amplifying operators and
filters. What the template language refuses is in ``test_language.py``; here are the
templates it accepts, given hostile values.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from llmreg.bundle.render import RenderLimits, limits, referenced_variables, render_manifest
from llmreg.bundle.schema import Bundle
from llmreg.errors import RenderError, TemplateSyntaxError
from tests.conftest import minimal

CEILING = 64 * 1024 * 1024  # bytes any one of these may allocate
SECONDS = 2.0 + 1.5  # the timeout, and slack for a loaded machine

S = "a" * 500_000
NESTED: list[Any] = []
for _ in range(5000):
    NESTED = [NESTED]
VALUES: dict[str, Any] = {
    "s": S, "xs": list(range(1000)), "nl": "\n" * 100_000, "lt": "<" * 400_000,
    "quotes": "\"'" * 300_000, "fmt": "%999999999s", "x": 3.5, "many": list(range(10**6)),
    "nested": NESTED, "n": 10**4000, "bigset": set(range(10**6)),
    "docs": [{"text": S, "tags": [S, S]}] * 3,
}

# Each class: several payloads of its kind. Every one registers, and fails at render.
BOMBS: dict[str, list[str]] = {
    "one big value referred to many times": [
        "{{ [s, s, s] }}", "{{ {'a': s, 'b': s} }}", "{{ [[s], [s, s]] }}",
        "{{ (s, s, s) }}", "{{ 'x' ~ [s, s, s] }}", "{{ [s, s, s]|string }}",
        "{{ [s, s, s]|truncate(5) }}", "{{ [s, s]|replace('a', 'b') }}",
        "{% set a = [s,s,s,s,s,s,s,s,s,s] %}{% set b = [a,a,a,a,a,a,a,a,a,a] %}"
        "{% set c = [b,b,b,b,b,b,b,b,b,b] %}{{ c|tojson }}",
        "{% set a = [s,s,s,s,s,s,s,s,s,s] %}{% set b = [a,a,a,a,a,a,a,a,a,a] %}{{ b }}",
        "{{ docs }}", "{{ docs|map(attribute='tags')|join }}", "{{ docs[0].tags|join(' ') }}",
        "{{ [s, s, s]|escape }}", "{{ [s, s]|join(s) }}",
    ],
    "filters that grow their input": [
        "{{ s|replace('a', 'bbb') }}", "{{ s|replace('', 'xy') }}",
        "{{ s|replace('a', 'aaa', 999999) }}", "{{ nl|indent(100) }}",
        "{{ nl|indent('>>>>>>>>>>', true, true) }}", "{{ xs|join(s) }}",
        "{{ xs|join(nl) }}", "{{ lt|escape }}", "{{ quotes|e }}", "{{ lt|tojson }}",
        "{{ xs|tojson(indent=8) ~ s ~ s }}", "{{ (s ~ s)|upper ~ 'x' }}",
    ],
    "widths, precisions and counts": [
        "{{ x|round(100) }}", "{{ x|round(-16, 'floor') }}", "{{ x|round(2, 'up') }}",
        "{{ xs|tojson(indent=1000000) }}", "{{ xs|tojson(indent='        ') }}",
        "{{ s|truncate(10, end=s) }}", "{{ s|indent(2000000) }}",
        "{{ s|truncate(1000000000) }}",
    ],
    "%-formatting reached through a test": [
        "{{ fmt is odd }}", "{{ fmt is even }}", "{{ fmt is divisibleby(3) }}",
        "{{ [fmt]|select('odd')|list }}", "{{ [x]|reject('divisibleby', fmt)|list }}",
    ],
    "doubling with sets": [
        "{% set a = s ~ s %}{% set b = a ~ a %}{{ b }}",
        "{% set a = s + s %}{% set b = a + a %}{{ b|length }}",
        "{% set a %}{{ s }}{{ s }}{{ s }}{% endset %}{{ a|length }}",
        "{% with a = s ~ s %}{% with b = a ~ a %}{{ b|length }}{% endwith %}{% endwith %}",
        "{% set l = many + many %}{{ l|length }}", "{{ ((s[:1]|e) + lt)|length }}",
    ],
    "loops": [
        "{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}",
        "{% for x in xs %}{{ s }}{% endfor %}",
        "{% for x in xs %}{{ loop.cycle(s, s) }}{% endfor %}",
        "{% for a in xs %}{% for b in xs %}{{ many|max }}{% endfor %}{% endfor %}",
        "{% for a in xs %}{% for b in xs %}{{ (s|replace('a', 'b'))|length }}"
        "{% endfor %}{% endfor %}",
        "{% for a in s %}{% for b in s %}x{% endfor %}{% endfor %}",
        "{% for a in xs %}{% for b in xs %}{{ many|sort|first }}{% endfor %}{% endfor %}",
        "{% for a in xs %}{% for b in xs %}{{ loop.length }}{% endfor %}{% endfor %}",
        "{% for a in xs %}{% for b in xs %}{{ -1 in many }}{% endfor %}{% endfor %}",
        "{% for a in xs %}{{ [many[1:], many[2:], s[1:], s[2:]]|length }}{% endfor %}",
        "{% for a in xs %}{{ [bigset - bigset, bigset - bigset]|length }}{% endfor %}",
        "{{ many|select('odd')|list|length }}", "{{ s|reverse }}",
    ],
    "deep or odd values": [
        "{{ nested }}", "{{ nested|tojson }}", "{{ nested|string }}", "{{ 1 + 'a' }}",
        "{{ s[:10] + xs }}", "{{ s|int(base=1000000000) }}",
    ],
}
CASES = [(kind, i, source) for kind, sources in BOMBS.items() for i, source in enumerate(sources)]


def manifest(source: str, variables: list[str] | None = None) -> dict[str, object]:
    return {"kind": "llm", "model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
            "template": {"source": source, "variables": variables or []}}


def run(source: str) -> tuple[RenderError, float, int]:
    """Register the template (analysis only), then render it with the hostile values."""
    used = referenced_variables(source)
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(RenderError) as caught:
            render_manifest(manifest(source, sorted(used)), {k: VALUES[k] for k in used})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return caught.value, time.monotonic() - started, peak


@pytest.mark.parametrize("kind, i, source", CASES, ids=[f"{k}-{i}" for k, i, _ in CASES])
def test_render_bombs_fail_within_the_bounds_with_one_line(kind: str, i: int,
                                                           source: str) -> None:
    error, seconds, peak = run(source)
    assert seconds < SECONDS + (1.0 if "loop.length" in source else 0)
    assert peak < CEILING, f"{peak / 2**20:.0f} MiB"
    message = str(error)
    assert "\n" not in message and message.startswith("template: ")


def test_big_integers_cost_nothing() -> None:
    """The arithmetic left (+ and - on numbers) is linear: no step runs for long."""
    source = "{{ (n + n - n)|string|length }} {{ n > n - 1 }} {{ -n < n }}"
    started = time.monotonic()
    out = render_manifest(manifest(source, ["n"]), {"n": 10**4000}).turns[-1]["content"]
    assert out == "4001 True True" and time.monotonic() - started < 1


def test_the_messages_name_the_bound_and_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RenderError, match=r"the replace filter would be 1500000 characters; "
                                          r"the limit is 1000000 \(LLMREG_RENDER_MAX_CHARS\)"):
        raise run("{{ s|replace('a', 'bbb') }}")[0]
    # The step bound is what stops this loop; on a loaded machine (run() traces memory,
    # which slows Python down) the 2 s clock could come first, so it is lifted here.
    with monkeypatch.context() as m:
        m.setenv("LLMREG_RENDER_TIMEOUT", "60")
        with pytest.raises(RenderError, match=r"more than 100000 steps .* "
                                              r"LLMREG_RENDER_MAX_STEPS"):
            raise run(BOMBS["loops"][0])[0]
    with pytest.raises(RenderError, match=r"more than 2s; LLMREG_RENDER_TIMEOUT"):
        raise run(BOMBS["loops"][8])[0]
    with pytest.raises(RenderError, match=r"built would be \d+ characters in all; the limit "
                                          r"is 4000000 \(4 × LLMREG_RENDER_MAX_CHARS\)"):
        raise run(BOMBS["loops"][4])[0]


def test_output_is_counted_as_it_is_written() -> None:
    """A render stops at the first piece of output past the limit, whether it is text,
    a value, or written into a ``{% set %}`` block."""
    for source in ("{% for x in xs %}" + "y" * 1500 + "{% endfor %}",
                   "{% for x in xs %}{{ x ~ s[:999] }}{% endfor %}",
                   "{% for x in xs %}{% set b %}{{ s[:2000] }}{% endset %}{% endfor %}"):
        error, seconds, _ = run(source)
        assert "the output would be" in str(error)


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREG_RENDER_MAX_CHARS", "10")
    monkeypatch.setenv("LLMREG_RENDER_MAX_STEPS", "5")
    monkeypatch.setenv("LLMREG_RENDER_TIMEOUT", "0.5")
    assert RenderLimits.from_env() == RenderLimits(max_chars=10, max_steps=5, timeout=0.5)
    monkeypatch.setenv("LLMREG_RENDER_TIMEOUT", "soon")
    with pytest.raises(Exception, match="LLMREG_RENDER_TIMEOUT='soon' must be a positive"):
        RenderLimits.from_env()
    assert limits() == RenderLimits()  # this process read its limits once, at first use


def test_registration_analyses_a_template_without_evaluating_it() -> None:
    """The autoescape payload: Jinja2 folds ``{% autoescape EXPR %}`` while compiling,
    so analysing by compiling ran it. Registration only parses and walks the tree."""
    source = ("{% autoescape (('x' ~ 'x')|replace('', '" + "y" * 9000 + "')|replace('', '"
              + "z" * 9000 + "'))|length > 0 %}{{ q }}{% endautoescape %}")
    tracemalloc.start()
    try:
        with pytest.raises(TemplateSyntaxError, match=r"line 1: .*autoescape"):
            Bundle.from_dict(minimal(template={"source": source, "variables": ["q"]}))
        with pytest.raises(TemplateSyntaxError, match=r"line 1: .*autoescape"):
            render_manifest(manifest(source, ["q"]), {"q": "x"})  # never compiled either
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < CEILING


def test_deep_nesting_is_a_syntax_error_not_a_crash() -> None:
    source = "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}"
    with pytest.raises(TemplateSyntaxError, match="nests too deeply"):
        referenced_variables(source)
    with pytest.raises(TemplateSyntaxError, match="numbers are at most"):
        referenced_variables("{{ " + "9" * 5000 + " }}")


def test_the_cli_prints_one_line_and_exits_1(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from llmreg_cli.main import app

    folder = tmp_path / "bomb"
    folder.mkdir()
    (folder / "llmreg.yaml").write_text(
        "model: {provider: openai, id: gpt-4o-2024-08-06}\n"
        "template:\n  variables: [q]\n  source: \"{% for a in q %}{% for b in q %}"
        "{% for c in q %}{% endfor %}{% endfor %}{% endfor %}\"\n")
    started = time.monotonic()
    result = CliRunner().invoke(app, ["render", str(folder), "--var", "q=" + "x" * 100],
                                prog_name="llmreg")
    assert time.monotonic() - started < 5
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and "more than 100000 steps" in result.output
    (folder / "llmreg.yaml").write_text(
        "model: {provider: openai, id: gpt-4o-2024-08-06}\n"
        "template:\n  source: \"{% for a in range(99999) %}{% endfor %}\"\n")
    result = CliRunner().invoke(app, ["render", str(folder)], prog_name="llmreg")
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and "range() calls a function" in result.output
