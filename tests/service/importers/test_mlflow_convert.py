"""MLflow prompt versions to bundles: the conversion rules and their refusals, and the
one-transaction apply (an import lands whole or not at all)."""

from __future__ import annotations

import io
import json

import pytest

from llmreg.bundle.schema import Bundle
from llmreg.errors import (
    ConfigError,
    FloatingModelIdError,
    InvalidBundleError,
    TransitionError,
)
from llmreg.policy import Policy
from llmreg.service import RegistryService
from llmreg.service.importers import mlflow as m
from llmreg.service.importers.apply import ImportPlan, PlannedAlias, PlannedVersion
from llmreg.store import MemoryStore
from llmreg.types import Actor

POLICY = Policy.default()
CONFIG = json.dumps({"provider": "openai", "model_name": "gpt-4o-2024-08-06"})


def tags(text: object, kind: str = "text", **extra: str) -> dict[str, str]:
    return {m.PROMPT_TEXT: text if isinstance(text, str) else json.dumps(text),
            m.PROMPT_TYPE: kind, m.MODEL_CONFIG: CONFIG, **extra}


def manifest(t: dict[str, str], model_map: dict[str, str] | None = None,
             default: str | None = None) -> dict[str, object]:
    return m._prompt_manifest(t, model_map or {}, default, POLICY)


def test_literal_braces_stay_literal_and_render_like_mlflow() -> None:
    text = "{# not a comment #} {% not a tag %}? no: {{ 1 }} {x} {{ who }}}"
    source, variables = m.to_jinja(text.replace("{% not a tag %}", "%}"))
    assert variables == ["who"]
    out = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
                            "template": {"source": source, "variables": variables}}
                           ).render(who="Ana")
    assert out.turns[0]["content"] == "{# not a comment #} %}? no: {{ 1 }} {x} Ana}"


def test_refusals_name_the_fix() -> None:
    with pytest.raises(InvalidBundleError, match="rename it in MLflow"):
        m.to_jinja("{{ user.name }}")
    with pytest.raises(InvalidBundleError, match="endraw"):
        m.to_jinja("{{ a }} {# endraw #}")
    with pytest.raises(InvalidBundleError, match="not a prompt"):
        manifest({m.MODEL_CONFIG: CONFIG})


def test_a_chat_prompt_splits_into_system_examples_and_template() -> None:
    chat = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "{{ q }}"}]
    got = manifest(tags(chat, "chat"))
    assert got["system_prompt"] == "Be brief."
    assert got["few_shot"] == [{"input": "Hi", "output": "Hello"}]
    assert got["template"] == {"source": "{{ q }}", "variables": ["q"]}
    only_user = manifest(tags([{"role": "user", "content": "x"}], "chat"))
    assert "system_prompt" not in only_user and "few_shot" not in only_user


@pytest.mark.parametrize("chat, match", [
    ([], "list of"),
    ([{"role": "user", "content": [{"type": "image"}]}], "text messages only"),
    ([{"role": "system", "content": "{{ x }}"}, {"role": "user", "content": "y"}],
     "system message uses variables"),
    ([{"role": "system", "content": "s"}], "must end with a user message"),
    ([{"role": "assistant", "content": "a"}, {"role": "user", "content": "u"}],
     "user/assistant pairs"),
    ([{"role": "user", "content": "{{ a }}"}, {"role": "assistant", "content": "b"},
      {"role": "user", "content": "c"}], "only the last user message"),
])
def test_chat_shapes_llmreg_cannot_hold_are_refused(chat: list[object], match: str) -> None:
    with pytest.raises(InvalidBundleError, match=match):
        manifest(tags(chat, "chat"))


def test_the_model_section() -> None:
    cfg = {"model_name": "claude-sonnet-4-5-20250929", "temperature": 0.3,
           "stop_sequences": ["X"], "top_k": 5, "extra_params": {"a": 1}}
    got = manifest({**tags("x"), m.MODEL_CONFIG: json.dumps(cfg)})["model"]
    assert got == {"provider": "anthropic", "id": "claude-sonnet-4-5-20250929",
                   "parameters": {"temperature": 0.3, "stop": ["X"], "top_k": 5}}
    none = {m.PROMPT_TEXT: "x", m.PROMPT_TYPE: "text"}
    assert manifest(none, default="openai:gpt-4o-2024-08-06")["model"]["id"] == \
        "gpt-4o-2024-08-06"
    with pytest.raises(InvalidBundleError, match="--default-model"):
        manifest(none)
    with pytest.raises(InvalidBundleError, match="model_config.provider"):
        manifest({**tags("x"), m.MODEL_CONFIG: json.dumps({"model_name": "llama-3-8b"})})
    floating = {**tags("x"), m.MODEL_CONFIG: json.dumps({"provider": "openai",
                                                         "model_name": "gpt-4o"})}
    with pytest.raises(FloatingModelIdError, match="--model-map gpt-4o="):
        manifest(floating)
    assert manifest(floating, {"gpt-4o": "gpt-4o-2024-08-06"})["model"]["id"] == \
        "gpt-4o-2024-08-06"


def test_a_response_format_becomes_the_response_schema() -> None:
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    got = manifest(tags("x", **{m.RESPONSE_FORMAT: json.dumps(schema)}))
    assert got["response_schema"] == schema
    assert got["model"]["parameters"]["response_format"] == "json_schema"


def test_sinks_hash_and_store() -> None:
    from llmreg.service.blobs import Blobs

    blobs = Blobs(MemoryStore())
    data = b"x" * 3_000_000
    digest, size = m.blob_sink(blobs)(io.BytesIO(data))
    assert (digest, size) == m.hash_only(io.BytesIO(data)) and blobs.read(digest) == data
    reader = m._Reader(iter([b"ab", b"", b"cde"]))
    assert reader.read() == b"abcde"


def _bundle(text: str) -> Bundle:
    return Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
                             "template": {"source": text}})


def test_an_import_that_fails_halfway_writes_nothing(tmp_path: object) -> None:
    svc = RegistryService.open_home(tmp_path / "reg")  # type: ignore[operator]
    try:
        one, two = _bundle("one"), _bundle("two")
        plan = ImportPlan(source="test", versions=[
            PlannedVersion("qa", "prompts:/qa/1", one, "v1", {}),
            PlannedVersion("qa", "prompts:/qa/2", two, "v2", {})],
            aliases=[PlannedAlias("qa", "production", "production", two.digest, "r"),
                     PlannedAlias("qa", "staging", "staging", two.digest, "r")])
        report = svc.imports.apply(plan, actor=Actor("ana"))
        assert [v.version for v in report.versions] == [1, 2]
        assert [s.moved for s in report.slots] == [True, True]
        assert svc.versions.resolve("qa@2").parent_digest == one.digest
        before = len(svc.audit.entries())
        svc.lifecycle.archive("qa@1", actor=Actor("ana"))
        archived = len(svc.audit.entries())
        # A new version, then a move to an archived version: the whole plan rolls back.
        bad = ImportPlan(source="test", versions=[
            PlannedVersion("qa", "prompts:/qa/3", _bundle("three"), "v3", {})],
            aliases=[PlannedAlias("qa", "shadow", "shadow", one.digest, "r")])
        bad.versions.insert(0, PlannedVersion("qa", "prompts:/qa/1", one, "v1", {}))
        with pytest.raises(TransitionError, match="archived"):
            svc.imports.apply(bad, actor=Actor("ana"))
        assert [v.version for v in svc.versions.history("qa")] == [1, 2]
        assert len(svc.audit.entries()) == archived == before + 1
    finally:
        svc.close()


def test_a_plan_names_bad_alias_mappings() -> None:
    class NoServer(m.MlflowSource):
        def registered_models(self, *, prompts: bool) -> list[dict[str, object]]:
            raise AssertionError("the mapping is checked before anything is read")

    with pytest.raises(ConfigError, match="not an http"):
        m.MlflowSource("file:///tmp")
    src = NoServer("http://127.0.0.1:9")
    from llmreg.errors import UnknownEnvironmentError

    with pytest.raises(UnknownEnvironmentError, match="--map-aliases x=nowhere"):
        m.plan_mlflow(src, POLICY, map_aliases={"x": "nowhere"}, model_map={},
                      sink=m.hash_only)
    src.close()


def test_an_imported_move_records_each_gate_of_the_transition_as_bypassed(
        tmp_path: object) -> None:
    from llmreg.policy import parse_policy

    policy = parse_policy(
        "version: 1\nenvironments: {staging: {}, production: {}}\ntransitions:\n"
        "  - from: registered\n    to: production\n    gates:\n"
        "      evals: [{suite: regression, metrics: {accuracy: {min: 0.9}}},\n"
        "              {suite: safety, metrics: {refusals: {max: 0.1}}}]\n"
        "      shadow_metrics: {error_rate: {max: 0.01}}\n"
        "      approvals: {count: 2}\n", source="test")
    svc = RegistryService.open_home(tmp_path / "reg", policy=policy)  # type: ignore[operator]
    try:
        one = _bundle("one")
        plan = ImportPlan(source="test", versions=[
            PlannedVersion("qa", "prompts:/qa/1", one, "v1", {})],
            aliases=[PlannedAlias("qa", "production", "production", one.digest, "why"),
                     PlannedAlias("qa", "staging", "staging", one.digest, "why")])
        svc.imports.apply(plan, actor=Actor("ana"))
        gates = {s.env: [(g.gate, g.passed) for g in s.gates]
                 for s in svc.slots.status("qa")}
        assert gates["production"] == [
            ("bypassed-by-import", True), ("eval:regression (bypassed-by-import)", False),
            ("eval:safety (bypassed-by-import)", False),
            ("shadow-metrics (bypassed-by-import)", False),
            ("approvals (bypassed-by-import)", False)]
        # qa@1 is in production by then, and the policy has no production -> staging.
        assert gates["staging"] == [("bypassed-by-import", True),
                                    ("transition (bypassed-by-import)", False)]
    finally:
        svc.close()
