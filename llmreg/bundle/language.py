"""The template language: what a bundle's template may say, checked on Jinja2's parse
tree without evaluating any of it.

A template is an allowlist of Jinja2, enough for real prompts and nothing that can run
code at registration or grow without bound at render:

- text, ``{{ expressions }}``, ``{% if %}``/``{% elif %}``/``{% else %}``,
  ``{% for %}`` over a value (with ``loop.*``, ``loop.cycle(…)``, ``loop.changed(…)``,
  an ``if`` filter and ``{% else %}``), ``{% set %}`` (also as a block), ``{% with %}``,
  ``{% raw %}`` and comments;
- variables, their attributes and items (``doc.title``, ``doc['id']``, ``xs[1:]``; no
  name starting with ``_``);
- string, number, list, tuple and dict literals, each bounded (:data:`MAX_LITERAL`
  characters, :data:`MAX_ITEMS` items, numbers within ±2⁵³);
- comparisons, ``in``, ``and``/``or``/``not``, ``x if c else y``, unary ``-``, ``+``
  and ``-`` (numbers, or joining strings and lists, sized at render), ``~``;
- the filters and tests of :mod:`llmreg.bundle.filters`.

Anything else is refused with a :class:`~llmreg.errors.TemplateSyntaxError` naming the
line, the construct and what to use instead: calls of functions and methods, ``*``,
``/``, ``//``, ``%``, ``**``, macros, call and filter blocks, ``{% autoescape %}``,
blocks, namespaces, recursive loops, includes, imports and extends.

Example:
    >>> import jinja2
    >>> sorted(analyse(jinja2.Environment().parse("{% for d in docs %}{{ d.title }}"
    ...                                            "{% endfor %}{{ q|upper }}")))
    ['docs', 'q']
    >>> analyse(jinja2.Environment().parse("{{ q.upper() }}"))
    Traceback (most recent call last):
    ...
    llmreg.errors.TemplateSyntaxError: line 1: q.upper() calls a method; a template \
cannot call functions or methods: use the filter instead, {{ x|upper }}
"""

from __future__ import annotations

import jinja2
from jinja2 import nodes

from llmreg.bundle.filters import FILTERS, TESTS
from llmreg.errors import TemplateSyntaxError

RESERVED = "__llmreg"  # the prefix of the render's own guards
MAX_LITERAL = 10_000  # characters in one string literal inside an expression
MAX_ITEMS = 1_000  # items in one list, tuple or dict literal
MAX_NUMBER = 2**53  # a number literal's size
MAX_TOKENS = 10_000  # names, operators, literals, tags and text runs in one template
LOOP_CALLS = frozenset({"cycle", "changed"})
_SEE = "see the template language in docs/security.md"
# What to write instead of a method call.
_METHODS = {
    "upper": "the filter instead, {{ x|upper }}", "lower": "the filter instead, {{ x|lower }}",
    "title": "the filter instead, {{ x|title }}", "strip": "the filter instead, {{ x|trim }}",
    "capitalize": "the filter instead, {{ x|capitalize }}",
    "replace": "the filter instead, {{ x|replace('a', 'b') }}",
    "join": "the filter instead, {{ xs|join(', ') }}",
    "items": "the filter instead, {% for k, v in d|items %}",
    "get": "an item with a default, {{ d['k']|default('') }}",
    "format": "~ to join text, {{ 'Hi ' ~ name }}",
    "format_map": "~ to join text, {{ 'Hi ' ~ name }}",
}
_OPERATORS: dict[type[nodes.Node], tuple[str, str]] = {
    nodes.Mul: ("*", "repeat text with a loop over a list, or pass the value computed"),
    nodes.Div: ("/", "pass the value computed"),
    nodes.FloorDiv: ("//", "pass the value computed"),
    nodes.Mod: ("%", "join text with ~; for parity use `is even`/`is odd` or "
                     "`is divisibleby(n)`"),
    nodes.Pow: ("**", "pass the value computed"),
}
_FILTER_HINTS = {
    "format": " (it is %-formatting, whose widths grow without bound: join text with ~)",
    "center": " (padding grows without bound: pad in the caller)",
    "wordwrap": " (wrap the text in the caller)",
}
_STATEMENTS: dict[type[nodes.Node], str] = {
    nodes.Macro: "a macro ({% macro %}); write the text out, or loop over a list",
    nodes.CallBlock: "a call block ({% call %}); write the text out, or loop over a list",
    nodes.FilterBlock: "a filter block ({% filter %}); apply the filter to a value, "
                       "{{ x|upper }}",
    nodes.ScopedEvalContextModifier: "{% autoescape %}; prompts are not HTML: escape a "
                                     "value with {{ x|escape }}",
    nodes.EvalContextModifier: "{% autoescape %}; prompts are not HTML: escape a value "
                               "with {{ x|escape }}",
    nodes.Block: "a block ({% block %}), which belongs to template inheritance; remove "
                 "the block tags",
}


def check_size(env: jinja2.Environment, source: str) -> None:
    """Refuse a template of more than :data:`MAX_TOKENS` tokens before it is parsed
    (parsing and compiling cost time in proportion to them; counting stops at the limit).

    Example:
        >>> check_size(jinja2.Environment(), "{{ q }}" * 5000)
        Traceback (most recent call last):
        ...
        llmreg.errors.TemplateSyntaxError: line 1: the template has more than 10000 tokens \
(names, operators, literals, tags, runs of text); loop over a list variable instead of \
repeating expressions, and pass long data as variables
    """
    count = 0
    for lineno, kind, _ in env.lexer.tokeniter(source, None):
        if kind != "whitespace":
            count += 1
            if count > MAX_TOKENS:
                raise TemplateSyntaxError(
                    f"line {lineno}: the template has more than {MAX_TOKENS} tokens (names, "
                    "operators, literals, tags, runs of text); loop over a list variable "
                    "instead of repeating expressions, and pass long data as variables")


def analyse(tree: nodes.Template) -> set[str]:
    """Check ``tree`` against the language and return the variables it reads from the
    caller; raise :class:`~llmreg.errors.TemplateSyntaxError` on anything else.

    Nothing is evaluated: no constant is folded, no filter runs.

    Example:
        >>> import jinja2
        >>> analyse(jinja2.Environment().parse("{% set n = q|length %}{{ n }}"))
        {'q'}
    """
    free: set[str] = set()
    _Walker(free).body(tree.body, set(), in_loop=False)
    return free


def _refuse(node: nodes.Node, what: str) -> TemplateSyntaxError:
    return TemplateSyntaxError(f"line {node.lineno}: {what}")


class _Walker:
    """One pass over the statements, in order, tracking the names bound so far (as
    Jinja2 scopes them: a loop's names and sets stay in the loop, a branch's sets are
    not certain after it)."""

    def __init__(self, free: set[str]) -> None:
        self.free = free

    def body(self, stmts: list[nodes.Node], bound: set[str], in_loop: bool) -> None:
        bound = set(bound)
        for stmt in stmts:
            self.stmt(stmt, bound, in_loop)

    def stmt(self, node: nodes.Node, bound: set[str], in_loop: bool) -> None:
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if not isinstance(child, nodes.TemplateData):
                    self.expr(child, bound, in_loop)
        elif isinstance(node, nodes.If):
            self.expr(node.test, bound, in_loop)
            self.body(node.body, bound, in_loop)
            for branch in node.elif_:
                self.stmt(branch, bound, in_loop)
            self.body(node.else_, bound, in_loop)
        elif isinstance(node, nodes.For):
            if node.recursive:
                raise _refuse(node, "a recursive loop ({% for … recursive %}); flatten the "
                                    "list in the caller and loop over it")
            self.expr(node.iter, bound, in_loop)
            inner = bound | self.targets(node.target)
            if node.test is not None:
                self.expr(node.test, inner, in_loop)
            self.body(node.body, inner | {"loop"}, in_loop=True)
            self.body(node.else_, bound, in_loop)
        elif isinstance(node, nodes.Assign):
            self.expr(node.node, bound, in_loop)
            bound |= self.targets(node.target)
        elif isinstance(node, nodes.AssignBlock):
            if node.filter is not None:
                raise _refuse(node, "a bundle's template cannot use a filter on a {% set %} "
                                    "block; set the block, then apply the filter where the "
                                    "value is used")
            bound |= self.targets(node.target)
            self.body(node.body, bound, in_loop)
        elif isinstance(node, nodes.With):
            for value in node.values:
                self.expr(value, bound, in_loop)
            inner = set(bound)
            for target in node.targets:
                inner |= self.targets(target)
            self.body(node.body, inner, in_loop)
        elif isinstance(node, nodes.Scope):  # {% autoescape %} wraps itself in one
            self.body(node.body, bound, in_loop)
        elif isinstance(node, nodes.Include | nodes.Import | nodes.FromImport
                        | nodes.Extends):
            raise _refuse(node, "a bundle's template is one file; it cannot include, import "
                                "or extend another (inline it)")
        else:
            what = _STATEMENTS.get(type(node), f"the statement {type(node).__name__}; {_SEE}")
            raise _refuse(node, f"a bundle's template cannot use {what}")

    def targets(self, node: nodes.Node) -> set[str]:
        if isinstance(node, nodes.Name):
            self.name(node)
            return {node.name}
        if isinstance(node, nodes.Tuple):
            out: set[str] = set()
            for item in node.items:
                out |= self.targets(item)
            return out
        if isinstance(node, nodes.NSRef):
            raise _refuse(node, f"{{% set {node.name}.{node.attr} %}} sets a namespace; a "
                                "template keeps no state across loop iterations: compute "
                                "the value in the caller")
        raise _refuse(node, f"{type(node).__name__} cannot be assigned to; assign to a name")

    def name(self, node: nodes.Name) -> None:
        if node.name.startswith(RESERVED):
            raise _refuse(node, f"the name {node.name} is reserved; rename that variable")

    def expr(self, node: nodes.Node, bound: set[str], in_loop: bool) -> None:
        if isinstance(node, nodes.Name):
            self.name(node)
            if node.name not in bound:
                self.free.add(node.name)
        elif isinstance(node, nodes.Const):
            _literal(node)
        elif isinstance(node, nodes.TemplateData):
            pass
        elif isinstance(node, nodes.List | nodes.Tuple | nodes.Dict):
            if len(node.items) > MAX_ITEMS:
                raise _refuse(node, f"a literal of {len(node.items)} items; the limit is "
                                    f"{MAX_ITEMS}: pass a long list as a variable")
            for item in node.items:
                self.expr(item, bound, in_loop)
        elif isinstance(node, nodes.Pair):
            self.expr(node.key, bound, in_loop)
            self.expr(node.value, bound, in_loop)
        elif isinstance(node, nodes.Keyword):
            self.expr(node.value, bound, in_loop)
        elif isinstance(node, nodes.CondExpr):
            for part in (node.test, node.expr1, node.expr2):
                if part is not None:
                    self.expr(part, bound, in_loop)
        elif isinstance(node, nodes.And | nodes.Or | nodes.Add | nodes.Sub | nodes.Concat
                        | nodes.Compare | nodes.Operand | nodes.Not | nodes.Neg | nodes.Pos
                        | nodes.Getitem | nodes.Slice):
            for child in node.iter_child_nodes():
                self.expr(child, bound, in_loop)
        elif isinstance(node, nodes.Getattr):
            if node.attr.startswith("_"):
                raise _refuse(node, f"the attribute {node.attr} is private; a template reads "
                                    "the public attributes and items of its variables")
            self.expr(node.node, bound, in_loop)
        elif isinstance(node, nodes.Filter):
            self.filter(node, bound, in_loop)
        elif isinstance(node, nodes.Test):
            if node.name not in TESTS:
                raise _refuse(node, f"the test '{node.name}' is not in the language; the "
                                    f"tests are {', '.join(sorted(TESTS))}")
            self.expr(node.node, bound, in_loop)
            self.args(node, bound, in_loop, f"the {node.name} test")
        elif isinstance(node, nodes.Call):
            self.call(node, bound, in_loop)
        elif type(node) in _OPERATORS:
            op, instead = _OPERATORS[type(node)]
            raise _refuse(node, f"the operator {op} is not in the language (it can build "
                                f"values without bound); {instead}")
        else:
            raise _refuse(node, f"the expression {type(node).__name__} is not in the "
                                f"language; {_SEE}")

    def args(self, node: nodes.Filter | nodes.Test | nodes.Call, bound: set[str],
             in_loop: bool, what: str) -> None:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise _refuse(node, f"*args or **kwargs given to {what}; pass the arguments one "
                                "by one")
        for child in (*node.args, *node.kwargs):
            self.expr(child, bound, in_loop)

    def filter(self, node: nodes.Filter, bound: set[str], in_loop: bool) -> None:
        name = node.name
        if name not in FILTERS:
            raise _refuse(node, f"No filter named '{name}' in the template language"
                                f"{_FILTER_HINTS.get(name, '')}; the filters are "
                                f"{', '.join(sorted(FILTERS))}")
        if node.node is not None:
            self.expr(node.node, bound, in_loop)
        self.args(node, bound, in_loop, f"the {name} filter")
        keys = {k.key for k in node.kwargs}
        if name == "map" and (node.args or not keys <= {"attribute", "default"}):
            raise _refuse(node, "|map(...) may only read an attribute; write "
                                "|map(attribute='name'), or loop over the list")
        if name == "join" and (len(node.args) > 1 or "attribute" in keys):
            raise _refuse(node, "|join(sep, attribute) is not in the language; write "
                                "|map(attribute='name')|join(sep)")
        if name in ("select", "reject", "selectattr", "rejectattr"):
            at = 0 if name in ("select", "reject") else 1
            test = node.args[at] if len(node.args) > at else None
            if test is not None and not (isinstance(test, nodes.Const)
                                         and test.value in TESTS):
                raise _refuse(node, f"|{name} takes the name of a test, written out; the "
                                    f"tests are {', '.join(sorted(TESTS))}")

    def call(self, node: nodes.Call, bound: set[str], in_loop: bool) -> None:
        callee = node.node
        if in_loop and isinstance(callee, nodes.Getattr) and callee.attr in LOOP_CALLS \
                and isinstance(callee.node, nodes.Name) and callee.node.name == "loop":
            self.args(node, bound, in_loop, f"loop.{callee.attr}()")
            return
        if isinstance(callee, nodes.Getattr):
            instead = _METHODS.get(callee.attr, "a filter, or pass the value computed by "
                                                "the caller")
            raise _refuse(node, f"{_show(callee.node)}.{callee.attr}() calls a method; a "
                                f"template cannot call functions or methods: use {instead}")
        if isinstance(callee, nodes.Name) and callee.name == "namespace":
            raise _refuse(node, "namespace() keeps state across loop iterations, which a "
                                "template cannot; compute the value in the caller")
        instead = ("loop over a list variable" if isinstance(callee, nodes.Name)
                   and callee.name == "range" else "a filter, or pass the value computed by "
                                                   "the caller")
        raise _refuse(node, f"{_show(callee)}() calls a function; a template cannot call "
                            f"functions or methods: use {instead}")


def _show(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_show(node.node)}.{node.attr}"
    if isinstance(node, nodes.Const):
        return repr(node.value)[:20]
    return "(…)"


def _literal(node: nodes.Const) -> None:
    value = node.value
    if isinstance(value, str) and len(value) > MAX_LITERAL:
        raise _refuse(node, f"a string literal of {len(value)} characters; the limit is "
                            f"{MAX_LITERAL}: put long text in the template itself, outside "
                            "{{ }}, or pass it as a variable")
    if isinstance(value, int | float) and not isinstance(value, bool) \
            and not abs(value) <= MAX_NUMBER:
        raise _refuse(node, f"the number {value!r:.30} is out of range; the limit is "
                            f"±{MAX_NUMBER} (2**53): pass bigger numbers as variables")
