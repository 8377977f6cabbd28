"""The post-processing step library."""

from __future__ import annotations

import pytest

from llmreg.bundle.directory import load_bundle_dir
from llmreg.bundle.schema import Postprocess
from llmreg.errors import PostprocessError
from tests.conftest import EXAMPLES


def steps(*raw: dict[str, object]) -> Postprocess:
    return Postprocess.model_validate(list(raw))


def test_classifier_output_is_parsed_and_validated() -> None:
    bundle, _ = load_bundle_dir(EXAMPLES / "ticket-classifier")
    ok = '```json\n{"category": "billing", "priority": "high", "confidence": 0.9}\n```\n'
    assert bundle.postprocess(ok) == {"category": "billing", "priority": "high",
                                      "confidence": 0.9}
    with pytest.raises(PostprocessError, match=r"postprocess\[2\].*category"):
        bundle.postprocess('{"category": "food", "priority": "high", "confidence": 0.9}')
    with pytest.raises(PostprocessError, match=r"postprocess\[1\] json_parse: output is not JSON"):
        bundle.postprocess("I think it's billing")


def test_regex_extract_required_and_optional() -> None:
    required = steps({"type": "regex_extract", "pattern": r"<a>(.*)</a>", "group": 1})
    assert required("x <a>yes</a> y") == "yes"
    with pytest.raises(PostprocessError, match="did not match"):
        required("nothing")
    optional = steps({"type": "regex_extract", "pattern": "<a>(.*)", "group": 1,
                      "required": False})
    assert optional("plain") == "plain"
    named = steps({"type": "regex_extract", "pattern": r"(?P<n>\d+)", "group": "n"})
    assert named("n = 42") == "42"


def test_strip_truncate_and_flags() -> None:
    pipeline = steps({"type": "strip", "chars": "* "},
                     {"type": "regex_extract", "pattern": "^answer: (.*)$", "group": 1,
                      "flags": ["IGNORECASE", "MULTILINE"]},
                     {"type": "truncate", "max_chars": 3})
    assert pipeline("** intro\nANSWER: abcdef **") == "abc"
