"""Rendering a bundle into chat messages, in a Jinja2 sandbox.

The template runs in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` with
:class:`jinja2.StrictUndefined`: it cannot reach Python internals or mutate the values
it is given, and a variable it uses but was not given is an error, never an empty
string. Every declared variable must be given; an undeclared one is refused, so a
typo in the caller's keyword is caught instead of silently ignored.

Example:
    >>> from llmreg.bundle import Bundle
    >>> b = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
    ...     "system_prompt": "You sort mail.",
    ...     "template": {"source": "Mail: {{ body }}", "variables": ["body"]},
    ...     "few_shot": [{"input": {"body": "WIN $$$"}, "output": "spam"}]})
    >>> [m["role"] for m in b.render(body="Lunch?").to_openai()]
    ['system', 'user', 'assistant', 'user']
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llmreg.errors import RenderError, TemplateSyntaxError
from llmreg.messages import Messages

if TYPE_CHECKING:
    from llmreg.bundle import Bundle


@lru_cache(maxsize=1)
def _env() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # prompts are not HTML
        keep_trailing_newline=True,
    )


@lru_cache(maxsize=256)
def _compile(source: str) -> jinja2.Template:
    try:
        return _env().from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxError(f"line {exc.lineno}: {exc.message}") from None


def referenced_variables(source: str) -> set[str]:
    """Return the variables a template reads; raise on a syntax error.

    Example:
        >>> sorted(referenced_variables("{{ a }} {% for x in docs %}{{ x }}{% endfor %}"))
        ['a', 'docs']
    """
    try:
        ast = _env().parse(source)
        return set(meta.find_undeclared_variables(ast))  # unknown filters surface here
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxError(f"line {exc.lineno}: {exc.message}") from None


def render_bundle(bundle: Bundle, variables: dict[str, Any]) -> Messages:
    """Render ``bundle`` with ``variables``; see :meth:`llmreg.Bundle.render`."""
    return render_manifest(bundle.canonical_dict(), variables)


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
    return Messages(manifest.get("system_prompt", ""), turns, model["id"], params)


def _run(template: jinja2.Template, variables: dict[str, Any], where: str) -> str:
    try:
        return template.render(**variables)
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{where}: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(f"{where}: the sandbox refused an unsafe operation: {exc}") from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"{where}: {exc}") from None
