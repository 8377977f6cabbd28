"""Date-pinned model ids: the conventions of each provider.

A bundle must name the exact model snapshot it was evaluated with. Every major
provider publishes floating aliases (``gpt-4o``, ``claude-3-5-sonnet-latest``,
``gemini-1.5-pro``) that silently move to a new snapshot; llmreg refuses them and
says which pinned form it expects. The rules, by ``provider``:

============  ===========================================  ==============================
provider      pinned when the id                           example
============  ===========================================  ==============================
openai        ends in a date ``-YYYY-MM-DD`` (or the old   ``gpt-4o-2024-08-06``
              ``-MMDD``), or is a fine-tune ``ft:…``,
              or a fixed embedding model
azure-openai  same as openai (the underlying model)        ``gpt-4o-2024-11-20``
anthropic     ends in ``-YYYYMMDD``                        ``claude-sonnet-4-5-20250929``
google /      ends in a version ``-NNN`` or a dated        ``gemini-1.5-pro-002``
vertex        preview ``-preview-MM-DD``
bedrock       ends in ``-vN`` or ``-vN:R``                 ``anthropic.claude-3-5-sonnet-
                                                           20241022-v2:0``
mistral       ends in ``-YYMM``                            ``mistral-large-2411``
cohere        ends in ``-MM-YYYY`` or ``-vN.N``            ``command-r-08-2024``
huggingface   carries a commit ``org/model@<40 hex>``      ``BAAI/bge-m3@5617a9f…``
self-hosted   names weights by digest (``weights:``)       any id + ``sha256:…``
============  ===========================================  ==============================

A policy may allow floating ids explicitly (``allow_floating=True``); nothing else does.

Example:
    >>> check_model_id("openai", "gpt-4o-2024-08-06")
    >>> check_model_id("openai", "gpt-4o")
    Traceback (most recent call last):
    ...
    llmreg.errors.FloatingModelIdError: model.id 'gpt-4o' is a floating alias for openai; \
pin a dated snapshot '<model>-YYYY-MM-DD', for example 'gpt-4o-2024-08-06'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from llmreg.errors import FloatingModelIdError, InvalidBundleError

PROVIDERS = (
    "openai",
    "azure-openai",
    "anthropic",
    "google",
    "vertex",
    "bedrock",
    "mistral",
    "cohere",
    "huggingface",
    "self-hosted",
)

# Known snapshots, only used to make the error message concrete.
_EXAMPLES: dict[str, str] = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "chatgpt-4o-latest": "gpt-4o-2024-11-20",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
    "o1": "o1-2024-12-17",
    "o3-mini": "o3-mini-2025-01-31",
    "claude-3-5-sonnet-latest": "claude-3-5-sonnet-20241022",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "gemini-1.5-pro": "gemini-1.5-pro-002",
    "gemini-1.5-flash": "gemini-1.5-flash-002",
    "gemini-2.0-flash": "gemini-2.0-flash-001",
    "mistral-large-latest": "mistral-large-2411",
    "mistral-small-latest": "mistral-small-2409",
    "codestral-latest": "codestral-2501",
    "command-r": "command-r-08-2024",
    "command-r-plus": "command-r-plus-08-2024",
}

# Ids that never move although they carry no date (the provider froze them).
_FIXED: dict[str, frozenset[str]] = {
    "openai": frozenset(
        {"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"}
    ),
    "mistral": frozenset({"mistral-embed"}),
}


@dataclass(frozen=True)
class _Rule:
    pinned: Callable[[str], bool]
    form: str  # the pinned form, for messages
    suggest: Callable[[str], str]


def _openai_pinned(model_id: str) -> bool:
    dated = re.search(r"-\d{4}-\d{2}-\d{2}$", model_id)
    old_style = re.search(r"-(?:0[1-9]|1[0-2])\d{2}$", model_id)  # gpt-3.5-turbo-0125
    return model_id.startswith("ft:") or bool(dated or old_style)


def _strip_latest(model_id: str) -> str:
    return re.sub(r"-latest$", "", model_id)


_RULES: dict[str, _Rule] = {
    "openai": _Rule(
        _openai_pinned,
        "a dated snapshot '<model>-YYYY-MM-DD'",
        lambda m: _EXAMPLES.get(m, f"{_strip_latest(m)}-YYYY-MM-DD"),
    ),
    "anthropic": _Rule(
        lambda m: bool(re.search(r"-20\d{6}$", m)),
        "a dated id '<model>-YYYYMMDD'",
        lambda m: _EXAMPLES.get(m, f"{_strip_latest(m)}-YYYYMMDD"),
    ),
    "google": _Rule(
        lambda m: bool(re.search(r"-\d{3}$|-preview-\d{2}-\d{2}$|-exp-\d{4}$", m)),
        "a versioned id '<model>-NNN'",
        lambda m: _EXAMPLES.get(m, f"{_strip_latest(m)}-NNN"),
    ),
    "bedrock": _Rule(
        lambda m: bool(re.search(r"-v\d+(?::\d+)?$", m)),
        "a versioned id '<vendor>.<model>-vN:R'",
        lambda m: f"{_strip_latest(m)}-v1:0",
    ),
    "mistral": _Rule(
        lambda m: bool(re.search(r"-\d{2}(?:0[1-9]|1[0-2])$", m)),
        "a dated id '<model>-YYMM'",
        lambda m: _EXAMPLES.get(m, f"{_strip_latest(m)}-YYMM"),
    ),
    "cohere": _Rule(
        lambda m: bool(re.search(r"-(?:0[1-9]|1[0-2])-20\d{2}$|-v\d+\.\d+$", m)),
        "a dated id '<model>-MM-YYYY'",
        lambda m: _EXAMPLES.get(m, f"{_strip_latest(m)}-MM-YYYY"),
    ),
    "huggingface": _Rule(
        lambda m: bool(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", m)),
        "'<org>/<model>@<40-hex commit>'",
        lambda m: f"{m.split('@')[0]}@<commit sha>",
    ),
}
_RULES["azure-openai"] = _RULES["openai"]
_RULES["vertex"] = _RULES["google"]


def is_pinned(provider: str, model_id: str, *, weights: str | None = None) -> bool:
    """Tell whether ``model_id`` names one immutable model under ``provider``'s rules.

    Example:
        >>> is_pinned("anthropic", "claude-3-5-sonnet-20241022")
        True
        >>> is_pinned("anthropic", "claude-3-5-sonnet-latest")
        False
    """
    if provider == "self-hosted":
        return weights is not None
    if model_id in _FIXED.get(provider, frozenset()):
        return True
    if model_id.endswith("-latest"):
        return False
    rule = _RULES.get(provider)
    return rule is not None and rule.pinned(model_id)


def check_model_id(
    provider: str,
    model_id: str,
    *,
    weights: str | None = None,
    field: str = "model.id",
    allow_floating: bool = False,
) -> None:
    """Raise :class:`FloatingModelIdError` unless the id is pinned (or floating is allowed).

    Args:
        provider: one of :data:`PROVIDERS`.
        model_id: the provider's model id.
        weights: for ``self-hosted``, the digest of the weights bundle.
        field: the field name used in the error message.
        allow_floating: the explicit opt-out a policy may grant.

    Example:
        >>> check_model_id("mistral", "mistral-large-2411")
    """
    if provider not in PROVIDERS:
        raise InvalidBundleError(
            f"{field.rsplit('.', 1)[0]}.provider {provider!r} is not known; use one of "
            + ", ".join(PROVIDERS)
        )
    if allow_floating or is_pinned(provider, model_id, weights=weights):
        return
    if provider == "self-hosted":
        raise FloatingModelIdError(
            f"{field} {model_id!r} is self-hosted but names no weights; set "
            f"{field.rsplit('.', 1)[0]}.weights to the weights bundle's digest 'sha256:…'"
        )
    rule = _RULES[provider]
    raise FloatingModelIdError(
        f"{field} {model_id!r} is a floating alias for {provider}; pin {rule.form}, "
        f"for example {rule.suggest(model_id)!r}"
    )
