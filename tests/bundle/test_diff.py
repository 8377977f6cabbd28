"""The semantic diff: each section in its own terms, and nothing reported that did not change."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from llmreg.bundle.diff import diff_bundles, field_changes, text_diff
from llmreg.bundle.directory import load_bundle_dir
from llmreg.bundle.schema import Bundle
from tests.conftest import EXAMPLES


def summariser() -> dict[str, Any]:
    bundle, _ = load_bundle_dir(EXAMPLES / "meeting-summariser")
    data: dict[str, Any] = bundle.model_dump(mode="json", exclude_defaults=True)
    data["few_shot"].append({"input": "Standup: nothing new.", "output": "No decisions."})
    return data


def the_issue_change(data: dict[str, Any]) -> dict[str, Any]:
    """Model snapshot, one temperature, two prompt lines, +1/-1 example, a reordered pair."""
    new = copy.deepcopy(data)
    new["model"]["id"] = "claude-3-7-sonnet-20250219"
    new["model"]["parameters"]["temperature"] = 0.7
    new["system_prompt"] = (new["system_prompt"]
                            .replace("for busy colleagues", "for colleagues")
                            .replace("Do not add", "Never add"))
    fs = new["few_shot"]
    fs[0], fs[1] = fs[1], fs[0]          # a reordered pair
    del fs[2]                            # one removed
    fs.append({"input": "Retro: keep the Friday demo.", "output": "Decision: keep it."})
    return new


def test_the_issue_scenario_reports_exactly_what_changed() -> None:
    old_data = summariser()
    old, new = Bundle.from_dict(old_data), Bundle.from_dict(the_issue_change(old_data))
    d = diff_bundles(old, new).to_json()
    assert d["identical"] is False
    assert d["model"] == {
        "provider": None, "weights": None, "weights_artifacts": [],
        "pin": {"old": "claude-sonnet-4-5-20250929", "new": "claude-3-7-sonnet-20250219"},
        "parameters": [{"path": "temperature", "kind": "changed", "old": 0.3, "new": 0.7}],
    }
    prompt = d["system_prompt"]
    assert (prompt["added"], prompt["removed"]) == (2, 2)
    assert [line for line in prompt["lines"] if line[:1] in "+-"] == [
        "-You write meeting summaries for busy colleagues who did not attend.",
        "+You write meeting summaries for colleagues who did not attend.",
        "-Use the participants' names as they appear in the transcript. Do not add",
        "+Use the participants' names as they appear in the transcript. Never add",
    ]
    fs = d["few_shot"]
    assert [a["example"]["input"] for a in fs["added"]] == ["Retro: keep the Friday demo."]
    assert len(fs["removed"]) == 1
    assert fs["removed"][0]["example"]["input"]["audience"] == "engineering"
    assert fs["modified"] == []
    assert fs["reordered"] is True
    # Nothing else.
    assert d["template"] is None and d["kind"] is None
    for section in ("tools", "response_schema", "retrieval", "postprocess", "artifacts"):
        assert d[section] == [], section
    assert diff_bundles(old, new).stat() == [
        "model: pin claude-sonnet-4-5-20250929 -> claude-3-7-sonnet-20250219, "
        "1 parameter changed",
        "system_prompt: +2 -2 lines",
        "few_shot: +1 -1 ~0, reordered",
    ]


def test_identical_bundles() -> None:
    a = Bundle.from_dict(summariser())
    d = diff_bundles(a, Bundle.from_dict(summariser()))
    assert d.identical and d.stat() == [] and d.model is None


def test_few_shot_modified_by_input_or_output_and_duplicates() -> None:
    data = summariser()
    new = copy.deepcopy(data)
    new["few_shot"][0]["output"] += "\nExtra line."
    new["few_shot"][3]["input"] = "Standup: one blocker."
    d = diff_bundles(Bundle.from_dict(data), Bundle.from_dict(new)).few_shot
    assert d is not None
    assert [(m.old_index, m.matched_by) for m in d.modified] == [(0, "input"), (3, "output")]
    assert d.modified[0].output is not None and d.modified[0].output.added == 1
    assert d.modified[1].input[0].new == "Standup: one blocker."
    assert d.added == [] and d.removed == [] and d.reordered is False
    # A duplicated example is one addition, not a reordering.
    dup = copy.deepcopy(data)
    dup["few_shot"].append(dup["few_shot"][0])
    d2 = diff_bundles(Bundle.from_dict(data), Bundle.from_dict(dup)).few_shot
    assert d2 is not None and len(d2.added) == 1 and not d2.reordered


def test_template_variables_and_source() -> None:
    data = summariser()
    new = copy.deepcopy(data)
    new["template"]["source"] += "Language: {{ language }}\n"
    new["template"]["variables"].append("language")
    for ex in new["few_shot"]:
        if isinstance(ex["input"], dict):
            ex["input"]["language"] = "en"
    d = diff_bundles(Bundle.from_dict(data), Bundle.from_dict(new))
    assert d.template is not None
    assert d.template.variables_added == ["language"]
    assert d.template.source is not None and d.template.source.added == 1
    assert d.few_shot is not None
    assert [c.path for m in d.few_shot.modified for c in m.input] == ["input.language"] * 3


def test_retrieval_tools_postprocess_artifacts_field_by_field() -> None:
    rag, _ = load_bundle_dir(EXAMPLES / "support-rag")
    data = rag.model_dump(mode="json", exclude_defaults=True)
    data["tools"] = [{"name": "open_ticket", "parameters": {"type": "object"}}]
    new = copy.deepcopy(data)
    new["retrieval"]["index"]["version"] = "2026-11-20"
    new["retrieval"]["top_k"] = 12
    del new["retrieval"]["reranker"]
    new["tools"][0]["parameters"] = {"type": "object", "required": ["summary"]}
    new["postprocess"] = [{"type": "truncate", "max_chars": 2000}, {"type": "strip"},
                          {"type": "regex_extract", "pattern": "(.*)", "group": 1}]
    d = diff_bundles(Bundle.from_dict(data), Bundle.from_dict(new))
    assert [(c.path, c.kind, c.old, c.new) for c in d.retrieval if c.path != "reranker"] == [
        ("index.version", "changed", "2026-11-02", "2026-11-20"),
        ("top_k", "changed", 8, 12),
    ]
    assert [c.kind for c in d.retrieval if c.path == "reranker"] == ["removed"]
    assert [(c.path, c.kind) for c in d.tools] == [("tools[open_ticket].parameters.required",
                                                   "added")]
    kinds = sorted((s.kind, s.type) for s in d.postprocess)
    assert kinds == [("changed", "truncate"), ("inserted", "regex_extract")]
    changed = next(s for s in d.postprocess if s.kind == "changed")
    assert (changed.old_index, changed.new_index) == (1, 0)
    assert [(c.path, c.old, c.new) for c in changed.fields] == [("max_chars", 4000, 2000)]
    # A pure swap is one move.
    swap = copy.deepcopy(data)
    swap["postprocess"].reverse()
    moved = diff_bundles(Bundle.from_dict(data), Bundle.from_dict(swap)).postprocess
    assert [(s.kind, s.type) for s in moved] == [("moved", "truncate")]


def test_artifact_swap() -> None:
    base = {"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
            "template": {"source": "x"}}
    art = {"name": "adapter", "media_type": "application/octet-stream",
           "digest": "sha256:" + "a" * 64, "size": 10}
    a = Bundle.from_dict({**base, "artifacts": [art]})
    b = Bundle.from_dict({**base, "artifacts": [{**art, "digest": "sha256:" + "b" * 64,
                                                "size": 12}]})
    (swap,) = diff_bundles(a, b).artifacts
    assert (swap.kind, swap.old_size, swap.new_size, swap.fields) == ("swapped", 10, 12, [])


def test_helpers() -> None:
    assert text_diff("same", "same") is None
    assert field_changes({"a": 1}, {"a": 1}) == []
    assert field_changes(None, {"a": 1})[0].kind == "added"


@pytest.mark.parametrize("n", [0, 1, 50])
def test_large_reorders_are_one_flag(n: int) -> None:
    data = summariser()
    data["few_shot"] += [{"input": f"q{i}", "output": f"a{i}"} for i in range(n)]
    new = copy.deepcopy(data)
    new["few_shot"].reverse()
    d = diff_bundles(Bundle.from_dict(data), Bundle.from_dict(new)).few_shot
    assert d is not None and d.reordered and not d.added and not d.removed and not d.modified


# --- every section, compared in full ---------------------------------------------------

A, B, C = ("sha256:" + x * 64 for x in "abc")


def llm(**overrides: Any) -> Bundle:
    data: dict[str, Any] = {"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
                            "template": {"source": "Q: {{ q }}", "variables": ["q"]}}
    data.update(overrides)
    return Bundle.from_dict(data)


def weights(*artifacts: dict[str, Any]) -> Bundle:
    return Bundle.from_dict({"kind": "weights", "artifacts": list(artifacts)})


def art(name: str, digest: str, size: int, **more: Any) -> dict[str, Any]:
    return {"name": name, "media_type": "application/octet-stream", "digest": digest,
            "size": size, **more}


def test_model_provider_weights_and_parameters() -> None:
    old = llm(model={"provider": "openai", "id": "gpt-4o-2024-08-06",
                     "parameters": {"temperature": 0.2, "seed": 7, "stop": ["\n"]}})
    new = llm(model={"provider": "self-hosted", "id": "llama-ft", "weights": B,
                     "parameters": {"temperature": 0.5, "max_tokens": 300, "stop": ["\n"]}})
    d = diff_bundles(old, new)
    assert d.to_json()["model"] == {
        "provider": {"old": "openai", "new": "self-hosted"},
        "pin": {"old": "gpt-4o-2024-08-06", "new": "llama-ft"},
        "weights": {"old": "None", "new": B},
        "weights_artifacts": [],
        "parameters": [
            {"path": "max_tokens", "kind": "added", "old": None, "new": 300},
            {"path": "seed", "kind": "removed", "old": 7, "new": None},
            {"path": "temperature", "kind": "changed", "old": 0.2, "new": 0.5},
        ],
    }
    assert d.stat() == ["model: provider openai -> self-hosted, pin gpt-4o-2024-08-06 -> "
                        "llama-ft, weights None -> sha256:bbbbbbbbbbbb, 3 parameters changed"]


def test_weights_are_followed_when_the_registry_can_load_them() -> None:
    wa = weights(art("model.safetensors", A, 10), art("tokenizer.json", C, 3))
    wb = weights(art("model.safetensors", B, 12), art("tokenizer.json", C, 3))
    loaded = {wa.digest: wa, wb.digest: wb}
    old = llm(model={"provider": "self-hosted", "id": "llama-ft", "weights": wa.digest})
    new = llm(model={"provider": "self-hosted", "id": "llama-ft", "weights": wb.digest})
    d = diff_bundles(old, new, loaded.__getitem__)
    assert d.model is not None and d.model.pin is None and d.model.provider is None
    assert d.model.weights is not None
    assert (d.model.weights.old, d.model.weights.new) == (wa.digest, wb.digest)
    assert [a.model_dump() for a in d.model.weights_artifacts] == [{
        "name": "model.safetensors", "kind": "swapped", "old_digest": A, "new_digest": B,
        "old_size": 10, "new_size": 12, "fields": []}]
    assert d.stat() == [f"model: weights {wa.digest[:19]} -> {wb.digest[:19]}"]
    assert diff_bundles(old, new).model.weights_artifacts == []  # type: ignore[union-attr]


def test_only_parameters_changed_is_one_line() -> None:
    d = diff_bundles(llm(), llm(model={"provider": "openai", "id": "gpt-4o-2024-08-06",
                                       "parameters": {"top_p": 0.5}}))
    assert d.model is not None and (d.model.provider, d.model.pin, d.model.weights) == (
        None, None, None)
    assert d.stat() == ["model: 1 parameter changed"]


def test_kind_and_artifacts_in_full() -> None:
    old = weights(art("a.bin", A, 1), art("b.bin", B, 2), art("c.bin", C, 3, annotations={
        "license": "mit"}), art("d.bin", A, 4))
    new = weights(art("b.bin", C, 5, media_type="application/x-npy"), art("c.bin", C, 3,
                  annotations={"license": "apache-2.0"}), art("d.bin", A, 4), art("e.bin", B, 6))
    d = diff_bundles(old, new)
    assert d.kind is None and d.model is None
    assert d.to_json()["artifacts"] == [
        {"name": "a.bin", "kind": "removed", "old_digest": A, "new_digest": None,
         "old_size": 1, "new_size": None, "fields": []},
        {"name": "b.bin", "kind": "swapped", "old_digest": B, "new_digest": C,
         "old_size": 2, "new_size": 5, "fields": [
             {"path": "media_type", "kind": "changed", "old": "application/octet-stream",
              "new": "application/x-npy"}]},
        {"name": "c.bin", "kind": "changed", "old_digest": None, "new_digest": None,
         "old_size": None, "new_size": None, "fields": [
             {"path": "annotations.license", "kind": "changed", "old": "mit",
              "new": "apache-2.0"}]},
        {"name": "e.bin", "kind": "added", "old_digest": None, "new_digest": B,
         "old_size": None, "new_size": 6, "fields": []},
    ]
    assert d.stat() == ["artifacts: a.bin removed, b.bin swapped, c.bin changed, e.bin added"]
    both = diff_bundles(llm(), weights(art("a.bin", A, 1)))
    assert both.kind is not None and (both.kind.old, both.kind.new) == ("llm", "weights")
    assert both.stat()[0] == "kind: llm -> weights"
    assert both.to_json()["kind"] == {"old": "llm", "new": "weights"}
    assert both.to_json()["schema"] == "llmreg.diff/v1" and "schema_" not in both.to_json()


def test_tools_added_removed_and_changed() -> None:
    def tool(name: str, **more: Any) -> dict[str, Any]:
        return {"name": name, "parameters": {"type": "object"}, **more}

    old = llm(tools=[tool("close"), tool("search", description="find")])
    new = llm(tools=[tool("search", description="look up"), tool("tag")])
    d = diff_bundles(old, new)
    assert d.to_json()["tools"] == [
        {"path": "tools[close]", "kind": "removed", "new": None,
         "old": {"name": "close", "description": "", "parameters": {"type": "object"}}},
        {"path": "tools[search].description", "kind": "changed", "old": "find",
         "new": "look up"},
        {"path": "tools[tag]", "kind": "added", "old": None,
         "new": {"name": "tag", "description": "", "parameters": {"type": "object"}}},
    ]
    assert d.stat() == ["tools: 3 fields changed"]
    one = diff_bundles(old, llm(tools=[tool("close"), tool("search", description="x")]))
    assert one.stat() == ["tools: 1 field changed"]


def test_response_schema_and_retrieval_field_by_field() -> None:
    obj = {"type": "object", "properties": {"label": {"type": "string"}}}
    d = diff_bundles(llm(), llm(response_schema=obj))
    assert d.to_json()["response_schema"] == [
        {"path": "(whole)", "kind": "added", "old": None, "new": obj}]
    d = diff_bundles(llm(response_schema=obj), llm())
    assert d.to_json()["response_schema"] == [
        {"path": "(whole)", "kind": "removed", "old": obj, "new": None}]
    assert d.stat() == ["response_schema: 1 field changed"]
    other = {"type": "object", "properties": {"label": {"type": "integer"}}}
    d = diff_bundles(llm(response_schema=obj), llm(response_schema=other))
    assert [(c.path, c.kind, c.old, c.new) for c in d.response_schema] == [
        ("properties.label.type", "changed", "string", "integer")]


def test_field_changes_of_non_objects() -> None:
    assert [c.model_dump() for c in field_changes([1], [2], "steps")] == [
        {"path": "steps", "kind": "changed", "old": [1], "new": [2]}]
    assert [c.model_dump() for c in field_changes("a", None)] == [
        {"path": "(whole)", "kind": "removed", "old": "a", "new": None}]
    assert [c.model_dump() for c in field_changes({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}]},
                                                  "x")] == [
        {"path": "x.a[1].b", "kind": "changed", "old": 2, "new": 3}]
    assert [c.model_dump() for c in field_changes({"a": 1, "b": 2}, {"b": 2, "c": None})] == [
        {"path": "a", "kind": "removed", "old": 1, "new": None},
        {"path": "c", "kind": "added", "old": None, "new": None}]


def test_text_diff_context_and_counts() -> None:
    old = "".join(f"line {i}\n" for i in range(1, 13))
    new = old.replace("line 6\n", "line six\n")
    d = text_diff(old, new)
    assert d is not None and (d.added, d.removed) == (1, 1)
    assert d.lines == ["@@ -3,7 +3,7 @@", " line 3", " line 4", " line 5", "-line 6",
                       "+line six", " line 7", " line 8", " line 9"]
    one = text_diff(old, new, context=1)
    assert one is not None and one.lines == ["@@ -5,3 +5,3 @@", " line 5", "-line 6",
                                             "+line six", " line 7"]
    assert text_diff("a\n", "") == TextDiffOf(["@@ -1 +0,0 @@", "-a"], 0, 1)


def TextDiffOf(lines: list[str], added: int, removed: int) -> Any:  # noqa: N802
    from llmreg.bundle.diff import TextDiff

    return TextDiff(added=added, removed=removed, lines=lines)


def test_template_source_and_variables() -> None:
    old = llm(template={"source": "Q: {{ q }} {{ lang }}", "variables": ["q", "lang"]})
    new = llm(template={"source": "Q: {{ q }} {{ tone }}", "variables": ["q", "tone"]})
    d = diff_bundles(old, new)
    assert d.to_json()["template"] == {
        "source": {"added": 1, "removed": 1, "lines": [
            "@@ -1 +1 @@", "-Q: {{ q }} {{ lang }}", "+Q: {{ q }} {{ tone }}"]},
        "variables_added": ["tone"], "variables_removed": ["lang"]}
    assert d.stat() == ["template: +1 -1 lines, +var tone, -var lang"]
    only_vars = diff_bundles(llm(template={"source": "x", "variables": ["q"]}),
                             llm(template={"source": "x", "variables": []}))
    assert only_vars.template is not None and only_vars.template.source is None
    assert only_vars.stat() == ["template: -var q"]
    wa = weights(art("a.bin", A, 1))
    to_weights = diff_bundles(llm(), wa)
    assert to_weights.template is not None
    assert to_weights.template.variables_removed == ["q"]
    assert to_weights.template.source is not None
    assert to_weights.template.source.lines == ["@@ -1 +0,0 @@", "-Q: {{ q }}"]
    from_weights = diff_bundles(wa, llm())
    assert from_weights.template is not None
    assert from_weights.template.variables_added == ["q"]
    assert from_weights.template.source is not None
    assert from_weights.template.source.lines == ["@@ -0,0 +1 @@", "+Q: {{ q }}"]
    assert from_weights.to_json()["model"]["provider"] == {"old": "None", "new": "openai"}


def test_system_prompt_stat() -> None:
    d = diff_bundles(llm(system_prompt="a\nb\n"), llm(system_prompt="a\nc\nd\n"))
    assert d.stat() == ["system_prompt: +2 -1 lines"]


def test_few_shot_in_full() -> None:
    tpl = {"source": "{{ q }} {{ lang }}", "variables": ["q", "lang"]}
    old = llm(template=tpl, few_shot=[
        {"input": {"q": "hi", "lang": "en"}, "output": "hello"},
        {"input": {"q": "bye", "lang": "en"}, "output": "goodbye"},
        {"input": {"q": "x", "lang": "fr"}, "output": "same output"},
        {"input": {"q": "gone", "lang": "en"}, "output": "removed"},
    ])
    new = llm(template=tpl, few_shot=[
        # the same content with its keys in another order is the same example
        {"input": {"lang": "en", "q": "hi"}, "output": "hello"},
        {"input": {"q": "bye", "lang": "en"}, "output": "see you\nlater"},
        {"input": {"q": "y", "lang": "fr"}, "output": "same output"},
        {"input": {"q": "new", "lang": "en"}, "output": "added"},
    ])
    fs = diff_bundles(old, new).to_json()["few_shot"]
    assert fs == {
        "added": [{"index": 3, "example": {"input": {"q": "new", "lang": "en"},
                                           "output": "added"}}],
        "removed": [{"index": 3, "example": {"input": {"q": "gone", "lang": "en"},
                                             "output": "removed"}}],
        "modified": [
            {"old_index": 1, "new_index": 1, "matched_by": "input",
             "old": {"input": {"q": "bye", "lang": "en"}, "output": "goodbye"},
             "new": {"input": {"q": "bye", "lang": "en"}, "output": "see you\nlater"},
             "output": {"added": 2, "removed": 1,
                        "lines": ["@@ -1 +1,2 @@", "-goodbye", "+see you", "+later"]},
             "input": []},
            {"old_index": 2, "new_index": 2, "matched_by": "output",
             "old": {"input": {"q": "x", "lang": "fr"}, "output": "same output"},
             "new": {"input": {"q": "y", "lang": "fr"}, "output": "same output"},
             "output": None,
             "input": [{"path": "input.q", "kind": "changed", "old": "x", "new": "y"}]},
        ],
        "reordered": False, "old_count": 4, "new_count": 4,
    }


def test_few_shot_text_inputs_matched_by_output() -> None:
    old = llm(few_shot=[{"input": "what is 2+2", "output": "4"}])
    new = llm(few_shot=[{"input": "what is two plus two", "output": "4"}])
    fs = diff_bundles(old, new).few_shot
    assert fs is not None
    assert [c.model_dump() for c in fs.modified[0].input] == [
        {"path": "input", "kind": "changed", "old": "what is 2+2",
         "new": "what is two plus two"}]
    assert fs.modified[0].output is None
    # A text input that became variables is a change of the whole input.
    mixed = diff_bundles(old, llm(few_shot=[{"input": {"q": "2+2"}, "output": "4"}])).few_shot
    assert mixed is not None
    assert [c.model_dump() for c in mixed.modified[0].input] == [
        {"path": "input", "kind": "changed", "old": "what is 2+2", "new": {"q": "2+2"}}]


def test_postprocess_in_full() -> None:
    old = llm(postprocess=[{"type": "strip"}, {"type": "truncate", "max_chars": 100},
                           {"type": "regex_extract", "pattern": "a"}])
    new = llm(postprocess=[{"type": "truncate", "max_chars": 100}, {"type": "strip"},
                           {"type": "regex_extract", "pattern": "b"},
                           {"type": "json_parse"}])
    d = diff_bundles(old, new)
    assert [s.model_dump() for s in d.postprocess] == [
        # the longest common subsequence keeps strip in place: truncate is the one moved
        {"kind": "moved", "type": "truncate", "old_index": 1, "new_index": 0, "fields": []},
        {"kind": "changed", "type": "regex_extract", "old_index": 2, "new_index": 2,
         "fields": [{"path": "pattern", "kind": "changed", "old": "a", "new": "b"}]},
        {"kind": "inserted", "type": "json_parse", "old_index": None, "new_index": 3,
         "fields": []},
    ]
    assert d.stat() == ["postprocess: 1 moved, 1 changed, 1 inserted"]
    gone = diff_bundles(new, llm(postprocess=[{"type": "strip"}]))
    assert [(s.kind, s.type, s.old_index, s.new_index) for s in gone.postprocess] == [
        ("removed", "truncate", 0, None), ("removed", "regex_extract", 2, None),
        ("removed", "json_parse", 3, None)]


STRIP, STRIP_X = {"type": "strip"}, {"type": "strip", "chars": "x"}
TRUNC, TRUNC_50 = {"type": "truncate", "max_chars": 100}, {"type": "truncate", "max_chars": 50}
REGEX_A = {"type": "regex_extract", "pattern": "a"}


@pytest.mark.parametrize(("old", "new", "steps"), [
    # removed steps sort by their old place among the others' new places
    ([STRIP_X, TRUNC, REGEX_A], [REGEX_A, TRUNC_50],
     [("removed", "strip", 0, None), ("changed", "truncate", 1, 1)]),
    ([STRIP, TRUNC, REGEX_A], [STRIP, TRUNC_50],
     [("changed", "truncate", 1, 1), ("removed", "regex_extract", 2, None)]),
    # a step with no counterpart does not stop the search for moves after it
    ([STRIP_X, STRIP, TRUNC], [TRUNC, STRIP],
     [("moved", "truncate", 2, 0), ("removed", "strip", 0, None)]),
])
def test_postprocess_order_of_changes(old: list[dict[str, Any]], new: list[dict[str, Any]],
                                      steps: list[tuple[Any, ...]]) -> None:
    d = diff_bundles(llm(postprocess=old), llm(postprocess=new))
    assert [(s.kind, s.type, s.old_index, s.new_index) for s in d.postprocess] == steps


def test_a_long_pipeline_is_matched_by_content() -> None:
    # difflib's "autojunk" would treat a step repeated 200 times as noise.
    d = diff_bundles(llm(postprocess=[STRIP] * 200 + [TRUNC]),
                     llm(postprocess=[TRUNC] + [STRIP] * 200))
    assert [(s.kind, s.type, s.old_index, s.new_index) for s in d.postprocess] == [
        ("moved", "truncate", 200, 0)]


def test_stat_counts_each_kind_of_step_and_few_shot_change() -> None:
    d = diff_bundles(llm(postprocess=[STRIP, TRUNC, REGEX_A]), llm())
    assert d.stat() == ["postprocess: 3 removed"]
    d = diff_bundles(llm(few_shot=[{"input": "a", "output": "1"}]),
                     llm(few_shot=[{"input": "a", "output": "2"}, {"input": "b", "output": "3"}]))
    assert d.stat() == ["few_shot: +1 -0 ~1"]
