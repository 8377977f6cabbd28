"""Rendering: message shapes, strict variables, the sandbox."""

from __future__ import annotations

import pytest

from llmreg.bundle.directory import load_bundle_dir
from llmreg.bundle.schema import Bundle
from llmreg.errors import RenderError
from tests.conftest import EXAMPLES, minimal


def test_openai_and_anthropic_shapes_with_few_shot_pairs() -> None:
    bundle, _ = load_bundle_dir(EXAMPLES / "meeting-summariser")
    msgs = bundle.render(transcript="A: ship it\nB: ok", audience="team")
    openai = msgs.to_openai()
    assert [m["role"] for m in openai] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert openai[-1]["content"] == "Audience: team\n\nTranscript:\nA: ship it\nB: ok\n"
    anthropic = msgs.to_anthropic()
    assert anthropic["system"] == bundle.system_prompt
    assert anthropic["messages"] == openai[1:]
    request = msgs.anthropic_request()
    assert request["model"] == "claude-sonnet-4-5-20250929"
    assert request["stop_sequences"] == ["</summary>"]
    assert request["max_tokens"] == 1200


def test_rag_template_iterates_documents() -> None:
    bundle, _ = load_bundle_dir(EXAMPLES / "support-rag")
    docs = [{"id": "a1", "title": "Returns", "text": "30 days."}]
    user = bundle.render(question="Can I return?", documents=docs,
                         customer_tier="premium").to_openai()[-1]["content"]
    assert "[a1] Returns\n30 days." in user
    assert user.rstrip().endswith("Question: Can I return?")


def test_openai_request_maps_response_format() -> None:
    bundle = Bundle.from_dict(minimal(
        model={"provider": "openai", "id": "gpt-4o-2024-08-06",
               "parameters": {"response_format": "json_schema", "temperature": 0}},
        response_schema={"type": "object"}))
    req = bundle.render(q="x").openai_request()
    assert req["response_format"]["type"] == "json_schema"
    assert req["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert req["temperature"] == 0


def test_missing_and_undeclared_variables_are_errors() -> None:
    bundle = Bundle.from_dict(minimal())
    with pytest.raises(RenderError, match="missing variable"):
        bundle.render()
    with pytest.raises(RenderError, match="undeclared variable.*qq"):
        bundle.render(q="a", qq="b")


def test_strict_undefined_inside_the_template() -> None:
    bundle = Bundle.from_dict(minimal(template={"source": "{{ doc.title }}",
                                                "variables": ["doc"]}))
    with pytest.raises(RenderError, match="title"):
        bundle.render(doc={})


def test_sandbox_blocks_python_internals() -> None:
    """Refused at registration now (a private attribute, a method call); the sandbox
    still stands behind the language for values the caller gives."""
    from llmreg.bundle.render import render_manifest
    from llmreg.errors import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError, match="line 1: .*calls a method"):
        Bundle.from_dict(minimal(template={
            "source": "{{ q.__class__.__mro__[1].__subclasses__() }}", "variables": ["q"]}))
    with pytest.raises(TemplateSyntaxError, match="line 1: the attribute __class__ is private"):
        Bundle.from_dict(minimal(template={"source": "{{ q.__class__ }}", "variables": ["q"]}))
    manifest = {"kind": "llm", "model": {"id": "gpt-4o-2024-08-06"},
                "template": {"source": "{{ q['__class__'] }}", "variables": ["q"]}}
    with pytest.raises(RenderError, match="'__class__'"):
        render_manifest(manifest, {"q": {}})


def test_an_unknown_filter_is_a_template_error_naming_the_line() -> None:
    from llmreg.errors import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError, match=r"line 2: No filter named 'shout' in the "
                                                  r"template language; the filters are abs, "):
        Bundle.from_dict(minimal(template={"source": "Q:\n{{ q | shout }}",
                                           "variables": ["q"]}))


def test_a_weights_bundle_has_nothing_to_render() -> None:
    from llmreg.bundle.render import render_manifest

    with pytest.raises(RenderError, match="this is a weights bundle: it has no prompt"):
        render_manifest({"kind": "weights", "model": {"id": "m"}}, {})


def test_immutable_sandbox_refuses_mutation() -> None:
    """``q.append(1)`` is a method call: refused at registration, before any render."""
    from llmreg.errors import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError, match=r"line 1: q.append\(\) calls a method"):
        Bundle.from_dict(minimal(template={"source": "{{ q.append(1) }}", "variables": ["q"]}))
