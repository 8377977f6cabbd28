"""The filters and tests a bundle's template may use, each with its cost bounded.

The names here are the language's whole vocabulary beyond variables and operators
(:mod:`llmreg.bundle.language` refuses any other at registration). Each filter is
Jinja2's own, wrapped: it is a step of the render's :class:`~llmreg.bundle.budget.Budget`;
numbers given to it are at most ``max_chars``; a value it must turn into text is sized
first; a filter that can grow its input (``replace``, ``indent``, ``join``,
``escape``, ``tojson``) has its result's size computed before it runs; and the string
or list it returns is charged as built.

Example:
    >>> import jinja2
    >>> fs = guarded_filters(jinja2.Environment().filters)
    >>> fs["upper"]("abc")
    'ABC'
    >>> sorted(fs) == sorted(FILTERS)
    True
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from llmreg.bundle.budget import MAX_JSON_INDENT, MAX_ROUND_DIGITS, Budget, current
from llmreg.errors import RenderError

# The filters a template may use, and why each is safe: its result is no bigger than its
# input (or is sized before it is built, marked *).
FILTERS: dict[str, str] = {
    "abs": "a number", "capitalize": "same length", "count": "a number",
    "d": "one of its arguments", "default": "one of its arguments",
    "dictsort": "the same items", "e": "* exact growth counted first",
    "escape": "* exact growth counted first", "first": "one item", "float": "a number",
    "indent": "* lines × width counted first", "int": "a number", "items": "the same items",
    "join": "* items and separators counted first", "last": "one item", "length": "a number",
    "list": "the same items", "lower": "same length", "map": "one attribute per item",
    "max": "one item", "min": "one item", "reject": "fewer items",
    "rejectattr": "fewer items", "replace": "* exact growth counted first",
    "reverse": "the same items", "round": "a number (precision at most 15 digits)",
    "select": "fewer items", "selectattr": "fewer items", "sort": "the same items",
    "string": "* sized first", "title": "same length", "tojson": "* sized first",
    "trim": "shorter", "truncate": "shorter", "unique": "fewer items", "upper": "same length",
}
# Tests only answer true or false; the arithmetic ones take numbers only (``'%s' is odd``
# would be %-formatting).
TESTS = frozenset({
    "defined", "undefined", "none", "boolean", "false", "true", "integer", "float",
    "number", "string", "mapping", "iterable", "sequence", "even", "odd", "divisibleby",
    "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt",
    "greaterthan", ">", "ge", ">=", "in", "sameas",
})
ARITHMETIC_TESTS = frozenset({"even", "odd", "divisibleby"})
# Filters whose input is text: anything else is sized before it becomes text.
_TEXT_IN = frozenset({"capitalize", "e", "escape", "indent", "lower", "replace", "string",
                      "title", "trim", "truncate", "upper"})
# Filters that walk through every item of their input.
_WALKS = frozenset({"dictsort", "items", "join", "list", "map", "max", "min", "reject",
                    "rejectattr", "reverse", "select", "selectattr", "sort", "unique"})
_ESCAPE_GROWTH = {"&": 4, "<": 3, ">": 3, '"': 4, "'": 4}  # '&' becomes '&amp;', ...


def guarded_filters(builtin: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Jinja2's filters named in :data:`FILTERS`, each wrapped in its guard.

    Example:
        >>> import jinja2
        >>> "center" in guarded_filters(jinja2.Environment().filters)
        False
    """
    return {name: _guard(name, builtin[name]) for name in FILTERS}


def guarded_tests(builtin: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Jinja2's tests named in :data:`TESTS`; the arithmetic ones refuse non-numbers.

    Example:
        >>> import jinja2
        >>> tests = guarded_tests(jinja2.Environment().tests)
        >>> tests["odd"](3)
        True
        >>> tests["odd"]("%999999999s")
        Traceback (most recent call last):
        ...
        llmreg.errors.RenderError: the test 'odd' takes a number, not a str
    """
    out = dict((name, builtin[name]) for name in TESTS)
    for name in ARITHMETIC_TESTS:
        out[name] = _numbers_only(name, builtin[name])
    return out


def _numbers_only(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def test(value: Any, *args: Any) -> Any:
        for x in (value, *args):
            if isinstance(x, bool) or not isinstance(x, int | float):
                raise RenderError(f"the test {name!r} takes a number, not a "
                                  f"{type(x).__name__}")
        return fn(value, *args)

    return test


def _guard(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    offset = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        value, params = args[offset], [*args[offset + 1:], *kwargs.values()]
        what = f"the {name} filter"
        for p in params:
            if isinstance(p, int | float) and not isinstance(p, bool) \
                    and abs(p) > budget.limits.max_chars:
                budget.size(int(min(abs(p), 10**18)), f"{what} with {p!r}")
            elif not isinstance(p, str | int | float | type(None)):
                budget.weigh(p, f"an argument of {what}")
        if name in _WALKS and hasattr(value, "__len__"):
            budget.step(len(value))  # each item it walks through is a step
        if name in _TEXT_IN and not isinstance(value, str):
            budget.weigh(value, f"the value given to {what}")
            # As text: some of Jinja2's text filters would otherwise work on the value
            # itself (indent's ``s += newline`` extends a caller's list in place).
            value = str(value)
            args = (*args[:offset], value, *args[offset + 1:])
        if name == "join" and not isinstance(value, list | tuple):
            value = list(value)  # a generator (select, map) can be read only once
            args = (*args[:offset], value, *args[offset + 1:])
        _BEFORE.get(name, _nothing)(budget, value, args[offset + 1:], kwargs)
        result = fn(*args, **kwargs)
        if isinstance(result, str | list):
            budget.build(len(result), what)
        return result

    return guarded


def _nothing(budget: Budget, value: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    return None


def _arg(args: tuple[Any, ...], kw: dict[str, Any], i: int, key: str, default: Any) -> Any:
    return args[i] if len(args) > i else kw.get(key, default)


def _replace(budget: Budget, value: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    text, old, new = str(value), str(_arg(args, kw, 0, "old", "")), \
        str(_arg(args, kw, 1, "new", ""))
    count = _arg(args, kw, 2, "count", None)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    budget.size(len(text) + hits * max(len(new) - len(old), 0), "the replace filter")


def _indent(budget: Budget, value: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    width = _arg(args, kw, 0, "width", 4)
    per_line = len(str(width)) if isinstance(width, str) else max(int(width), 0)
    text = str(value)
    budget.size(len(text) + (text.count("\n") + 1) * per_line, "the indent filter")


def _join(budget: Budget, value: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    sep = str(_arg(args, kw, 0, "d", ""))
    n = len(sep) * max(len(value) - 1, 0)
    for i, item in enumerate(value):
        n += len(item) if isinstance(item, str) else budget.weigh(item, "an item to join")
        if n > budget.limits.max_chars or i % 1024 == 1023:
            budget.size(n, "the join filter")
            budget.tick()
    budget.size(n, "the join filter")


def _escape(budget: Budget, value: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    text = str(value)
    grows = sum(text.count(c) * n for c, n in _ESCAPE_GROWTH.items())
    budget.size(len(text) + grows, "the escape filter")


def _tojson(budget: Budget, value: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    indent = _arg(args, kw, 0, "indent", None)
    if indent is not None and (not isinstance(indent, int) or isinstance(indent, bool)
                               or not 0 <= indent <= MAX_JSON_INDENT):
        raise RenderError(f"the tojson filter's indent is {indent!r}; give a whole number "
                          f"from 0 to {MAX_JSON_INDENT}, or none")
    budget.weigh(value, "the tojson filter", indent or 0)


def _round(budget: Budget, value: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    precision = _arg(args, kw, 0, "precision", 0)
    method = _arg(args, kw, 1, "method", "common")
    if not isinstance(precision, int) or abs(precision) > MAX_ROUND_DIGITS:
        raise RenderError(f"the round filter's precision is {precision!r}; give a whole "
                          f"number from -{MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}")
    if method not in ("common", "ceil", "floor"):
        raise RenderError(f"the round filter's method is {method!r}; use 'common', 'ceil' "
                          "or 'floor'")


def _string(budget: Budget, value: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    budget.weigh(value, "the string filter")


_BEFORE: dict[str, Callable[[Budget, Any, tuple[Any, ...], dict[str, Any]], None]] = {
    "replace": _replace, "indent": _indent, "join": _join, "e": _escape, "escape": _escape,
    "tojson": _tojson, "round": _round, "string": _string,
}
