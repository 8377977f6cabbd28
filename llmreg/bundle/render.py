"""Rendering a bundle into chat messages, in a Jinja2 sandbox.

The template runs in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` with
:class:`jinja2.StrictUndefined`: it cannot reach Python internals or mutate the values
it is given, and a variable it uses but was not given is an error, never an empty
string. Every declared variable must be given; an undeclared one is refused, so a
typo in the caller's keyword is caught instead of silently ignored.

Example:
    >>> from llmreg.bundle.schema import Bundle
    >>> b = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
    ...     "system_prompt": "You sort mail.",
    ...     "template": {"source": "Mail: {{ body }}", "variables": ["body"]},
    ...     "few_shot": [{"input": {"body": "WIN $$$"}, "output": "spam"}]})
    >>> [m["role"] for m in b.render(body="Lunch?").to_openai()]
    ['system', 'user', 'assistant', 'user']
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llmreg.bundle.messages import Messages
from llmreg.errors import ConfigError, RenderError, TemplateSyntaxError


@dataclass(frozen=True)
class RenderLimits:
    """What one render may cost: characters out, steps (loop iterations and calls),
    seconds. A template over any of them fails with :class:`RenderError`.

    Example:
        >>> RenderLimits().max_chars
        1000000
    """

    max_chars: int = 1_000_000  # LLMREG_RENDER_MAX_CHARS
    max_steps: int = 100_000  # LLMREG_RENDER_MAX_STEPS
    timeout: float = 2.0  # LLMREG_RENDER_TIMEOUT, seconds

    @classmethod
    def from_env(cls) -> RenderLimits:
        """The limits, with ``LLMREG_RENDER_*`` overrides."""
        out: dict[str, Any] = {}
        for field, var, kind in (("max_chars", "LLMREG_RENDER_MAX_CHARS", int),
                                 ("max_steps", "LLMREG_RENDER_MAX_STEPS", int),
                                 ("timeout", "LLMREG_RENDER_TIMEOUT", float)):
            raw = os.environ.get(var)
            if raw:
                try:
                    out[field] = kind(raw)
                    if out[field] <= 0:
                        raise ValueError
                except ValueError:
                    raise ConfigError(f"{var}={raw!r} must be a positive number") from None
        return cls(**out)


@lru_cache(maxsize=1)
def limits() -> RenderLimits:
    """The limits this process renders with (read from the environment once)."""
    return RenderLimits.from_env()


STEPS = "__llmreg_steps"  # the loop guard's name in compiled templates
CONCAT = "__llmreg_concat"  # the guarded ``~``
_budget: ContextVar[_Budget] = ContextVar("llmreg_render_budget")
# A width or precision inside a %-style or {}-style format spec.
_FORMAT_WIDTHS = re.compile(r"%[#0 +-]*(\d+)(?:\.(\d+))?|\{[^{}]*:[^{}]*?(\d+)(?:\.(\d+))?")


class _Budget:
    """What is left of one render's steps and time."""

    def __init__(self, lim: RenderLimits) -> None:
        self.limits = lim
        self.steps = 0
        self.deadline = time.monotonic() + lim.timeout

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise RenderError(f"the template took more than {self.limits.max_steps} steps "
                              "(loop iterations and calls); LLMREG_RENDER_MAX_STEPS raises it")
        if self.steps % 64 == 0 and time.monotonic() > self.deadline:
            raise RenderError(f"the template ran for more than {self.limits.timeout:g}s; "
                              "LLMREG_RENDER_TIMEOUT raises it")

    def size(self, n: int, what: str) -> None:
        if n > self.limits.max_chars:
            raise RenderError(f"{what} would be {n} characters; the limit is "
                              f"{self.limits.max_chars} (LLMREG_RENDER_MAX_CHARS)")


def _budget_now() -> _Budget:
    try:
        return _budget.get()
    except LookupError:  # a template run outside _run: each check gets a fresh budget,
        return _Budget(limits())  # and none is left behind in the caller's context


def _check_args(args: Iterable[Any], what: str) -> None:
    """Refuse any number, or width in a format string, bigger than the output may be."""
    budget = _budget_now()
    for arg in args:
        if isinstance(arg, bool):
            continue
        if isinstance(arg, int | float) and abs(arg) > budget.limits.max_chars:
            budget.size(int(min(abs(arg), 10**18)), f"{what} with {arg!r}")
        elif isinstance(arg, tuple | list):
            _check_args(arg, what)


def _check_format(fmt: str, what: str) -> None:
    for match in _FORMAT_WIDTHS.finditer(fmt):
        _check_args([int(g) for g in match.groups() if g], what)


def _len(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with a budget: every call, loop iteration and amplifying
    operator is counted and checked before it allocates."""

    intercepted_binops = frozenset({"*", "**", "%", "+", "//"})

    def call(__self, __context: Context, __obj: Any, *args: Any,  # noqa: N805
             **kwargs: Any) -> Any:
        _budget_now().step()
        if __obj is not _steps:
            _check_args([*args, *kwargs.values()], f"calling {getattr(__obj, '__name__', 'it')}")
            if getattr(__obj, "__name__", "") == "replace" and len(args) >= 2:
                _check_replace(getattr(__obj, "__self__", ""), args[0], args[1])
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            _check_format(obj, "str.format")
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _budget_now()
        budget.step()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if _len(seq) and isinstance(n, int):
                    budget.size(_len(seq) * max(n, 0), "repeating a value")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) \
                and abs(left) > 1 and right > 64:
            # About 0.3 decimal digits per bit; a float power overflows on its own.
            budget.size(right * left.bit_length() * 3 // 10, "a power's digits")
        elif operator == "%" and isinstance(left, str):
            _check_format(left, "%-formatting")
            _check_args(right if isinstance(right, tuple) else [right], "%-formatting")
        elif operator == "+" and _len(left) and _len(right):
            budget.size(_len(left) + _len(right), "joining two values")
        return super().call_binop(context, operator, left, right)


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        grows = (text.count(old) if old else len(text) + 1) * max(len(new) - len(old), 0)
        _budget_now().size(len(text) + grows, "replace()")


def _bounded_filter(fn: Any) -> Any:
    """A built-in filter whose parameters (not the value) are checked first."""

    name = fn.__name__.removeprefix("do_")

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _budget_now().step()
        offset = 1 + (1 if getattr(fn, "jinja_pass_arg", None) is not None else 0)
        _check_args([*args[offset:], *kwargs.values()], f"the {name} filter")
        if fn.__name__ in ("do_format", "format") and len(args) >= offset:
            _check_format(str(args[offset - 1]), "the format filter")
        if fn.__name__ == "do_replace" and len(args) >= offset + 2:
            _check_replace(str(args[offset - 1]), args[offset], args[offset + 1])
        if fn.__name__ == "do_join" and len(args) > offset - 1:
            items, sep = args[offset - 1], (args[offset] if len(args) > offset
                                             else kwargs.get("d", ""))
            if isinstance(sep, str) and hasattr(items, "__len__"):
                _budget_now().size(len(sep) * len(items), "the join filter's separators")
        return fn(*args, **kwargs)

    return guarded


def _concat(*parts: Any) -> str:
    """The guard around ``~``: the joined length is checked before it is built."""
    texts = [str(p) for p in parts]
    _budget_now().size(sum(map(len, texts)), "joining with ~")
    return "".join(texts)


def _steps(iterable: Iterable[Any]) -> Iterator[Any]:
    """The guard around every ``for`` loop: each iteration is a step."""
    budget = _budget_now()
    for item in iterable:
        budget.step()
        yield item


@jinja2.pass_context
def _finalize(context: Context, value: Any) -> Any:
    # Taking the context also stops Jinja2 from evaluating constant output at compile
    # time (``{{ 'x' * 10**10 }}`` would otherwise be built while compiling).
    _budget_now().size(_len(value) if isinstance(value, str) else 0, "one output")
    return value


@lru_cache(maxsize=1)
def _env() -> _BoundedEnvironment:
    env = _BoundedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # prompts are not HTML
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    env.optimized = False  # no constant folding: nothing in a template runs at compile time
    env.globals.pop("lipsum", None)  # lorem ipsum has no place in a prompt
    env.globals[STEPS] = _steps
    env.globals[CONCAT] = _concat
    env.filters = {name: _bounded_filter(fn) for name, fn in env.filters.items()}
    return env


def _parse(source: str) -> nodes.Template:
    try:
        tree = _env().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxError(f"line {exc.lineno}: {exc.message}") from None
    except (RecursionError, MemoryError):
        raise TemplateSyntaxError("the template nests too deeply to parse; flatten its "
                                  "expressions") from None
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        raise TemplateSyntaxError(
            f"line {node.lineno}: a bundle's template is one file; it cannot include, "
            "import or extend another (inline it, or use a macro)")
    return tree


@lru_cache(maxsize=256)
def _compile(source: str) -> jinja2.Template:
    tree = _parse(source)
    for name in tree.find_all(nodes.Name):
        if name.name in (STEPS, CONCAT):
            raise TemplateSyntaxError(f"the name {name.name} is reserved; rename that variable")
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Call(nodes.Name(STEPS, "load"), [loop.iter], [], None, None)
    _guard_concat(tree)
    try:
        return _env().from_string(tree)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxError(f"line {exc.lineno}: {exc.message}") from None
    except (RecursionError, MemoryError):
        raise TemplateSyntaxError("the template nests too deeply to compile; flatten its "
                                  "expressions") from None


def _guard_concat(node: nodes.Node) -> None:
    """Replace every ``a ~ b`` with a call that checks the length before joining."""
    for field in node.fields:
        value = getattr(node, field, None)
        if isinstance(value, nodes.Concat):
            setattr(node, field, nodes.Call(nodes.Name(CONCAT, "load"), value.nodes, [],
                                            None, None))
        elif isinstance(value, list):
            value[:] = [nodes.Call(nodes.Name(CONCAT, "load"), v.nodes, [], None, None)
                        if isinstance(v, nodes.Concat) else v for v in value]
        if isinstance(value, nodes.Node):
            _guard_concat(getattr(node, field))
        elif isinstance(value, list):
            for child in value:
                if isinstance(child, nodes.Node):
                    _guard_concat(child)


def referenced_variables(source: str) -> set[str]:
    """Return the variables a template reads; raise on a syntax error.

    The template is analysed, never evaluated: no expression in it runs.

    Example:
        >>> sorted(referenced_variables("{{ a }} {% for x in docs %}{{ x }}{% endfor %}"))
        ['a', 'docs']
    """
    tree = _parse(source)
    try:
        return set(meta.find_undeclared_variables(tree))  # unknown filters surface here
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxError(f"line {exc.lineno}: {exc.message}") from None
    except (RecursionError, MemoryError):
        raise TemplateSyntaxError("the template nests too deeply to analyse; flatten its "
                                  "expressions") from None


def render_manifest(manifest: dict[str, Any], variables: dict[str, Any]) -> Messages:
    """Render a canonical manifest (a dict, defaults omitted) with ``variables``.

    The one renderer behind :meth:`Bundle.render` and :meth:`ResolvedBundle.render`, so
    a bundle renders identically whether it was validated into a model or not.
    """
    if manifest.get("kind") == "weights" or "template" not in manifest:
        raise RenderError("this is a weights bundle: it has no prompt to render")
    template = manifest["template"]
    declared = list(template.get("variables", []))
    undeclared = sorted(set(variables) - set(declared))
    if undeclared:
        raise RenderError(
            f"undeclared variable(s) {', '.join(undeclared)}; the template declares "
            f"{', '.join(declared) or 'none'}"
        )
    missing = [v for v in declared if v not in variables]
    if missing:
        raise RenderError(
            f"missing variable(s) {', '.join(missing)}; pass them to render(), e.g. "
            f"render({missing[0]}=...) or --var {missing[0]}=..."
        )
    compiled = _compile(template["source"])
    turns: list[dict[str, str]] = []
    for i, example in enumerate(manifest.get("few_shot", [])):
        given = example["input"]
        user = _run(compiled, given, f"few_shot[{i}]") if isinstance(given, dict) else given
        turns += [{"role": "user", "content": user},
                  {"role": "assistant", "content": example["output"]}]
    turns.append({"role": "user", "content": _run(compiled, variables, "template")})
    model = manifest["model"]
    params = {k: v for k, v in model.get("parameters", {}).items() if v is not None}
    if manifest.get("response_schema") is not None:
        params["response_schema"] = manifest["response_schema"]
    return Messages(manifest.get("system_prompt", ""), turns, model["id"], params,
                    list(manifest.get("tools", [])))


def _run(template: jinja2.Template, variables: dict[str, Any], where: str) -> str:
    budget = _Budget(limits())
    token = _budget.set(budget)
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(**variables):
            size += len(chunk)
            budget.size(size, f"{where}'s output")
            out.append(chunk)
        return "".join(out)
    except RenderError as exc:
        raise RenderError(f"{where}: {exc}") from None
    except RecursionError:
        raise RenderError(f"{where}: the template recursed too deeply (a macro calling "
                          "itself?)") from None
    except (TypeError, ValueError, OverflowError, ArithmeticError, LookupError,
            MemoryError) as exc:
        raise RenderError(f"{where}: {type(exc).__name__}: {exc}") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{where}: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(f"{where}: the sandbox refused an unsafe operation: {exc}") from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"{where}: {exc}") from None
    finally:
        _budget.reset(token)
