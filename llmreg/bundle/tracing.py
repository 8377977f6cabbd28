"""OpenTelemetry attributes on the application's current span, at no cost without it.

When the application traces with OpenTelemetry, a resolve records which bundle it got
on the span that is current at that moment, and a request built by
:meth:`~llmreg.bundle.messages.Messages.openai_request` or
:meth:`~llmreg.bundle.messages.Messages.anthropic_request` records the GenAI semantic-convention
attributes of that call. A trace then ties each LLM call to the exact bundle digest that
produced it.

llmreg never imports ``opentelemetry`` itself: it looks for ``opentelemetry.trace`` among
the modules the application has already imported. An application that does not trace
pays one dictionary lookup; one that does not even install ``opentelemetry-api`` pays
the same.

Attributes of a resolve: ``llmreg.bundle.name``, ``llmreg.bundle.version``,
``llmreg.bundle.digest``, ``llmreg.bundle.env``, ``llmreg.cache.served`` (bool) and,
when served from the local cache, ``llmreg.cache.stale_seconds``.

Example:
    >>> class Resolved:  # what Client.resolve returns, reduced to what is recorded
    ...     name, version, env, digest = "chat", 3, "production", "sha256:" + "0" * 64
    ...     served_from_cache, stale_seconds = False, None
    >>> sorted(bundle_attributes(Resolved()))[:2]
    ['llmreg.bundle.digest', 'llmreg.bundle.env']
    >>> record_resolve(Resolved())  # no tracing in this process: nothing happens
"""

from __future__ import annotations

import sys
from typing import Any

GENAI_PARAMETERS = {"temperature": "temperature", "max_tokens": "max_tokens",
                    "top_p": "top_p", "top_k": "top_k", "seed": "seed",
                    "presence_penalty": "presence_penalty",
                    "frequency_penalty": "frequency_penalty", "stop": "stop_sequences",
                    "stop_sequences": "stop_sequences"}


def current_span() -> Any:
    """The application's recording span, or None (no OpenTelemetry imported, no span).

    Example:
        >>> current_span() is None or current_span().is_recording()
        True
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    span = trace.get_current_span()
    return span if span.is_recording() else None


def bundle_attributes(resolved: Any) -> dict[str, Any]:
    """The ``llmreg.*`` attributes of a resolved bundle (None values left out).

    Example:
        >>> class R:
        ...     name, version, env, digest = "chat", 3, None, "sha256:" + "0" * 64
        ...     served_from_cache, stale_seconds = True, 42.0
        >>> bundle_attributes(R())["llmreg.cache.stale_seconds"]
        42.0
    """
    attrs = {"llmreg.bundle.name": resolved.name, "llmreg.bundle.version": resolved.version,
             "llmreg.bundle.digest": resolved.digest, "llmreg.bundle.env": resolved.env,
             "llmreg.cache.served": bool(resolved.served_from_cache),
             "llmreg.cache.stale_seconds": resolved.stale_seconds}
    return {k: v for k, v in attrs.items() if v is not None}


def record_resolve(resolved: Any) -> None:
    """Put the bundle's attributes on the current span, if the application traces.

    Example:
        >>> record_resolve(object())  # no span: not even looked at
    """
    span = current_span()
    if span is not None:
        span.set_attributes(bundle_attributes(resolved))


def genai_attributes(system: str, request: dict[str, Any]) -> dict[str, Any]:
    """GenAI semantic-convention attributes of a chat request's keyword arguments.

    Example:
        >>> genai_attributes("openai", {"model": "gpt-4o-2024-08-06", "temperature": 0.2,
        ...                             "messages": []})
        ... # doctest: +NORMALIZE_WHITESPACE
        {'gen_ai.system': 'openai', 'gen_ai.operation.name': 'chat',
         'gen_ai.request.model': 'gpt-4o-2024-08-06', 'gen_ai.request.temperature': 0.2}
    """
    attrs: dict[str, Any] = {"gen_ai.system": system, "gen_ai.operation.name": "chat",
                             "gen_ai.request.model": request.get("model")}
    for key, name in GENAI_PARAMETERS.items():
        value = request.get(key)
        if value is not None:
            attrs[f"gen_ai.request.{name}"] = list(value) if isinstance(value, list) else value
    return {k: v for k, v in attrs.items() if v is not None}


def record_request(system: str, request: dict[str, Any]) -> dict[str, Any]:
    """Put a chat request's GenAI attributes on the current span (if the application
    traces); return ``request`` unchanged.

    Example:
        >>> record_request("anthropic", {"model": "claude-sonnet-4-5-20250929"})["model"]
        'claude-sonnet-4-5-20250929'
    """
    span = current_span()
    if span is not None:
        span.set_attributes(genai_attributes(system, request))
    return request
