"""Every template has a bounded cost: analysing it runs nothing, rendering it is capped
in characters, steps and time, and every failure is one ``RenderError`` line.

Each payload is a class of attack, not one string: numbers that size an allocation
(widths, counts, repeats), loops and recursion, amplifying operators and filters.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from llmreg.bundle.render import RenderLimits, limits, referenced_variables, render_manifest
from llmreg.bundle.schema import Bundle
from llmreg.errors import RenderError, TemplateSyntaxError
from tests.conftest import minimal

CEILING = 64 * 1024 * 1024  # bytes any one of these may allocate

BOMBS = {
    "recursive macro": "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "lipsum": "{{ lipsum(n=10**8) }}",
    "center filter": "{{ 'x'|center(10**10) }}",
    "format filter width": "{{ '%10000000000s'|format('x') }}",
    "nested loops": "{% for a in range(100000) %}{% for b in range(100000) %}"
                    "{% endfor %}{% endfor %}",
    "repeat": "{{ 'x' * 10**10 }}",
    "repeat a list": "{{ ([1] * 10**9)|length }}",
    "str.format width": "{{ '{:>10000000000}'.format(1) }}",
    "%-format star width": "{{ '%*s' % (10**10, 'x') }}",
    "replace amplification": "{% set s = 'a' * 999999 %}{{ s|replace('a', 'b' * 999999) }}",
    "str.replace amplification": "{% set s = 'a' * 999999 %}{{ s.replace('a', 'b' * 999) }}",
    "power": "{{ 2 ** (10**9) }}",
    "doubling with ~": "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
                       "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "doubling with +": "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
                       "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "join separator": "{{ range(99999)|join('x' * 99999) }}",
    "indent width": "{{ 'a\nb'|indent(10**10) }}",
    "ljust method": "{{ 'x'.ljust(10**10) }}",
    "many small outputs": "{% for i in range(99999) %}{{ 'y' * 999 }}{% endfor %}",
    "type error": "{{ 1 + 'a' }}",
    "overflow": "{{ 2.0 ** 100000 }}",
    "self recursion": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
}


def manifest(source: str) -> dict[str, object]:
    return {"kind": "llm", "model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
            "template": {"source": source, "variables": []}}


@pytest.mark.parametrize("source", BOMBS.values(), ids=BOMBS.keys())
def test_render_bombs_fail_fast_in_bounded_memory_with_one_line(source: str) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        assert referenced_variables(source) <= {"f", "s", "ns", "lipsum"}  # never run
        with pytest.raises(RenderError) as caught:
            render_manifest(manifest(source), {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 3.0
    assert peak < CEILING, f"{peak / 2**20:.0f} MiB"
    message = str(caught.value)
    assert "\n" not in message and message.startswith("template: ")


def test_the_messages_name_the_bound_and_its_setting() -> None:
    with pytest.raises(RenderError, match=r"the center filter with 10000000000 would be "
                                          r"10000000000 characters; the limit is 1000000 "
                                          r"\(LLMREG_RENDER_MAX_CHARS\)"):
        render_manifest(manifest(BOMBS["center filter"]), {})
    with pytest.raises(RenderError, match=r"more than 100000 steps .* LLMREG_RENDER_MAX_STEPS"):
        render_manifest(manifest(BOMBS["nested loops"]), {})


def test_registration_analyses_a_template_without_evaluating_it() -> None:
    tracemalloc.start()
    try:
        bundle = Bundle.from_dict(minimal(template={"source": "{{ 'x' * 10**10 }}{{ q }}",
                                                    "variables": ["q"]}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < CEILING
    with pytest.raises(RenderError, match="repeating a value"):
        bundle.render(q="hi")  # the same bound holds in Bundle.render


def test_deep_nesting_is_a_syntax_error_not_a_crash() -> None:
    source = "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}"
    with pytest.raises(TemplateSyntaxError, match="nests too deeply"):
        referenced_variables(source)


def test_reserved_guard_names_are_refused() -> None:
    with pytest.raises(TemplateSyntaxError, match="__llmreg_steps is reserved"):
        render_manifest(manifest("{{ __llmreg_steps }}"), {})


def test_ordinary_templates_are_untouched_by_the_guards() -> None:
    source = ("{% for d in docs %}[{{ d.id }}] {{ d.text|truncate(20) }}{{ '%-5s'|format('|') }}"
              "{% endfor %}{{ 'a' ~ 'b' }}{{ 3 * 'c' }}{{ 2 ** 10 }}{{ '{:>4}'.format(7) }}")
    m = manifest(source)
    m["template"] = {"source": source, "variables": ["docs"]}  # type: ignore[assignment]
    docs = [{"id": i, "text": "word " * 10} for i in range(3)]
    out = render_manifest(m, {"docs": docs}).turns[-1]["content"]
    assert out.startswith("[0] word word word...|    [1]")
    assert out.endswith("abccc1024   7")


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREG_RENDER_MAX_CHARS", "10")
    monkeypatch.setenv("LLMREG_RENDER_MAX_STEPS", "5")
    monkeypatch.setenv("LLMREG_RENDER_TIMEOUT", "0.5")
    assert RenderLimits.from_env() == RenderLimits(max_chars=10, max_steps=5, timeout=0.5)
    monkeypatch.setenv("LLMREG_RENDER_TIMEOUT", "soon")
    with pytest.raises(Exception, match="LLMREG_RENDER_TIMEOUT='soon' must be a positive"):
        RenderLimits.from_env()
    assert limits() == RenderLimits()  # this process read its limits once, at first use


def test_the_cli_prints_one_line_and_exits_1(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from llmreg_cli.main import app

    folder = tmp_path / "bomb"
    folder.mkdir()
    (folder / "llmreg.yaml").write_text(
        "model: {provider: openai, id: gpt-4o-2024-08-06}\n"
        "template:\n  source: \"{% for a in range(99999) %}{% for b in range(99999) %}"
        "{% endfor %}{% endfor %}\"\n")
    started = time.monotonic()
    result = CliRunner().invoke(app, ["render", str(folder)], prog_name="llmreg")
    assert time.monotonic() - started < 5
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and "more than 100000 steps" in result.output


@pytest.mark.parametrize("source", ['{% include "x.j2" %}', '{% import "m.j2" as m %}',
                                    '{% from "m.j2" import f %}', '{% extends "base.j2" %}'])
def test_a_template_cannot_reach_other_files(source: str) -> None:
    with pytest.raises(TemplateSyntaxError, match="line 1: a bundle's template is one file"):
        referenced_variables(source)
