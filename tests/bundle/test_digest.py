"""Canonical form and digests: what must and must not change a digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmreg.bundle import digest
from llmreg.bundle.directory import load_bundle_dir
from llmreg.bundle.parse import _FLOAT_12
from llmreg.bundle.schema import Bundle
from llmreg.errors import InvalidRefError
from tests.conftest import EXAMPLE_NAMES, EXAMPLES

# Pinned: a change to canonicalisation (or to an example) must be deliberate.
PINNED = {
    "meeting-summariser": "sha256:e53e5a860b591015b4871751790ba13049ed36098f9d4f372901549d5ff3f8bf",
    "support-rag": "sha256:fc642496b119fcc21d99e06277502e79b52ce38c31160272b3967a42be5b0b15",
    "ticket-classifier": "sha256:75720cf65d5ec89430448dcdceda7ed2537dada079f02f8cf6aea18a095692b7",
}


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_digests_are_pinned(name: str) -> None:
    bundle, _ = load_bundle_dir(EXAMPLES / name)
    assert bundle.digest == PINNED[name]
    assert digest.digest_bytes(bundle.canonical_bytes()) == PINNED[name]


def test_canonical_json_is_rfc8785() -> None:
    assert digest.canonical_json({"b": [1.0, 2.5], "a": "é", "c": None}) == (
        b'{"a":"\xc3\xa9","b":[1,2.5],"c":null}'
    )


def test_compact_json_is_sorted_compact_utf8_and_refuses_nan() -> None:
    # Keys sorted at every level, no spaces, UTF-8 rather than \u escapes; unlike
    # canonical_json it keeps Python's float form (1.0, not 1).
    assert digest.compact_json({"b": [1.0, "é"], "a": {"d": None, "c": 2}}) == (
        '{"a":{"c":2,"d":null},"b":[1.0,"é"]}'.encode()
    )
    with pytest.raises(ValueError):
        digest.compact_json({"x": float("nan")})


def test_short_and_prefix() -> None:
    d = "sha256:" + "0123456789ab" + "f" * 52
    assert digest.short(d) == "0123456789ab"
    assert digest.parse_prefix("sha256:0123456") == "0123456"
    assert digest.parse_prefix("0123456789AB") == "0123456789ab"
    assert digest.parse_prefix("012345") is None  # too short to be unique in practice
    with pytest.raises(InvalidRefError, match="64 lowercase hex"):
        digest.check_digest("sha256:abc")


# --- properties --------------------------------------------------------------------

# YAML itself reads U+0085, U+2028 and U+2029 as line breaks (docs/bundle-directory.md),
# so text holding them belongs in a file, not inline YAML; the generator leaves them out.
text = st.text(st.characters(blacklist_categories=("Cs",),
                             blacklist_characters="\r\x85\u2028\u2029"), max_size=40)
lines = st.lists(text.filter(lambda s: "\n" not in s), min_size=1, max_size=5)


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, Any]:
    variables = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
                              max_size=3, unique=True))
    source = " ".join("{{ " + v + " }}" for v in variables) + draw(text).replace("{", "(")
    data: dict[str, Any] = {
        "model": {
            "provider": "anthropic",
            "id": draw(st.sampled_from(["claude-3-5-sonnet-20241022",
                                        "claude-sonnet-4-5-20250929"])),
            "parameters": draw(st.fixed_dictionaries({
                "max_tokens": st.integers(1, 100_000),  # anthropic requires it
            }, optional={
                "temperature": st.floats(0, 1, allow_nan=False),
                "stop": st.lists(text, max_size=3),
                "top_k": st.integers(1, 500),
            })),
        },
        "system_prompt": "\n".join(draw(lines)),
        "template": {"source": source or "x", "variables": variables},
        "few_shot": [
            {"input": "\n".join(draw(lines)), "output": draw(text)}
            for _ in range(draw(st.integers(0, 3)))
        ],
    }
    return data


def _shuffle(value: Any, rnd: Any) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: _shuffle(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [_shuffle(v, rnd) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    """PyYAML's dumper (YAML 1.1) with llmreg's YAML 1.2 floats: a string such as ``0e0``
    or ``1E5`` is quoted, as llmreg's loader would otherwise read it as a number."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def _crlf(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\n", "\r\n")
    if isinstance(value, dict):
        return {k: _crlf(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_crlf(v) for v in value]
    return value


@settings(max_examples=60, deadline=None)
@given(manifests(), st.randoms())
def test_key_order_and_line_endings_never_change_the_digest(data: dict[str, Any], rnd: Any) -> None:
    base = Bundle.from_dict(data).digest
    assert Bundle.from_dict(_shuffle(data, rnd)).digest == base
    # Prose (prompt, template, examples) is normalised; parameters such as stop
    # sequences are values, where "\r\n" and "\n" differ, so they stay as written.
    prose_crlf = {**_crlf(data), "model": data["model"]}
    assert Bundle.from_dict(prose_crlf).digest == base


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(manifests(), st.randoms(), st.integers(1, 6))
def test_yaml_json_whitespace_and_crlf_files_give_one_digest(
    tmp_path: Path, data: dict[str, Any], rnd: Any, indent: int
) -> None:
    base = Bundle.from_dict(data).digest
    as_json = tmp_path / "j"
    as_yaml = tmp_path / "y"
    for folder in (as_json, as_yaml):
        folder.mkdir(exist_ok=True)
    (as_json / "llmreg.json").write_text(json.dumps(_shuffle(data, rnd), indent=indent))
    # YAML with the system prompt in its own file, written with CRLF endings and a BOM.
    ydata = _shuffle(data, rnd)
    (as_yaml / "system.md").write_bytes(
        b"\xef\xbb\xbf" + data["system_prompt"].replace("\n", "\r\n").encode())
    ydata["system_prompt"] = {"file": "system.md"}
    (as_yaml / "llmreg.yaml").write_text(yaml.dump(ydata, Dumper=_Dumper, indent=indent + 1,
                                                   sort_keys=False, allow_unicode=True))
    assert load_bundle_dir(as_json)[0].digest == base
    assert load_bundle_dir(as_yaml)[0].digest == base


@settings(max_examples=60, deadline=None)
@given(manifests(), st.data())
def test_any_change_of_content_changes_the_digest(data: dict[str, Any], draw: Any) -> None:
    base = Bundle.from_dict(data)
    which = draw.draw(st.sampled_from(["system", "model", "temperature", "example", "template"]))
    changed = json.loads(json.dumps(data))
    if which == "system":
        changed["system_prompt"] += draw.draw(st.text(min_size=1, max_size=5).filter(
            lambda s: s.replace("\r", "") != ""))
    elif which == "model":
        changed["model"]["id"] = ("claude-3-5-haiku-20241022")
    elif which == "temperature":
        old = changed["model"]["parameters"].get("temperature")
        changed["model"]["parameters"]["temperature"] = 0.5 if old != 0.5 else 0.25
    elif which == "example":
        changed["few_shot"].append({"input": "new", "output": "example"})
    else:
        changed["template"]["source"] += " more"
    assert Bundle.from_dict(changed).digest != base.digest


def test_defaults_are_not_part_of_the_digest() -> None:
    plain = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
                              "template": {"source": "x"}})
    explicit = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06",
                                           "parameters": {}},
                                 "template": {"source": "x", "variables": []},
                                 "few_shot": [], "postprocess": [], "system_prompt": ""})
    assert plain.digest == explicit.digest
    assert json.loads(plain.canonical_bytes()) == {
        "kind": "llm", "schema": "llmreg.bundle/v1",
        "model": {"id": "gpt-4o-2024-08-06", "provider": "openai"},
        "template": {"source": "x"},
    }


@pytest.mark.parametrize(("value", "why"), [
    ({"x": float("nan")}, "content cannot be canonicalised as JSON: "),
    ({"x": {1, 2}}, "content cannot be canonicalised as JSON: "),
    ({1: "non-string key"}, "content cannot be canonicalised as JSON: "),
])
def test_canonical_json_refuses_what_json_cannot_say(value: Any, why: str) -> None:
    from llmreg.errors import InvalidBundleError

    with pytest.raises(InvalidBundleError) as info:
        digest.canonical_json(value)
    assert str(info.value).startswith(why)
    assert len(str(info.value)) > len(why)  # the library's reason follows


def test_check_digest_names_the_field() -> None:
    good = "sha256:" + "0" * 64
    assert digest.check_digest(good) == good
    expected = ("{} 'sha256:ABC' is not a digest; expected 'sha256:' followed by 64 lowercase "
                "hex digits")
    with pytest.raises(InvalidRefError) as info:
        digest.check_digest("sha256:ABC")
    assert str(info.value) == expected.format("digest")
    with pytest.raises(InvalidRefError) as info:
        digest.check_digest("sha256:ABC", field="artifacts[0].digest")
    assert str(info.value) == expected.format("artifacts[0].digest")
    assert not digest.is_digest("SHA256:" + "0" * 64)


@pytest.mark.parametrize("text", ["0e0", "1E5", "-2.5e-3", ".5e1", "+7e+0"])
def test_a_string_that_yaml_1_2_reads_as_a_number_is_written_quoted(tmp_path: Path,
                                                                     text: str) -> None:
    """The case hypothesis found: such a string in a few-shot output, dumped plain by a
    YAML 1.1 writer, came back as a float (and was refused, rightly, as not a string)."""
    data = {"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
            "template": {"source": "Q: {{ q }}", "variables": ["q"]},
            "few_shot": [{"input": "x", "output": text}]}
    (tmp_path / "llmreg.yaml").write_text(yaml.dump(data, Dumper=_Dumper))
    assert load_bundle_dir(tmp_path)[0].digest == Bundle.from_dict(data).digest
