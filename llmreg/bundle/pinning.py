"""Date-pinned model ids: the conventions of each provider.

A bundle must name the exact model snapshot it was evaluated with. Every major
provider publishes floating aliases (``gpt-4o``, ``claude-3-5-sonnet-latest``,
``gemini-1.5-pro``) that silently move to a new snapshot; llmreg refuses them and
says which pinned form it expects. The rules, by ``provider``:

============  ===========================================  ==============================
provider      pinned when the id                           example
============  ===========================================  ==============================
openai        ends in a date ``-YYYY-MM-DD`` (or the old   ``gpt-4o-2024-08-06``
              ``-MMDD``, ``-MMDD-preview``), or is a
              fine-tune ``ft:…``,
              or a fixed embedding model
azure-openai  same as openai (the underlying model)        ``gpt-4o-2024-11-20``
anthropic     ends in ``-YYYYMMDD``                        ``claude-sonnet-4-5-20250929``
google /      ends in a version ``-NNN``/``@NNN``, a dated      ``gemini-1.5-pro-002``
vertex        preview ``-preview-MM-DD``/``-MM-YYYY``,
              ``-exp-MM-DD``; Claude on Vertex          ``claude-sonnet-4-5@20250929``
              ``<model>@YYYYMMDD``
bedrock       ends in ``-vN``, ``-vN:R``, ``-N:R`` or      ``anthropic.claude-3-5-sonnet-
              ``:R`` (a ``:200k`` variant may follow)
                                                           20241022-v2:0``
mistral       ends in ``-YYMM``                            ``mistral-large-2411``
cohere        ends in ``-MM-YYYY`` or ``-vN.N``            ``command-r-08-2024``
huggingface   carries a commit ``org/model@<40 hex>``      ``BAAI/bge-m3@5617a9f…``
self-hosted   names weights by digest (``weights:``)       any id + ``sha256:…``
============  ===========================================  ==============================

Every date in an id must be a real calendar date (``gpt-4o-2024-13-45`` is refused).
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

from llmreg.errors import FloatingModelIdError, InvalidBundleError, shown

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

# Known snapshots of floating aliases: the suggestion in a refusal. Every value is a
# real, published id of that provider (tests/bundle/test_pinning.py checks each is accepted).
_EXAMPLES: dict[str, str] = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "chatgpt-4o-latest": "gpt-4o-2024-11-20",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
    "gpt-4-turbo-preview": "gpt-4-0125-preview",
    "gpt-4": "gpt-4-0613",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "o1": "o1-2024-12-17",
    "o1-mini": "o1-mini-2024-09-12",
    "o3": "o3-2025-04-16",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
    "claude-3-5-sonnet-latest": "claude-3-5-sonnet-20241022",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-3-opus-latest": "claude-3-opus-20240229",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-opus-4-0": "claude-opus-4-20250514",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "gemini-1.0-pro": "gemini-1.0-pro-002",
    "gemini-1.5-pro": "gemini-1.5-pro-002",
    "gemini-1.5-pro-latest": "gemini-1.5-pro-002",
    "gemini-1.5-flash": "gemini-1.5-flash-002",
    "gemini-1.5-flash-latest": "gemini-1.5-flash-002",
    "gemini-2.0-flash": "gemini-2.0-flash-001",
    "gemini-2.0-flash-lite": "gemini-2.0-flash-lite-001",
    "mistral-large-latest": "mistral-large-2411",
    "mistral-small-latest": "mistral-small-2409",
    "mistral-medium-latest": "mistral-medium-2505",
    "ministral-8b-latest": "ministral-8b-2410",
    "pixtral-large-latest": "pixtral-large-2411",
    "codestral-latest": "codestral-2501",
    "command-r": "command-r-08-2024",
    "command-r-plus": "command-r-plus-08-2024",
    "command-r7b": "command-r7b-12-2024",
    "command-a": "command-a-03-2025",
}
# Vertex serves Anthropic's models as '<model>@YYYYMMDD'.
_VERTEX_CLAUDE: dict[str, str] = {
    "claude-sonnet-4-5": "claude-sonnet-4-5@20250929",
    "claude-3-5-sonnet-v2": "claude-3-5-sonnet-v2@20241022",
    "claude-3-5-sonnet": "claude-3-5-sonnet@20240620",
    "claude-3-7-sonnet": "claude-3-7-sonnet@20250219",
    "claude-3-5-haiku": "claude-3-5-haiku@20241022",
    "claude-3-haiku": "claude-3-haiku@20240307",
    "claude-opus-4-1": "claude-opus-4-1@20250805",
    "claude-sonnet-4": "claude-sonnet-4@20250514",
}
# One real pinned id per provider, for a refusal with no closer suggestion.
_DEFAULT_EXAMPLE: dict[str, str] = {
    "openai": "gpt-4o-2024-08-06",
    "anthropic": "claude-sonnet-4-5-20250929",
    "google": "gemini-2.0-flash-001",
    "bedrock": "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "mistral": "mistral-large-2411",
    "cohere": "command-r-08-2024",
    "huggingface": "BAAI/bge-m3@5617a9f61b028005a4858fdac845db406aefb181",
}

_KIND_EXAMPLE: dict[tuple[str, str], str] = {
    ("openai", "embed"): "text-embedding-3-large",
    ("google", "embed"): "text-embedding-005",
    ("mistral", "embed"): "mistral-embed",
    ("cohere", "embed"): "embed-english-v3.0",
    ("cohere", "rerank"): "rerank-v3.5",
    ("bedrock", "embed"): "amazon.titan-embed-text-v2:0",
    ("bedrock", "rerank"): "cohere.rerank-v3-5:0",
}

# Ids that never move although they carry no date (the provider froze them).
_FIXED: dict[str, frozenset[str]] = {
    "openai": frozenset({"text-embedding-3-small", "text-embedding-3-large",
                         "text-embedding-ada-002", "davinci-002", "babbage-002"}),
    "anthropic": frozenset({"claude-2.0", "claude-2.1", "claude-instant-1.2"}),
    "mistral": frozenset({"mistral-embed"}),
}


def _date_ok(year: int, month: int, day: int) -> bool:
    import datetime

    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return 2020 <= year <= 2099


def _ymd(text: str) -> bool:
    """``2024-08-06`` or ``20240806``: a real calendar date."""
    digits = text.replace("-", "")
    return _date_ok(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))


def _md(text: str) -> bool:
    """``0125`` or ``01-25``: a real month and day (any leap year)."""
    digits = text.replace("-", "")
    return _date_ok(2024, int(digits[:2]), int(digits[2:4]))


def _my(text: str) -> bool:
    """``08-2024`` (month-year)."""
    month, year = text.split("-")
    return _date_ok(int(year), int(month), 1)


def _yymm(text: str) -> bool:
    """``2411`` (year 2024, November)."""
    return 23 <= int(text[:2]) and _date_ok(2000 + int(text[:2]), int(text[2:]), 1)


@dataclass(frozen=True)
class _Rule:
    pinned: Callable[[str], bool]
    form: str  # the pinned form, for messages
    suggest: Callable[[str], str]


def _openai_pinned(model_id: str) -> bool:
    if model_id.startswith("ft:"):
        return True
    dated = re.search(r"-(\d{4}-\d{2}-\d{2})$", model_id)
    if dated:
        return _ymd(dated.group(1))
    old = re.search(r"-(\d{4})(?:-preview)?$", model_id)  # gpt-4-0613, gpt-4-1106-preview
    return bool(old) and _md(old.group(1)) if old else False


def _anthropic_pinned(model_id: str) -> bool:
    dated = re.search(r"-(\d{8})$", model_id)
    return bool(dated) and _ymd(dated.group(1)) if dated else False


def _google_pinned(model_id: str) -> bool:
    claude = re.fullmatch(r"claude-[\w.-]+@(\d{8})", model_id)  # Vertex's Anthropic models
    if claude:
        return _ymd(claude.group(1))
    if re.search(r"(?:-|@)\d{3}$", model_id):  # gemini-1.5-pro-002, textembedding-gecko@003
        return True
    md = re.search(r"-(?:preview|exp)-(\d{2}-\d{2})$", model_id)  # …-preview-05-06, -exp-01-21
    if md:
        return _md(md.group(1))
    my = re.search(r"-preview-(\d{2}-\d{4})$", model_id)  # gemini-2.5-flash-preview-09-2025
    if my:
        return _my(my.group(1))
    mmdd = re.search(r"^gemini-exp-(\d{4})$", model_id)  # gemini-exp-1206
    return bool(mmdd) and _md(mmdd.group(1)) if mmdd else False


_BEDROCK = re.compile(
    r"(?:(?:us|eu|apac|global|us-gov)\.)?"          # a cross-region inference profile
    r"[a-z0-9]+\.[\w.-]+?"                          # vendor.model
    r"(?:-v\d+(?::\d+)*|-\d+:\d+|:\d+)"             # -v2:0, -v1, -1:0 (gpt-oss), :0, -v14:7
    r"(?::\d+k|:mm)?")                              # a context-window variant (:200k, :4k)


def _bedrock_pinned(model_id: str) -> bool:
    if not _BEDROCK.fullmatch(model_id):
        return False
    dated = re.search(r"-(\d{8})-v\d", model_id)
    return _ymd(dated.group(1)) if dated else True


def _mistral_pinned(model_id: str) -> bool:
    dated = re.search(r"-(\d{4})$", model_id)
    return bool(dated) and _yymm(dated.group(1)) if dated else False


def _cohere_pinned(model_id: str) -> bool:
    if re.search(r"-v\d+\.\d+$", model_id):  # embed-english-v3.0, rerank-v3.5
        return True
    dated = re.search(r"-(\d{2}-\d{4})$", model_id)
    return bool(dated) and _my(dated.group(1)) if dated else False


def _strip_latest(model_id: str) -> str:
    return re.sub(r"-latest$", "", model_id)


def _suggest(provider: str) -> Callable[[str], str]:
    def suggest(model_id: str) -> str:
        if provider == "google" and model_id.startswith("claude-"):
            base = re.sub(r"@.*$", "", model_id)
            return _VERTEX_CLAUDE.get(base, "claude-sonnet-4-5@20250929")
        if provider == "huggingface":
            return _DEFAULT_EXAMPLE["huggingface"]
        known = _EXAMPLES.get(model_id) or _EXAMPLES.get(_strip_latest(model_id))
        if known:
            return known
        for kind in ("embed", "rerank"):  # an embedding id gets an embedding example
            if kind in model_id and (provider, kind) in _KIND_EXAMPLE:
                return _KIND_EXAMPLE[provider, kind]
        return _DEFAULT_EXAMPLE[provider]
    return suggest


_RULES: dict[str, _Rule] = {
    "openai": _Rule(_openai_pinned, "a dated snapshot '<model>-YYYY-MM-DD'", _suggest("openai")),
    "anthropic": _Rule(_anthropic_pinned, "a dated id '<model>-YYYYMMDD'",
                       _suggest("anthropic")),
    "google": _Rule(_google_pinned, "a versioned id '<model>-NNN' (or a dated preview "
                    "'<model>-preview-MM-DD'; Claude on Vertex: '<model>@YYYYMMDD')",
                    _suggest("google")),
    "bedrock": _Rule(_bedrock_pinned, "a versioned id '<vendor>.<model>-vN:R'",
                     _suggest("bedrock")),
    "mistral": _Rule(_mistral_pinned, "a dated id '<model>-YYMM'", _suggest("mistral")),
    "cohere": _Rule(_cohere_pinned, "a dated id '<model>-MM-YYYY' (or '<model>-vN.N')",
                    _suggest("cohere")),
    "huggingface": _Rule(
        lambda m: bool(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", m)),
        "'<org>/<model>@<40-hex commit>'", _suggest("huggingface"),
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
            f"{field.rsplit('.', 1)[0]}.provider {shown(provider)} is not known; use one of "
            + ", ".join(PROVIDERS)
        )
    if allow_floating or is_pinned(provider, model_id, weights=weights):
        return
    if provider == "self-hosted":
        raise FloatingModelIdError(
            f"{field} {shown(model_id)} is self-hosted but names no weights; set "
            f"{field.rsplit('.', 1)[0]}.weights to the weights bundle's digest 'sha256:…'"
        )
    rule = _RULES[provider]
    bad_date = _impossible_date(model_id)
    what = (f"ends in {shown(bad_date)}, which is not a real date" if bad_date
            else f"is a floating alias for {provider}")
    raise FloatingModelIdError(
        f"{field} {shown(model_id)} {what}; pin {rule.form}, "
        f"for example {shown(rule.suggest(model_id))}"
    )


def _impossible_date(model_id: str) -> str | None:
    """The date-shaped part of a refused id that is no calendar date, if there is one."""
    m = re.search(r"(\d{4}-\d{2}-\d{2}|(?<!\d)20\d{6}(?!\d))", model_id)
    if m and not _ymd(m.group(1)):
        return m.group(1)
    return None
