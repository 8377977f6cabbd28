"""Date-pinned model ids per provider, and the opt-out."""

from __future__ import annotations

import pytest

from llmreg.bundle.pinning import check_model_id, is_pinned
from llmreg.bundle.schema import Bundle
from llmreg.errors import FloatingModelIdError, InvalidBundleError
from tests.conftest import minimal

PINNED = [
    ("openai", "gpt-4o-2024-08-06"),
    ("openai", "gpt-4o-mini-2024-07-18"),
    ("openai", "gpt-3.5-turbo-0125"),
    ("openai", "o1-2024-12-17"),
    ("openai", "ft:gpt-4o-2024-08-06:acme::9abc"),
    ("openai", "text-embedding-3-large"),
    ("azure-openai", "gpt-4o-2024-11-20"),
    ("anthropic", "claude-3-5-sonnet-20241022"),
    ("anthropic", "claude-sonnet-4-5-20250929"),
    ("google", "gemini-1.5-pro-002"),
    ("vertex", "gemini-2.0-flash-001"),
    ("google", "gemini-2.5-flash-preview-05-20"),
    ("bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ("bedrock", "amazon.titan-embed-text-v2:0"),
    ("bedrock", "us.meta.llama3-1-70b-instruct-v1:0"),
    ("mistral", "mistral-large-2411"),
    ("mistral", "mistral-embed"),
    ("cohere", "command-r-08-2024"),
    ("cohere", "rerank-english-v3.0"),
    ("huggingface", "BAAI/bge-m3@5617a9f61b028005a4858fdac845db406aefb181"),
]

FLOATING = [
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("openai", "chatgpt-4o-latest", "gpt-4o-2024-11-20"),
    ("anthropic", "claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
    ("google", "gemini-1.5-pro", "gemini-1.5-pro-002"),
    ("vertex", "gemini-1.5-flash", "gemini-1.5-flash-002"),
    ("bedrock", "anthropic.claude-3-5-sonnet-20241022",
     "anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ("mistral", "mistral-large-latest", "mistral-large-2411"),
    ("cohere", "command-r-plus", "command-r-plus-08-2024"),
    ("huggingface", "BAAI/bge-m3", "BAAI/bge-m3@5617a9f61b028005a4858fdac845db406aefb181"),
]


@pytest.mark.parametrize(("provider", "model_id"), PINNED)
def test_pinned_ids_pass(provider: str, model_id: str) -> None:
    assert is_pinned(provider, model_id)
    check_model_id(provider, model_id)


@pytest.mark.parametrize(("provider", "model_id", "expected"), FLOATING)
def test_floating_ids_are_refused_with_the_pinned_form(
    provider: str, model_id: str, expected: str
) -> None:
    with pytest.raises(FloatingModelIdError) as info:
        check_model_id(provider, model_id)
    assert repr(model_id) in str(info.value)
    assert expected in str(info.value)


def test_self_hosted_needs_weights_digest() -> None:
    with pytest.raises(FloatingModelIdError, match="weights"):
        check_model_id("self-hosted", "llama-ft")
    check_model_id("self-hosted", "llama-ft", weights="sha256:" + "a" * 64)


def test_unknown_provider_is_named() -> None:
    with pytest.raises(InvalidBundleError, match="provider 'acme-ai' is not known"):
        check_model_id("acme-ai", "x-1")


def test_opt_out_allows_floating_ids() -> None:
    data = minimal(model={"provider": "openai", "id": "gpt-4o"})
    with pytest.raises(FloatingModelIdError):
        Bundle.from_dict(data)
    assert Bundle.from_dict(data, allow_floating_model_ids=True).model.id == "gpt-4o"


def test_embedding_and_reranker_ids_are_checked_too() -> None:
    data = minimal(retrieval={
        "retriever": "pgvector", "index": {"name": "kb", "version": "7"}, "top_k": 3,
        "embedding_model": {"provider": "google", "id": "gemini-1.5-pro"},
    })
    with pytest.raises(FloatingModelIdError, match=r"retrieval\.embedding_model\.id"):
        Bundle.from_dict(data)


# --- the refusal messages: exact, and every example they give is itself pinned -----------

# Each provider's own floating aliases, with the snapshot the message suggests.
EXAMPLES = [
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("openai", "chatgpt-4o-latest", "gpt-4o-2024-11-20"),
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("openai", "gpt-4.1", "gpt-4.1-2025-04-14"),
    ("openai", "gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"),
    ("openai", "gpt-4-turbo", "gpt-4-turbo-2024-04-09"),
    ("openai", "gpt-3.5-turbo", "gpt-3.5-turbo-0125"),
    ("openai", "o1", "o1-2024-12-17"),
    ("openai", "o3-mini", "o3-mini-2025-01-31"),
    ("anthropic", "claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022"),
    ("anthropic", "claude-3-5-haiku-latest", "claude-3-5-haiku-20241022"),
    ("anthropic", "claude-3-7-sonnet-latest", "claude-3-7-sonnet-20250219"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-sonnet-4-0", "claude-sonnet-4-20250514"),
    ("anthropic", "claude-opus-4-1", "claude-opus-4-1-20250805"),
    ("google", "gemini-1.5-pro", "gemini-1.5-pro-002"),
    ("google", "gemini-1.5-flash", "gemini-1.5-flash-002"),
    ("google", "gemini-2.0-flash", "gemini-2.0-flash-001"),
    ("mistral", "mistral-large-latest", "mistral-large-2411"),
    ("mistral", "mistral-small-latest", "mistral-small-2409"),
    ("mistral", "codestral-latest", "codestral-2501"),
    ("cohere", "command-r", "command-r-08-2024"),
    ("cohere", "command-r-plus", "command-r-plus-08-2024"),
]
SAME_RULES = {"openai": "azure-openai", "google": "vertex"}


def refusal(provider: str, model_id: str, **kw: str) -> str:
    with pytest.raises(FloatingModelIdError) as info:
        check_model_id(provider, model_id, **kw)
    return str(info.value)


def test_the_examples_cover_every_known_snapshot() -> None:
    from llmreg.bundle.pinning import _EXAMPLES

    assert {(floating, pinned) for _, floating, pinned in EXAMPLES} <= set(_EXAMPLES.items())


@pytest.mark.parametrize(("provider", "floating", "example"), EXAMPLES)
def test_every_suggested_snapshot_is_itself_pinned(provider: str, floating: str,
                                                   example: str) -> None:
    for p in (provider, SAME_RULES.get(provider, provider)):
        assert f"for example {example!r}" in refusal(p, floating)
        assert is_pinned(p, example)
        check_model_id(p, example)


# provider, an unknown floating id, the exact refusal: the form, and a real pinned id of
# that provider (never a made-up one such as 'acme-YYYY-MM-DD')
GENERIC = [
    ("openai", "acme-latest",
     "pin a dated snapshot '<model>-YYYY-MM-DD', for example 'gpt-4o-2024-08-06'"),
    ("azure-openai", "acme",
     "pin a dated snapshot '<model>-YYYY-MM-DD', for example 'gpt-4o-2024-08-06'"),
    ("anthropic", "acme-latest",
     "pin a dated id '<model>-YYYYMMDD', for example 'claude-sonnet-4-5-20250929'"),
    ("bedrock", "acme.model-latest",
     "pin a versioned id '<vendor>.<model>-vN:R', for example "
     "'anthropic.claude-3-5-sonnet-20241022-v2:0'"),
    ("mistral", "acme-latest", "pin a dated id '<model>-YYMM', for example 'mistral-large-2411'"),
    ("cohere", "acme-latest",
     "pin a dated id '<model>-MM-YYYY' (or '<model>-vN.N'), for example 'command-r-08-2024'"),
    ("huggingface", "acme/model-latest",
     "pin '<org>/<model>@<40-hex commit>', for example "
     "'BAAI/bge-m3@5617a9f61b028005a4858fdac845db406aefb181'"),
]


@pytest.mark.parametrize(("provider", "model_id", "fix"), GENERIC)
def test_refusals_give_the_pinned_form_and_a_real_example(
    provider: str, model_id: str, fix: str
) -> None:
    message = refusal(provider, model_id)
    assert message == f"model.id {model_id!r} is a floating alias for {provider}; {fix}"
    assert is_pinned(provider, message.rsplit("'", 2)[1])


def test_a_latest_suffix_is_dropped_to_find_the_snapshot() -> None:
    assert refusal("openai", "o3-mini-latest").endswith("for example 'o3-mini-2025-01-31'")
    assert refusal("anthropic", "claude-opus-4-1-latest").endswith(
        "for example 'claude-opus-4-1-20250805'")


def test_suggestions_follow_the_provider_and_the_kind_of_model() -> None:
    # Claude on Vertex: that model's '@YYYYMMDD' id, whatever follows its '@'.
    for model_id in ("claude-3-5-haiku", "claude-3-5-haiku@latest"):
        assert refusal("vertex", model_id).endswith("for example 'claude-3-5-haiku@20241022'")
    assert refusal("google", "claude-acme").endswith("for example 'claude-sonnet-4-5@20250929'")
    # A Hugging Face id never gets another provider's snapshot, even one with its name.
    assert refusal("huggingface", "gpt-4o").endswith(
        "for example 'BAAI/bge-m3@5617a9f61b028005a4858fdac845db406aefb181'")
    # A reranker gets a reranker.
    assert refusal("cohere", "rerank-english").endswith("for example 'rerank-v3.5'")


def test_nested_fields_name_their_own_section() -> None:
    field = "retrieval.embedding_model.id"
    assert refusal("openai", "text-embedding-4", field=field) == (
        "retrieval.embedding_model.id 'text-embedding-4' is a floating alias for openai; pin a "
        "dated snapshot '<model>-YYYY-MM-DD', for example 'text-embedding-3-large'")
    assert refusal("self-hosted", "bge-ft", field=field) == (
        "retrieval.embedding_model.id 'bge-ft' is self-hosted but names no weights; set "
        "retrieval.embedding_model.weights to the weights bundle's digest 'sha256:…'")
    assert refusal("self-hosted", "llama-ft") == (
        "model.id 'llama-ft' is self-hosted but names no weights; set model.weights to the "
        "weights bundle's digest 'sha256:…'")
    with pytest.raises(InvalidBundleError) as info:
        check_model_id("acme-ai", "x-1", field=field)
    assert str(info.value) == (
        "retrieval.embedding_model.provider 'acme-ai' is not known; use one of openai, "
        "azure-openai, anthropic, google, vertex, bedrock, mistral, cohere, huggingface, "
        "self-hosted")
    with pytest.raises(InvalidBundleError, match=r"^model\.provider 'acme-ai' is not known"):
        check_model_id("acme-ai", "x-1")


# --- ids that never move although they carry no date ---------------------------------


@pytest.mark.parametrize(("provider", "model_id"), [
    ("openai", "text-embedding-ada-002"),
    ("openai", "text-embedding-3-small"),
    ("openai", "text-embedding-3-large"),
    ("mistral", "mistral-embed"),
])
def test_fixed_ids_are_pinned_for_their_provider_only(provider: str, model_id: str) -> None:
    assert is_pinned(provider, model_id)
    check_model_id(provider, model_id)
    for other in ("anthropic", "cohere", "bedrock"):  # (google reads "-002" as a version)
        assert not is_pinned(other, model_id)
    assert not is_pinned(provider, model_id + "-latest")
    assert not is_pinned(provider, model_id.upper())


def test_latest_is_floating_whatever_else_the_id_looks_like() -> None:
    assert is_pinned("openai", "ft:gpt-4o-mini:acme::9abc")
    assert not is_pinned("openai", "ft:gpt-4o-mini:acme::9abc-latest")
    assert not is_pinned("openai", "gpt-4o-latest")
    assert is_pinned("openai", "gpt-4o-LATEST-2024-08-06")


@pytest.mark.parametrize(("provider", "model_id", "pinned"), [
    ("openai", "gpt-3.5-turbo-1106", True),
    ("openai", "gpt-3.5-turbo-1306", False),   # no 13th month
    ("openai", "gpt-4-0229", True),            # MMDD: the 29th of February of a leap year
    ("openai", "gpt-4o-2020-01-01", True),     # dates run from 2020 to 2099
    ("openai", "gpt-4o-2019-12-31", False),
    ("openai", "gpt-4o-2099-12-31", True),
    ("openai", "gpt-4o-2100-01-01", False),
    ("openai", "gpt-4o-2024-08", False),
    ("openai", "ft-gpt-4o", False),
    ("anthropic", "claude-3-5-sonnet-2024102", False),
    ("anthropic", "claude-3-5-sonnet-19991022", False),
    ("google", "gemini-1.5-pro-02", False),
    ("google", "gemini-exp-1206", True),
    ("google", "gemini-exp-1306", False),
    ("bedrock", "meta.llama3-70b-instruct-v1", True),
    ("bedrock", "meta.llama3-70b-instruct", False),
    ("mistral", "mistral-large-2413", False),
    ("mistral", "mistral-small-2312", True),   # YYMM from 2023 (Mistral's first models)
    ("mistral", "mistral-large-2212", False),
    ("mistral", "mistral-large-9912", True),
    ("cohere", "command-r-13-2024", False),
    ("huggingface", "BAAI/bge-m3@5617a9f", False),
    ("huggingface", "bge-m3@5617a9f61b028005a4858fdac845db406aefb181", False),
    ("self-hosted", "anything", False),
    ("acme-ai", "x-2024-08-06", False),
])
def test_edges_of_each_rule(provider: str, model_id: str, pinned: bool) -> None:
    assert is_pinned(provider, model_id) is pinned


def test_self_hosted_is_pinned_by_its_weights_only() -> None:
    assert is_pinned("self-hosted", "llama-ft", weights="sha256:" + "a" * 64)
    assert not is_pinned("self-hosted", "llama-ft-2024-08-06")
    check_model_id("openai", "gpt-4o", allow_floating=True)
    check_model_id("self-hosted", "llama-ft", allow_floating=True)
