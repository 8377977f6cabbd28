"""Rendering a bundle into chat messages, in a Jinja2 sandbox.

The template runs in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` with
:class:`jinja2.StrictUndefined`: it cannot reach Python internals or mutate the values
it is given, and a variable it uses but was not given is an error, never an empty
string. Every declared variable must be given; an undeclared one is refused, so a
typo in the caller's keyword is caught instead of silently ignored.

A template is first checked against the template language
(:mod:`llmreg.bundle.language`) on its parse tree, without running any of it; only then
is it compiled, with every loop, ``~``, ``+``, filter and piece of output charged to
the render's budget (:mod:`llmreg.bundle.budget`) before it allocates.

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

from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llmreg.bundle import budget
from llmreg.bundle.budget import RenderLimits as RenderLimits
from llmreg.bundle.budget import limits as limits
from llmreg.bundle.filters import guarded_filters, guarded_tests
from llmreg.bundle.language import RESERVED, analyse, check_size
from llmreg.bundle.messages import Messages
from llmreg.errors import RenderError, TemplateSyntaxError

STEPS = RESERVED + "_steps"  # the loop guard's name in compiled templates
CONCAT = RESERVED + "_concat"  # the guarded ``~``
WRITE = RESERVED + "_write"  # the guard around every piece of output
SLICE = RESERVED + "_slice"  # the guarded ``x[a:b]`` (Jinja2 compiles slices inline)


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with a budget: ``+`` is sized, and the operators the
    language refuses are refused here too (a template reaches this environment only
    after :func:`~llmreg.bundle.language.analyse` passed it)."""

    intercepted_binops = frozenset({"*", "**", "%", "+", "-", "/", "//"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "+":
            return budget.add(left, right)
        if operator == "-":
            return budget.subtract(left, right)
        raise RenderError(f"the operator {operator} is not in the template language")

    def call(__self, __context: Context, __obj: Any, *args: Any,  # noqa: N805
             **kwargs: Any) -> Any:
        budget.current().step()  # loop.cycle and loop.changed: the only calls left
        return super().call(__context, __obj, *args, **kwargs)


@jinja2.pass_context
def _finalize(context: Context, value: Any) -> Any:
    # Taking the context stops Jinja2 from evaluating constant output at compile time;
    # every output is already a call to WRITE, which is never constant either.
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
    builtin_filters, builtin_tests = env.filters, env.tests
    # No globals (range, namespace, lipsum, ...): the language calls no function.
    env.globals = {STEPS: budget.steps, CONCAT: budget.concat, WRITE: budget.write,
                   SLICE: budget.slice_of}
    env.filters = guarded_filters(builtin_filters)
    env.tests = guarded_tests(builtin_tests)  # type: ignore[assignment,arg-type]
    return env


def _parse(source: str) -> nodes.Template:
    """Parse (never compile) and check the template against the language."""
    try:
        check_size(_env(), source)
        tree = _env().parse(source)
    except TemplateSyntaxError:
        raise
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxError(f"line {exc.lineno}: {exc.message}") from None
    except (RecursionError, MemoryError):
        raise TemplateSyntaxError("the template nests too deeply to parse; flatten its "
                                  "expressions") from None
    except ValueError as exc:  # e.g. a number literal of more than 4300 digits
        raise TemplateSyntaxError(f"the template does not parse: {exc}; numbers are at "
                                  "most 2**53, pass bigger ones as variables") from None
    return tree


def _analyse(tree: nodes.Template) -> set[str]:
    try:
        return analyse(tree)
    except RecursionError:
        raise TemplateSyntaxError("the template nests too deeply to analyse; flatten its "
                                  "expressions") from None


@lru_cache(maxsize=256)
def _compile(source: str) -> jinja2.Template:
    tree = _parse(source)
    _analyse(tree)  # only a template in the language is ever compiled
    for loop in tree.find_all(nodes.For):
        loop.iter = _guard(STEPS, [loop.iter])  # type: ignore[list-item]
    _rewrite(tree)
    try:
        return _env().from_string(tree)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxError(f"line {exc.lineno}: {exc.message}") from None
    except (RecursionError, MemoryError):
        raise TemplateSyntaxError("the template nests too deeply to compile; flatten its "
                                  "expressions") from None


def _guard(name: str, args: list[nodes.Expr]) -> nodes.Call:
    return nodes.Call(nodes.Name(name, "load"), args, [], None, None)


def _rewritten(value: Any, in_output: bool) -> Any:
    if isinstance(value, nodes.Concat):
        value = _guard(CONCAT, value.nodes)
    if isinstance(value, nodes.Getitem) and isinstance(value.arg, nodes.Slice):
        part = value.arg
        value = _guard(SLICE, [value.node, *(nodes.Const(None) if p is None else p
                                             for p in (part.start, part.stop, part.step))])
    if in_output and isinstance(value, nodes.TemplateData):
        return _guard(WRITE, [nodes.Const(value.data)])
    if in_output and isinstance(value, nodes.Expr):
        return _guard(WRITE, [value])
    return value


def _rewrite(node: nodes.Node) -> None:
    """Replace every ``a ~ b`` and ``x[a:b]`` with a call that checks the size before
    building, and wrap every piece of output (text too) in the call that charges it as
    written."""
    in_output = isinstance(node, nodes.Output)
    for field in node.fields:
        value = getattr(node, field, None)
        if isinstance(value, list):
            value[:] = [_rewritten(v, in_output and field == "nodes") for v in value]
            children = value
        else:
            value = _rewritten(value, False)
            setattr(node, field, value)
            children = [value]
        for child in children:
            if isinstance(child, nodes.Node):
                _rewrite(child)


def referenced_variables(source: str) -> set[str]:
    """Return the variables a template reads; raise
    :class:`~llmreg.errors.TemplateSyntaxError` on a syntax error or anything outside
    the template language.

    The template is analysed, never evaluated: no expression in it runs.

    Example:
        >>> sorted(referenced_variables("{{ a }} {% for x in docs %}{{ x }}{% endfor %}"))
        ['a', 'docs']
    """
    return _analyse(_parse(source))


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
    token = budget.start(limits())
    try:
        return "".join(template.generate(**variables))  # each piece charged by WRITE
    except RenderError as exc:
        raise RenderError(f"{where}: {exc}") from None
    except RecursionError:
        raise RenderError(f"{where}: the template nests values too deeply") from None
    except (TypeError, ValueError, OverflowError, ArithmeticError, LookupError,
            AssertionError, MemoryError) as exc:  # AssertionError: truncate's own check
        raise RenderError(f"{where}: {type(exc).__name__}: {exc}") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{where}: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(f"{where}: the sandbox refused an unsafe operation: {exc}") from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"{where}: {exc}") from None
    except Exception as exc:  # a filter given a value it cannot take: still one line
        raise RenderError(f"{where}: {type(exc).__name__}: {exc}") from None
    finally:
        budget.finish(token)
