"""Date-pinned model ids per provider, and the opt-out."""

from __future__ import annotations

import pytest

from llmreg.bundle import Bundle
from llmreg.errors import FloatingModelIdError, InvalidBundleError
from llmreg.pinning import check_model_id, is_pinned
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
    ("bedrock", "anthropic.claude-3-5-sonnet-20241022", "-v1:0"),
    ("mistral", "mistral-large-latest", "mistral-large-2411"),
    ("cohere", "command-r-plus", "command-r-plus-08-2024"),
    ("huggingface", "BAAI/bge-m3", "@<commit sha>"),
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
