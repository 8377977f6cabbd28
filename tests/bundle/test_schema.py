"""The bundle schema: sections, validation messages, immutability, JSON Schema export."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from llmreg.bundle.schema import Bundle
from llmreg.errors import InvalidBundleError, TemplateSyntaxError
from tests.conftest import ROOT, minimal

RETRIEVAL: dict[str, Any] = {
    "retriever": "pgvector", "index": {"name": "kb", "version": "2026-11-02"}, "top_k": 5,
    "embedding_model": {"provider": "openai", "id": "text-embedding-3-small"},
    "chunking": {"strategy": "recursive", "size": 400, "overlap": 40},
    "reranker": {"provider": "cohere", "id": "rerank-english-v3.0", "top_n": 3},
    "filters": {"lang": "en"},
}


def test_every_section_round_trips_through_canonical_bytes() -> None:
    data = minimal(
        system_prompt="Be exact.",
        few_shot=[{"input": {"q": "2+2"}, "output": "4"}, {"input": "literal", "output": "ok"}],
        tools=[{"name": "lookup_order", "description": "Find an order",
                "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}],
        response_schema={"type": "object"},
        retrieval=RETRIEVAL,
        postprocess=[{"type": "strip"}, {"type": "regex_extract", "pattern": "(\\{.*\\})",
                                           "group": 1, "flags": ["DOTALL"]},
                     {"type": "truncate", "max_chars": 100}, {"type": "json_parse"},
                     {"type": "json_schema_validate", "json_schema": {"type": "object"}}],
        artifacts=[{"name": "adapter", "media_type": "application/octet-stream",
                    "digest": "sha256:" + "b" * 64, "size": 10}],
    )
    bundle = Bundle.from_dict(data)
    again = Bundle.from_canonical(bundle.canonical_bytes())
    assert again == bundle
    assert again.digest == bundle.digest
    assert [s.type for s in again.postprocess] == [
        "strip", "regex_extract", "truncate", "json_parse", "json_schema_validate"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06",
                    "parameters": {"temperature": 3}}},
         r"model\.parameters\.temperature: .*less than or equal to 2 \(got 3\)"),
        ({"bogus": 1}, r"bogus: unknown field"),
        ({"template": {"source": "{{ q }} {{ r }}", "variables": ["q"]}},
         r"template: source uses r but variables declares \['q'\]"),
        ({"template": {"source": "{% if q %}", "variables": ["q"]}}, r"template: line 1"),
        ({"few_shot": [{"input": {"x": 1}, "output": "y"}]},
         r"few_shot\[0\]\.input must give exactly the template variables"),
        ({"postprocess": [{"type": "json_schema_validate", "json_schema": {}}]},
         r"postprocess\[0\] json_schema_validate needs parsed JSON"),
        ({"postprocess": [{"type": "json_parse"}, {"type": "strip"}]},
         r"postprocess\[1\] strip works on text"),
        ({"postprocess": [{"type": "regex_extract", "pattern": "("}]},
         r"postprocess\[0\]\.pattern: pattern '\(' is not a valid regular expression"),
        ({"postprocess": [{"type": "uppercase"}]}, r"postprocess\[0\]"),
        ({"response_schema": {"type": "nonsense"}}, r"response_schema: not a valid JSON Schema"),
        ({"retrieval": {**RETRIEVAL, "chunking": {"strategy": "fixed", "size": 10,
                                                  "overlap": 10}}},
         r"retrieval\.chunking: overlap 10 must be smaller than size 10"),
        ({"artifacts": [{"name": "../etc", "media_type": "a/b", "digest": "sha256:" + "0" * 64,
                         "size": 1}]}, r"artifacts\[0\]\.name"),
        ({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06",
                    "parameters": {"response_format": "json_schema"}}},
         r"response_format is 'json_schema' but response_schema is empty"),
    ],
)
def test_bad_manifests_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidBundleError, match=message):
        Bundle.from_dict(minimal(**change))


def test_template_errors_have_their_own_type() -> None:
    with pytest.raises(TemplateSyntaxError):
        Bundle.from_dict(minimal(template={"source": "{{ q ", "variables": ["q"]}))


def test_bundles_are_immutable() -> None:
    bundle = Bundle.from_dict(minimal())
    with pytest.raises(ValidationError):
        bundle.system_prompt = "changed"  # type: ignore[misc]


def test_stored_manifest_with_unknown_schema_is_refused() -> None:
    raw = json.loads(Bundle.from_dict(minimal()).canonical_bytes())
    raw["schema"] = "llmreg.bundle/v99"
    with pytest.raises(InvalidBundleError, match="v99"):
        Bundle.from_canonical(json.dumps(raw).encode())


def test_json_schema_export_is_current() -> None:
    from scripts.gen_docs import canonical_bundle_schema

    exported = json.loads((ROOT / "docs" / "bundle.schema.json").read_text())
    assert exported == canonical_bundle_schema(), (
        "docs/bundle.schema.json is stale; run `python scripts/gen_docs.py`")


_ART = {"name": "w", "digest": "sha256:" + "a" * 64, "size": 1,
        "media_type": "application/octet-stream"}
_MODEL = {"provider": "openai", "id": "gpt-4o-2024-08-06"}
_TEMPLATE = {"source": "Q: {{ q }}", "variables": ["q"]}


@pytest.mark.parametrize(
    ("data", "message"),
    [({"model": _MODEL},
      "template: required field is missing (an llm bundle needs model and template)"),
     ({"model": _MODEL, "template": _TEMPLATE, "framework": "pytorch"},
      "framework and base_model belong to weights bundles (kind: weights)"),
     ({"kind": "weights", "template": _TEMPLATE, "artifacts": [_ART]},
      "template: a weights bundle holds artifacts only (kind: weights); remove it"),
     ({"kind": "weights"}, "artifacts: a weights bundle needs at least one artifact"),
     ({"model": _MODEL, "template": _TEMPLATE, "artifacts": [_ART, _ART]},
      "artifacts: name 'w' is used twice"),
     ({"model": {"provider": "openai"}, "template": _TEMPLATE},
      "model.id: required field is missing")],
)
def test_inconsistent_bundles_are_refused_naming_the_field(data: dict[str, object],
                                                            message: str) -> None:
    with pytest.raises(InvalidBundleError) as caught:
        Bundle.from_dict(data)
    assert str(caught.value).startswith(message)


def test_equality_is_by_content_and_the_schema_key_is_accepted() -> None:
    bundle = Bundle.from_dict({"model": _MODEL, "template": _TEMPLATE})
    same = Bundle.from_dict({"schema": "llmreg.bundle/v1", "model": _MODEL,
                             "template": _TEMPLATE})
    assert same == bundle and same.digest == bundle.digest
    assert bundle != "a string" and bundle.__eq__("a string") is NotImplemented
