"""The semantic diff: each section in its own terms, and nothing reported that did not change."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from llmreg.bundle import Bundle
from llmreg.bundledir import load_bundle_dir
from llmreg.diff import diff_bundles, field_changes, text_diff
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
