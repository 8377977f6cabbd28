"""The template language (llmreg/bundle/language.py): an allowlist checked on the parse
tree at registration, without evaluating anything.

Each class of refused construct has several payloads; every refusal is one
``TemplateSyntaxError`` line naming the line, the construct and what to use instead,
costs next to nothing, and holds at render too (a refused template is never compiled).
Templates inside the language render exactly as plain Jinja2 renders them.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any

import jinja2
import pytest
from jinja2 import meta

from llmreg.bundle.directory import load_bundle_dir
from llmreg.bundle.render import referenced_variables, render_manifest
from llmreg.bundle.schema import Bundle
from llmreg.errors import TemplateSyntaxError
from llmreg.service.importers.mlflow import to_jinja
from tests.conftest import EXAMPLES, minimal

BIG = "y" * 9000
# class -> ([payloads], a phrase every message of the class has)
REFUSED: dict[str, tuple[list[str], str]] = {
    "autoescape with an expression (folded while compiling)": ([
        "{% autoescape ('x' ~ 'x')|replace('', '" + BIG + "')|length > 0 %}{% endautoescape %}",
        "{% autoescape ('a'|center(10**10))|length %}x{% endautoescape %}",
        "{% autoescape 2 ** 10 ** 10 %}x{% endautoescape %}",
        "{% autoescape true %}{{ q }}{% endautoescape %}",
        "x\n{% autoescape q %}{% endautoescape %}",
    ], "{% autoescape %}; prompts are not HTML"),
    "method calls on strings and numbers": ([
        "{{ q.expandtabs(10**9) }}", "{{ q.center(10**6).join(q) }}", "{{ q.translate(t) }}",
        "{{ '{:{}}'.format(1, 10**9) }}", "{{ '{a:>999999999}'.format_map(q) }}",
        "{{ q.ljust(10**10) }}", "{{ (1).to_bytes(10**9, 'big') }}", "{{ q.zfill(10**9) }}",
        "{{ q.split(',') }}", "{{ ''.join(q) }}", "{{ q.upper() }}", "{{ d.items() }}",
        "{{ q.replace('a', 'b' ~ 'b') }}", "{{ q.__len__() }}",
    ], "a template cannot call functions or methods"),
    "calls of functions": ([
        "{{ range(10**9)|length }}", "{% for i in range(10) %}{% endfor %}",
        "{{ lipsum(n=10**8) }}", "{{ dict(a=1) }}", "{{ cycler(1, 2) }}", "{{ joiner() }}",
        "{{ q() }}", "{{ (q|first)() }}", "{{ loop.cycle(1, 2) }}",
    ], "a template cannot call functions or methods"),
    "namespaces": ([
        "{% set ns = namespace(s='x') %}",
        "{% set ns = namespace(s='x') %}{% for i in q %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}",
        "{% set q.s = 1 %}",
    ], "namespace"),
    "%-formatting and format widths": ([
        "{{ '%(a)999999999s'|format(a=1) }}", "{{ '%.999999999f'|format(1.0) }}",
        "{{ '%10000000000s'|format('x') }}", "{{ q|format(1) }}",
    ], "%-formatting"),
    "the % operator": ([
        "{{ '%(a)999999999s' % {'a': 1} }}", "{{ '%.999999999f' % 1.0 }}",
        "{{ '%*s' % (10**10, 'x') }}", "{{ q % q }}", "{{ 7 % 2 }}",
    ], "the operator % is not in the language"),
    "arithmetic that grows": ([
        "{{ 2 ** 100 }}", "{{ q * 10 }}", "{{ 'x' * 3 }}", "{{ [1] * 3 }}",
        "{{ 10 // 3 }}", "{{ 1 / 3 }}", "{{ (q|length) * (q|length) }}",
    ], "is not in the language (it can build values without bound)"),
    "filters outside the language": ([
        "{{ q|center(10**9) }}", "{{ q|wordwrap(1) }}", "{{ q|pprint }}",
        "{{ q|batch(10**9, 'x') }}", "{{ q|slice(3) }}", "{{ q|sum(start=[]) }}",
        "{{ q|filesizeformat }}", "{{ q|xmlattr }}", "{{ q|urlize }}", "{{ q|safe }}",
        "{{ q|attr('x') }}", "{{ q|random }}", "{{ q|groupby('x') }}", "{{ q|shout }}",
    ], "in the template language"),
    "filters that take a filter or test by name": ([
        "{{ q|map('center', 1000000000)|list }}", "{{ q|map('upper') }}",
        "{{ q|map(attribute='x', other=1) }}", "{{ q|select('callable') }}",
        "{{ q|selectattr('x', 'test') }}", "{{ q|reject(q) }}",
        "{{ q|join(', ', attribute='x') }}",
    ], "|"),
    "tests outside the language": ([
        "{{ q is callable }}", "{{ q is lower }}", "{{ q is filter }}", "{{ q is test }}",
        "{{ q is escaped }}",
    ], "is not in the language; the tests are"),
    "macros, call and filter blocks, blocks": ([
        "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        "{% macro f() %}x{% endmacro %}", "{% call q() %}x{% endcall %}",
        "{% filter upper %}{{ q }}{% endfilter %}", "{% block b %}x{% endblock %}",
        "{% set x | upper %}{{ q }}{% endset %}",
    ], "cannot use"),
    "recursive loops": ([
        "{% for x in q recursive %}{{ loop(x.children) }}{% endfor %}",
        "{% for x in q recursive %}{{ x }}{% endfor %}",
    ], "a recursive loop"),
    "private attributes and reserved names": ([
        "{{ q.__class__ }}", "{{ q._secret }}", "{{ q.__class__.__mro__ }}",
        "{{ __llmreg_steps }}", "{{ __llmreg_write }}", "{% set __llmreg_concat = 1 %}",
    ], ""),
    "literals out of bounds": ([
        "{{ '" + "x" * 10_001 + "' }}", "{{ [" + "1," * 1001 + "] }}",
        "{{ {" + ", ".join(f"{i}: 1" for i in range(1001)) + "} }}",
        "{{ 100000000000000000000 }}", "{{ 1e300 }}", "{{ -9007199254740993 }}",
    ], "the limit is"),
    "splatted arguments": ([
        "{{ q|join(*q) }}", "{{ q|default(**q) }}", "{{ q is divisibleby(*q) }}",
    ], "pass the arguments one by one"),
    "templates too long to parse cheaply": ([
        "{{ q }}" * 5000, ("{{ [" + "q, " * 999 + "q] }}") * 6, "{% if q %}x{% endif %}" * 3000,
        "x\n" * 20_000 + "{{ q|upper }}" * 4000,
    ], "more than 10000 tokens"),
    "other files": ([
        '{% include "x.j2" %}', '{% import "m.j2" as m %}', '{% from "m.j2" import f %}',
        '{% extends "base.j2" %}',
    ], "a bundle's template is one file"),
}
CASES = [(kind, i, source, phrase) for kind, (sources, phrase) in REFUSED.items()
         for i, source in enumerate(sources)]


def manifest(source: str, variables: list[str]) -> dict[str, object]:
    return {"kind": "llm", "model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
            "template": {"source": source, "variables": variables}}


@pytest.mark.parametrize("kind, i, source, phrase", CASES,
                         ids=[f"{k}-{i}" for k, i, _, _ in CASES])
def test_refused_at_registration_and_at_render(kind: str, i: int, source: str,
                                               phrase: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateSyntaxError) as caught:
        referenced_variables(source)
    seconds = time.monotonic() - started
    tracemalloc.start()
    try:
        with pytest.raises(TemplateSyntaxError):
            Bundle.from_dict(minimal(template={"source": source, "variables": ["q"]}))
        with pytest.raises(TemplateSyntaxError):  # a stored manifest is never compiled
            render_manifest(manifest(source, ["q"]), {"q": "x"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds < 1.0 and peak < 16 * 2**20
    message = str(caught.value)
    assert "\n" not in message and message.startswith("line "), message
    assert phrase in message


@pytest.mark.parametrize("source, says", [
    ("Hi\n\n{{ q.upper() }}", "line 3: q.upper() calls a method; a template cannot call "
                              "functions or methods: use the filter instead, {{ x|upper }}"),
    ("{{ q ~ '%s' % q }}", "line 1: the operator % is not in the language (it can build "
                           "values without bound); join text with ~; for parity use "
                           "`is even`/`is odd` or `is divisibleby(n)`"),
    ("{% for i in range(3) %}{% endfor %}", "line 1: range() calls a function; a template "
                                            "cannot call functions or methods: use loop over "
                                            "a list variable"),
    ("{{ d.get('k') }}", "line 1: d.get() calls a method; a template cannot call functions "
                         "or methods: use an item with a default, {{ d['k']|default('') }}"),
    ("{{ q|wordwrap(1) }}", "line 1: No filter named 'wordwrap' in the template language "
                            "(wrap the text in the caller); the filters are abs, capitalize, "
                            "count, d, default, dictsort, e, escape, first, float, indent, "
                            "int, items, join, last, length,"
                            " list, lower, map, max, min, reject, rejectattr, replace, "
                            "reverse, round, select, selectattr, sort, string, title, tojson,"
                            " trim, truncate, unique, upper"),
])
def test_a_refusal_names_the_line_the_construct_and_the_fix(source: str, says: str) -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        referenced_variables(source)
    assert str(caught.value) == says


# Inside the language: each renders exactly as plain Jinja2 renders it.
ALLOWED = [
    "Q: {{ q }}", "{{ q|default('none') }} {{ q|d('-') }} {{ missing|default('x') }}",
    "{{ q|trim|upper }} {{ q|lower|title }} {{ q|capitalize }} {{ q|length }}",
    "{% for d in docs %}[{{ d.id }}] {{ d.text|truncate(20) }}{{ ', ' if not loop.last }}"
    "{% endfor %}",
    "{% for d in docs if d.id > 0 %}{{ loop.index }}/{{ loop.length }} {{ loop.index0 }}"
    "{{ loop.first }}{{ loop.revindex }} {{ loop.cycle('odd', 'even') }}{% else %}none"
    "{% endfor %}",
    "{% for k, v in meta|dictsort %}{{ k }}={{ v }};{% endfor %}"
    "{% for k, v in meta|items %}{{ k }}{% endfor %}",
    "{{ docs|map(attribute='id')|join(', ') }} {{ docs|selectattr('id', 'odd')|list|length }}"
    " {{ docs|rejectattr('id', 'equalto', 1)|map(attribute='id')|list }}",
    "{{ docs|first }} {{ docs|last }} {{ docs|sort(attribute='id', reverse=true)|first }}",
    "{{ meta|tojson }} {{ meta|tojson(indent=2) }} {{ '<a>'|escape }} {{ '<a>'|e }}",
    "{{ q|replace('a', 'b') }} {{ q|replace('a', 'b', 1) }} {{ 'a\nb'|indent(2, true) }}",
    "{{ '3'|int + 1 }} {{ '2.5'|float - 1 }} {{ 2.567|round(2) }} {{ -3|abs }}",
    "{{ [3, 1, 2]|max }} {{ [3, 1, 2]|min }} {{ [1, 1, 2]|unique|list }} {{ 'ab'|reverse }}",
    "{{ 'a' ~ 1 ~ [2] }} {{ q + '!' }} {{ [1] + [2] }} {{ 5 - 3 }} {{ -5 }}",
    "{% set t = q ~ '?' %}{{ t }}{% set a, b = 1, 2 %}{{ a }}{{ b }}",
    "{% set block %}<{{ q }}>{% endset %}{{ block|length }}{{ block }}",
    "{% with x = q %}{{ x }}{% endwith %}",
    "{% if q and not missing is defined %}a{% elif q == 'x' %}b{% else %}c{% endif %}",
    "{{ 'yes' if q in ['x', 'y'] else 'no' }} {{ q is string }} {{ 4 is even }} "
    "{{ 9 is divisibleby(3) }} {{ none is none }} {{ q is not number }}",
    "{{ q[0] }}{{ q[1:] }}{{ docs[0]['id'] }}{{ docs[-1].text[:4] }}{{ meta['b'] }}",
    "{% raw %}{{ not a variable }}{% endraw %}{# a comment #}",
    "{{ (docs|length > 1) or (q != 'x') }} {{ 1 < 2 <= 3 }} {{ 'b' not in q }}",
    "{% for d in docs %}{% for t in d.tags %}{{ loop.index }}{{ t }}{% endfor %}"
    "{{ loop.changed(d.id) }}{% endfor %}",
    "{{ docs|map(attribute='text')|map(attribute='missing', default='?')|join }}",
    "{{ q|string }} {{ docs|list|length }} {{ meta|string|length }}",
    "{{ 'Ünï'|upper }} {{ q|truncate(3, true, '…', 0) }} {{ '  x  '|trim }}",
]
VALUES: dict[str, Any] = {"q": "hello", "docs": [{"id": i, "text": f"text {i} " * 5,
                                                   "tags": ["a", "b"]} for i in range(3)],
                          "meta": {"b": 2, "a": "x<y"}, "missing": None}


def plain(source: str) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(source).render(**VALUES)


@pytest.mark.parametrize("source", ALLOWED)
def test_the_language_renders_like_jinja2(source: str) -> None:
    used = referenced_variables(source)
    env = jinja2.Environment()
    assert used == meta.find_undeclared_variables(env.parse(source))  # it is allowlisted
    assert used <= set(VALUES)
    got = render_manifest(manifest(source, sorted(used)), {k: VALUES[k] for k in used})
    assert got.turns[-1]["content"] == plain(source)


@pytest.mark.parametrize("source, free", [
    ("{% set y = 1 %}{{ y }}", set()), ("{{ y }}{% set y = 1 %}{{ y }}", {"y"}),
    ("{% if x %}{% set y = 1 %}{% endif %}{{ y }}", {"x", "y"}),
    ("{% for a in b %}{% set c = a %}{{ c }}{% endfor %}{{ c }}", {"b", "c"}),
    ("{% for a in b if a.x %}{{ loop.index }}{% endfor %}{{ loop }}", {"b", "loop"}),
    ("{% for a in b %}{% else %}{{ a }}{% endfor %}", {"a", "b"}),
    ("{% with q = 1 %}{{ q }}{% endwith %}{{ q }}", {"q"}),
    ("{% set a = a %}{{ a }}", {"a"}), ("{% for a in a %}{{ a }}{% endfor %}", {"a"}),
    ("{{ q is divisibleby(n) }}", {"q", "n"}), ("{{ q|default(r) }}", {"q", "r"}),
])
def test_variables_are_found_as_jinja2_finds_them(source: str, free: set[str]) -> None:
    assert referenced_variables(source) == free
    assert meta.find_undeclared_variables(jinja2.Environment().parse(source)) == free


def test_the_examples_and_mlflow_prompts_stay_in_the_language() -> None:
    for folder in sorted(p for p in EXAMPLES.iterdir() if p.is_dir()):
        bundle, _ = load_bundle_dir(folder)
        assert bundle.template is not None
        assert referenced_variables(bundle.template.source) == set(bundle.template.variables)
    source, variables = to_jinja("Hi {{name}}, {{ name }} has {x} and {{ 1 }} {% raw %}")
    assert referenced_variables(source) == set(variables) == {"name"}
    chat = json.dumps({"q": "x"})
    assert referenced_variables(to_jinja(chat + " {{ q }}")[0]) == {"q"}
