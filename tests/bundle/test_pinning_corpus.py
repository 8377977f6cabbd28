"""A corpus of real model ids, pinned and floating, judged by llmreg.bundle.pinning.

Every id below is (or was) a published model id of its provider, taken from the
providers' model lists. Zero false accepts and zero false rejects: a pinned id passes,
a floating alias (or an id with an impossible date) is refused, and every refusal
suggests a real pinned id of that provider that itself passes.
"""

from __future__ import annotations

import re

import pytest

from llmreg.bundle.pinning import check_model_id, is_pinned
from llmreg.errors import FloatingModelIdError

PINNED: list[tuple[str, str]] = [
    # OpenAI (and Azure OpenAI, which uses the underlying model's snapshot names)
    ("openai", "gpt-4o-2024-08-06"), ("openai", "gpt-4o-2024-05-13"),
    ("openai", "gpt-4o-2024-11-20"), ("openai", "gpt-4o-mini-2024-07-18"),
    ("openai", "gpt-4-1106-preview"), ("openai", "gpt-4-0125-preview"),
    ("openai", "gpt-4-0613"), ("openai", "gpt-4-0314"), ("openai", "gpt-4-32k-0613"),
    ("openai", "gpt-3.5-turbo-0125"), ("openai", "gpt-3.5-turbo-1106"),
    ("openai", "gpt-3.5-turbo-instruct-0914"), ("openai", "gpt-4-turbo-2024-04-09"),
    ("openai", "gpt-4.1-2025-04-14"), ("openai", "gpt-4.1-mini-2025-04-14"),
    ("openai", "gpt-4.1-nano-2025-04-14"), ("openai", "gpt-5-2025-08-07"),
    ("openai", "gpt-5-mini-2025-08-07"), ("openai", "o1-2024-12-17"),
    ("openai", "o1-mini-2024-09-12"), ("openai", "o3-2025-04-16"),
    ("openai", "o3-mini-2025-01-31"), ("openai", "o4-mini-2025-04-16"),
    ("openai", "ft:gpt-4o-2024-08-06:acme::9abc"), ("openai", "text-embedding-3-large"),
    ("openai", "text-embedding-ada-002"), ("azure-openai", "gpt-4o-2024-11-20"),
    ("azure-openai", "gpt-35-turbo-0125"),
    # Anthropic
    ("anthropic", "claude-3-5-sonnet-20241022"), ("anthropic", "claude-3-5-sonnet-20240620"),
    ("anthropic", "claude-3-opus-20240229"), ("anthropic", "claude-3-haiku-20240307"),
    ("anthropic", "claude-3-5-haiku-20241022"), ("anthropic", "claude-3-7-sonnet-20250219"),
    ("anthropic", "claude-sonnet-4-20250514"), ("anthropic", "claude-opus-4-20250514"),
    ("anthropic", "claude-opus-4-1-20250805"), ("anthropic", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-haiku-4-5-20251001"), ("anthropic", "claude-2.1"),
    # Google Gemini API and Vertex AI
    ("google", "gemini-1.5-pro-002"), ("google", "gemini-1.5-flash-002"),
    ("google", "gemini-1.0-pro-002"), ("vertex", "gemini-2.0-flash-001"),
    ("vertex", "gemini-2.0-flash-lite-001"), ("google", "gemini-2.5-flash-preview-05-20"),
    ("google", "gemini-2.5-pro-preview-05-06"), ("google", "gemini-2.5-flash-preview-09-2025"),
    ("google", "gemini-2.0-flash-thinking-exp-01-21"), ("google", "gemini-exp-1206"),
    ("vertex", "gemini-2.5-flash-lite-preview-06-17"), ("vertex", "text-embedding-005"),
    ("vertex", "textembedding-gecko@003"),
    ("vertex", "claude-sonnet-4-5@20250929"), ("vertex", "claude-3-5-sonnet-v2@20241022"),
    ("vertex", "claude-3-haiku@20240307"), ("vertex", "claude-opus-4-1@20250805"),
    # Amazon Bedrock (Anthropic, Meta Llama, Mistral, Cohere, Amazon, AI21, OpenAI)
    ("bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ("bedrock", "anthropic.claude-3-haiku-20240307-v1:0"),
    ("bedrock", "anthropic.claude-3-sonnet-20240229-v1:0:200k"),
    ("bedrock", "us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
    ("bedrock", "meta.llama3-1-70b-instruct-v1:0"), ("bedrock", "meta.llama3-8b-instruct-v1:0"),
    ("bedrock", "us.meta.llama3-2-90b-instruct-v1:0"),
    ("bedrock", "mistral.mistral-large-2407-v1:0"), ("bedrock", "amazon.titan-embed-text-v2:0"),
    ("bedrock", "amazon.titan-text-express-v1"), ("bedrock", "amazon.nova-pro-v1:0"),
    ("bedrock", "cohere.command-r-plus-v1:0"), ("bedrock", "cohere.rerank-v3-5:0"),
    ("bedrock", "cohere.command-light-text-v14:7:4k"), ("bedrock", "ai21.jamba-1-5-large-v1:0"),
    ("bedrock", "openai.gpt-oss-120b-1:0"),
    # Mistral
    ("mistral", "mistral-large-2411"), ("mistral", "mistral-large-2407"),
    ("mistral", "mistral-small-2409"), ("mistral", "mistral-small-2503"),
    ("mistral", "mistral-medium-2505"), ("mistral", "codestral-2501"),
    ("mistral", "ministral-8b-2410"), ("mistral", "pixtral-large-2411"),
    ("mistral", "open-mistral-nemo-2407"), ("mistral", "magistral-medium-2506"),
    ("mistral", "mistral-embed"),
    # Cohere
    ("cohere", "command-r-08-2024"), ("cohere", "command-r-plus-08-2024"),
    ("cohere", "command-r7b-12-2024"), ("cohere", "command-a-03-2025"),
    ("cohere", "embed-english-v3.0"), ("cohere", "embed-multilingual-v3.0"),
    ("cohere", "rerank-english-v3.0"), ("cohere", "rerank-v3.5"),
    # Hugging Face (Meta Llama and others, by commit)
    ("huggingface", "BAAI/bge-m3@5617a9f61b028005a4858fdac845db406aefb181"),
    ("huggingface", "meta-llama/Llama-3.1-8B-Instruct@0e9e39f249a16976918f6564b8830bc894c89659"),
]

FLOATING: list[tuple[str, str]] = [
    ("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("openai", "chatgpt-4o-latest"),
    ("openai", "gpt-4"), ("openai", "gpt-4-turbo"), ("openai", "gpt-4-turbo-preview"),
    ("openai", "gpt-3.5-turbo"), ("openai", "gpt-4.1"), ("openai", "gpt-5"),
    ("openai", "o1"), ("openai", "o3-mini"), ("openai", "o4-mini"),
    ("azure-openai", "gpt-4o"),
    ("anthropic", "claude-3-5-sonnet-latest"), ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-3-7-sonnet-latest"), ("anthropic", "claude-opus-4-1"),
    ("anthropic", "claude-haiku-4-5"), ("anthropic", "claude-sonnet-4-0"),
    ("google", "gemini-1.5-pro"), ("google", "gemini-1.5-pro-latest"),
    ("vertex", "gemini-1.5-flash"), ("vertex", "gemini-2.0-flash"),
    ("vertex", "claude-sonnet-4-5"), ("vertex", "claude-3-5-sonnet-v2"),
    ("bedrock", "anthropic.claude-3-5-sonnet-20241022"), ("bedrock", "meta.llama3"),
    ("mistral", "mistral-large-latest"), ("mistral", "mistral-small-latest"),
    ("mistral", "codestral-latest"), ("mistral", "mistral-large"),
    ("cohere", "command-r"), ("cohere", "command-r-plus"), ("cohere", "command-a"),
    ("huggingface", "BAAI/bge-m3"), ("huggingface", "meta-llama/Llama-3.1-8B-Instruct"),
]

IMPOSSIBLE_DATES: list[tuple[str, str]] = [
    ("openai", "gpt-4o-2024-13-45"), ("openai", "gpt-4o-2024-02-30"),
    ("openai", "gpt-4-1306-preview"), ("openai", "gpt-3.5-turbo-0230"),
    ("anthropic", "claude-sonnet-4-5-20259999"), ("anthropic", "claude-3-opus-20241301"),
    ("vertex", "claude-sonnet-4-5@20250931"), ("google", "gemini-2.5-pro-preview-13-06"),
    ("google", "gemini-2.5-flash-preview-00-2025"),
    ("bedrock", "anthropic.claude-3-5-sonnet-20241322-v2:0"),
    ("mistral", "mistral-large-2413"), ("cohere", "command-r-13-2024"),
]


def test_the_corpus_is_large_and_covers_every_provider() -> None:
    assert len(PINNED) + len(FLOATING) >= 60
    providers = {p for p, _ in PINNED} | {p for p, _ in FLOATING}
    assert {"openai", "azure-openai", "anthropic", "google", "vertex", "bedrock", "mistral",
            "cohere", "huggingface"} <= providers


@pytest.mark.parametrize(("provider", "model_id"), PINNED, ids=[m for _, m in PINNED])
def test_no_false_rejects(provider: str, model_id: str) -> None:
    assert is_pinned(provider, model_id)
    check_model_id(provider, model_id)


@pytest.mark.parametrize(("provider", "model_id"), FLOATING + IMPOSSIBLE_DATES,
                         ids=[m for _, m in FLOATING + IMPOSSIBLE_DATES])
def test_no_false_accepts_and_each_suggestion_is_a_real_pinned_id(provider: str,
                                                                  model_id: str) -> None:
    assert not is_pinned(provider, model_id)
    with pytest.raises(FloatingModelIdError) as err:
        check_model_id(provider, model_id)
    message = str(err.value)
    suggestion = re.search(r"for example '([^']+)'$", message)
    assert suggestion, message
    example = suggestion.group(1)
    assert is_pinned(provider, example), message
    assert (provider, example) in PINNED or (
        provider in ("azure-openai", "vertex", "google")
        and any(example == m for _, m in PINNED)), f"{example} is not in the corpus"


@pytest.mark.parametrize(("provider", "model_id"), IMPOSSIBLE_DATES,
                         ids=[m for _, m in IMPOSSIBLE_DATES])
def test_impossible_dates_are_named(provider: str, model_id: str) -> None:
    with pytest.raises(FloatingModelIdError) as err:
        check_model_id(provider, model_id)
    if re.search(r"\d{4}-\d{2}-\d{2}|20\d{6}", model_id):
        assert "which is not a real date" in str(err.value)


def test_suggestions_for_known_aliases_are_their_snapshots() -> None:
    cases = {("openai", "gpt-4o"): "gpt-4o-2024-08-06",
             ("anthropic", "claude-sonnet-4-5"): "claude-sonnet-4-5-20250929",
             ("vertex", "claude-sonnet-4-5"): "claude-sonnet-4-5@20250929",
             ("mistral", "mistral-large-latest"): "mistral-large-2411",
             ("cohere", "command-r-plus"): "command-r-plus-08-2024"}
    for (provider, model_id), expected in cases.items():
        with pytest.raises(FloatingModelIdError, match=f"for example '{re.escape(expected)}'"):
            check_model_id(provider, model_id)
