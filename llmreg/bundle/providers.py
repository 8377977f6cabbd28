"""What each provider's request accepts: every bundle field maps to a request field of
the bundle's provider, or the bundle is refused at registration (never dropped).

The mapping itself is in :mod:`llmreg.bundle.messages` (``openai_request``,
``anthropic_request``); docs/providers.md has the table. Checked here, for the providers
whose request shapes llmreg builds:

- ``anthropic``: ``max_tokens`` is required; ``temperature`` is 0–1; ``seed``, the
  penalties and ``response_format`` have no Anthropic field. (A ``response_schema``
  stays the bundle's contract for postprocessing; it is not a request field there.)
- ``openai`` / ``azure-openai``: ``top_k`` has no OpenAI field; at most 4 ``stop``
  sequences; reasoning models (o1, o3, o4, gpt-5 …) take no sampling parameters
  (their ``max_tokens`` is sent as ``max_completion_tokens``).

Example:
    >>> for problem in provider_problems({"model": {"provider": "anthropic",
    ...         "id": "claude-sonnet-4-5-20250929", "parameters": {"temperature": 1.5}}}):
    ...     print(problem)
    model.parameters.max_tokens: anthropic requires it (the Messages API has no default); \
add max_tokens, e.g. 1024
    model.parameters.temperature: 1.5 is outside anthropic's range 0 to 1; use a value in it
"""

from __future__ import annotations

from typing import Any

from llmreg.bundle.messages import is_reasoning_model

OPENAI_MAX_STOP = 4
ANTHROPIC_MAX_TEMPERATURE = 1.0


def provider_problems(manifest: dict[str, Any]) -> list[str]:
    """Every field of ``manifest`` (a bundle dict) its provider's request cannot carry,
    each as ``field: problem; fix``. Empty when the bundle maps completely."""
    model = manifest.get("model") or {}
    provider = model.get("provider")
    params = {k: v for k, v in (model.get("parameters") or {}).items() if v is not None}
    where = "model.parameters"
    problems: list[str] = []
    if provider == "anthropic":
        if "max_tokens" not in params:
            problems.append(f"{where}.max_tokens: anthropic requires it (the Messages API "
                            "has no default); add max_tokens, e.g. 1024")
        temperature = params.get("temperature")
        if temperature is not None and temperature > ANTHROPIC_MAX_TEMPERATURE:
            problems.append(f"{where}.temperature: {temperature} is outside anthropic's "
                            "range 0 to 1; use a value in it")
        for key in ("seed", "presence_penalty", "frequency_penalty", "response_format"):
            if key in params:
                problems.append(f"{where}.{key}: anthropic has no such request field; "
                                "remove it")
    elif provider in ("openai", "azure-openai"):
        if "top_k" in params:
            problems.append(f"{where}.top_k: {provider} has no such request field; remove "
                            "it (top_p is the nearest)")
        stop = params.get("stop") or []
        if len(stop) > OPENAI_MAX_STOP:
            problems.append(f"{where}.stop: {len(stop)} sequences; {provider} takes at most "
                            f"{OPENAI_MAX_STOP}")
        model_id = str(model.get("id", ""))
        if is_reasoning_model(model_id):
            for key in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
                if key in params:
                    problems.append(f"{where}.{key}: {model_id} is a reasoning model and "
                                    "takes no sampling parameters; remove it")
    return problems
