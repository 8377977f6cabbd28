"""Rendered chat messages and their shapes for the common chat APIs.

Kept apart from :mod:`llmreg.bundle.render` so that importing llmreg does not import Jinja2.

Example:
    >>> m = Messages("Be brief.", [{"role": "user", "content": "Hi"}], "gpt-4o-2024-08-06")
    >>> m.to_openai()[0]
    {'role': 'system', 'content': 'Be brief.'}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Messages:
    """Rendered chat messages, convertible to the common chat APIs' shapes."""

    system: str
    turns: list[dict[str, str]] = field(default_factory=list)
    model: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] = field(default_factory=list)

    def to_openai(self) -> list[dict[str, str]]:
        """Messages for the OpenAI Chat Completions API (system first, if any)."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [dict(t) for t in self.turns]

    def to_anthropic(self) -> dict[str, Any]:
        """``{"system": ..., "messages": [...]}`` for the Anthropic Messages API."""
        return {"system": self.system, "messages": [dict(t) for t in self.turns]}

    def openai_request(self) -> dict[str, Any]:
        """Keyword arguments for ``client.chat.completions.create(**...)`` (the ``openai``
        SDK 2.x and 3.x; the same JSON body over HTTP). See docs/providers.md.

        Tools become ``{"type": "function", "function": {...}}``; a reasoning model
        (o1, o3, o4, gpt-5 …) gets ``max_completion_tokens`` instead of ``max_tokens``.

        Example:
            >>> Messages("", [{"role": "user", "content": "hi"}], "gpt-4o-2024-08-06",
            ...          {"temperature": 0.2}).openai_request()["temperature"]
            0.2
            >>> Messages("", [], "o3-2025-04-16", {"max_tokens": 9}).openai_request()
            {'model': 'o3-2025-04-16', 'messages': [], 'max_completion_tokens': 9}
        """
        params = dict(self.parameters)
        fmt = params.pop("response_format", None)
        schema = params.pop("response_schema", None)
        if fmt == "json_schema":
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": schema, "strict": True},
            }
        elif fmt:
            params["response_format"] = {"type": fmt}
        if "max_tokens" in params and is_reasoning_model(self.model):
            params["max_completion_tokens"] = params.pop("max_tokens")
        if self.tools:
            params["tools"] = [
                {"type": "function", "function": {
                    "name": t["name"], "description": t.get("description", ""),
                    "parameters": t.get("parameters", {"type": "object", "properties": {}})}}
                for t in self.tools]
        return _traced("openai", {"model": self.model, "messages": self.to_openai(), **params})

    def anthropic_request(self) -> dict[str, Any]:
        """Keyword arguments for ``client.messages.create(**...)`` (the ``anthropic`` SDK
        1.x and 2.x). See docs/providers.md.

        ``temperature``, ``top_p`` and ``top_k`` go in ``extra_body``: the 2.x SDK has no
        keyword for them, and both majors send ``extra_body`` as part of the JSON body.
        Tools become ``{"name", "description", "input_schema"}``. Fields Anthropic has no
        equivalent for are refused when the bundle is registered, never dropped here.

        Example:
            >>> Messages("Be brief.", [{"role": "user", "content": "hi"}],
            ...          "claude-sonnet-4-5-20250929",
            ...          {"max_tokens": 50, "temperature": 0.2, "stop": ["END"]}
            ...          ).anthropic_request()  # doctest: +NORMALIZE_WHITESPACE
            {'model': 'claude-sonnet-4-5-20250929', 'system': 'Be brief.',
             'messages': [{'role': 'user', 'content': 'hi'}], 'max_tokens': 50,
             'stop_sequences': ['END'], 'extra_body': {'temperature': 0.2}}
        """
        params = dict(self.parameters)
        params.pop("response_schema", None)  # used by postprocess; refused as a request field
        sampling = {k: params.pop(k) for k in ("temperature", "top_p", "top_k") if k in params}
        if "stop" in params:
            params["stop_sequences"] = params.pop("stop")
        if self.tools:
            params["tools"] = [
                {"name": t["name"], "description": t.get("description", ""),
                 "input_schema": t.get("parameters", {"type": "object", "properties": {}})}
                for t in self.tools]
        body = self.to_anthropic()
        if not body["system"]:
            del body["system"]
        request = {"model": self.model, **body, **params}
        if sampling:
            request["extra_body"] = sampling
        return _traced("anthropic", request)


REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def is_reasoning_model(model_id: str) -> bool:
    """Whether an OpenAI model id is a reasoning model (``max_completion_tokens``, no
    sampling parameters).

    Example:
        >>> is_reasoning_model("o4-mini-2025-04-16"), is_reasoning_model("gpt-4o-2024-08-06")
        (True, False)
    """
    base = model_id.removeprefix("ft:")
    return any(base == p or base.startswith(p + "-") for p in REASONING_PREFIXES)


def _traced(system: str, request: dict[str, Any]) -> dict[str, Any]:
    """The OpenTelemetry hook: GenAI attributes on the current span, if the app traces."""
    from llmreg.bundle.tracing import record_request

    return record_request(system, request)
