"""Rendered chat messages and their shapes for the common chat APIs.

Kept apart from :mod:`llmreg.render` so that importing llmreg does not import Jinja2.

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

    def to_openai(self) -> list[dict[str, str]]:
        """Messages for the OpenAI Chat Completions API (system first, if any)."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [dict(t) for t in self.turns]

    def to_anthropic(self) -> dict[str, Any]:
        """``{"system": ..., "messages": [...]}`` for the Anthropic Messages API."""
        return {"system": self.system, "messages": [dict(t) for t in self.turns]}

    def openai_request(self) -> dict[str, Any]:
        """Keyword arguments for ``client.chat.completions.create(**...)``.

        Example:
            >>> Messages("", [{"role": "user", "content": "hi"}], "gpt-4o-2024-08-06",
            ...          {"temperature": 0.2}).openai_request()["temperature"]
            0.2
        """
        params = dict(self.parameters)
        params.pop("top_k", None)  # not an OpenAI parameter
        fmt = params.pop("response_format", None)
        schema = params.pop("response_schema", None)
        if fmt == "json_schema":
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": schema, "strict": True},
            }
        elif fmt:
            params["response_format"] = {"type": fmt}
        return _traced("openai", {"model": self.model, "messages": self.to_openai(), **params})

    def anthropic_request(self) -> dict[str, Any]:
        """Keyword arguments for ``client.messages.create(**...)``."""
        params = dict(self.parameters)
        for key in ("seed", "presence_penalty", "frequency_penalty", "response_format",
                    "response_schema"):
            params.pop(key, None)
        if "stop" in params:
            params["stop_sequences"] = params.pop("stop")
        body = self.to_anthropic()
        if not body["system"]:
            del body["system"]
        return _traced("anthropic", {"model": self.model, **body, **params})


def _traced(system: str, request: dict[str, Any]) -> dict[str, Any]:
    """The OpenTelemetry hook: GenAI attributes on the current span, if the app traces."""
    from llmreg.tracing import record_request

    return record_request(system, request)
