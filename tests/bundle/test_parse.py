"""What people write is parsed at a bounded cost: no expansion bombs, no duplicate keys,
no unbounded nesting, no huge files read, and every refusal is one line."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from llmreg.bundle import parse
from llmreg.bundle.directory import load_bundle_dir
from llmreg.bundle.parse import MAX_CHARS, MAX_DEPTH, MAX_NODES, json_size, load_json, load_yaml
from llmreg.errors import InvalidBundleError, PolicyError
from llmreg.policy import DEFAULT_POLICY_YAML, parse_policy
from tests.bundle.test_directory import BASE, write

CEILING = 64 * 1024 * 1024


def laughs(levels: int = 9) -> str:
    """The billion-laughs document: each level repeats the one below nine times."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def bounded(fn):  # type: ignore[no-untyped-def]
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(InvalidBundleError) as caught:
            fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 3
    assert peak < CEILING
    assert "\n" not in str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize("section", [
    "response_schema: *a9",
    "tools: [{name: t, description: d, parameters: {type: object, properties: *a9}}]",
    "few_shot: [{input: {q: x}, output: *a9}]",
])
def test_billion_laughs_is_refused_before_it_expands(tmp_path: Path, section: str) -> None:
    folder = write(tmp_path / "b", laughs() + BASE + section + "\n", system__md="Hi",
                   user__j2="{{ q }}")
    message = bounded(lambda: load_bundle_dir(folder))
    assert f"llmreg.yaml expands to more than {MAX_NODES} values" in message


def test_anchors_that_stay_small_are_fine() -> None:
    data = load_yaml("base: &p {temperature: 0}\nother: *p\n", "x.yaml")
    assert data == {"base": {"temperature": 0}, "other": {"temperature": 0}}


@pytest.mark.parametrize("text,label,expected", [
    ("a: 1\nb: 2\na: 3\n", "llmreg.yaml", "llmreg.yaml line 3: key 'a' appears twice"),
    ("m:\n  x: 1\n  x: 1\n", "llmreg.yaml", "line 3: key 'x' appears twice"),
])
def test_duplicate_yaml_keys_are_refused(text: str, label: str, expected: str) -> None:
    with pytest.raises(InvalidBundleError, match=expected):
        load_yaml(text, label)


def test_duplicate_keys_in_a_manifest_and_in_the_files_it_names(tmp_path: Path) -> None:
    folder = write(tmp_path / "b", BASE + "model: {provider: openai, id: gpt-4o-2024-05-13}\n",
                   system__md="Hi", user__j2="{{ q }}")
    with pytest.raises(InvalidBundleError, match="key 'model' appears twice"):
        load_bundle_dir(folder)
    folder = write(tmp_path / "c", BASE + "response_schema: {file: s.json}\n", system__md="Hi",
                   user__j2="{{ q }}", s__json='{"type": "object", "type": "array"}')
    with pytest.raises(InvalidBundleError, match="response_schema.file 's.json': key 'type' "
                                                 "appears twice; keep one"):
        load_bundle_dir(folder)
    folder = write(tmp_path / "d", BASE + "few_shot: {file: ex.jsonl}\n", system__md="Hi",
                   user__j2="{{ q }}", ex__jsonl='{"input": {"q": 1}, "output": "a", '
                                                 '"output": "b"}\n')
    with pytest.raises(InvalidBundleError, match="ex.jsonl' line 1: key 'output' appears"):
        load_bundle_dir(folder)
    folder = tmp_path / "e"
    folder.mkdir()
    (folder / "llmreg.json").write_text('{"model": {}, "model": {}}')
    with pytest.raises(InvalidBundleError, match="llmreg.json: key 'model' appears twice"):
        load_bundle_dir(folder)


@pytest.mark.parametrize("text,loader", [
    ("[" * 5000 + "]" * 5000, load_json),
    ("[" * 5000 + "]" * 5000, load_yaml),
    ("a:\n" + "".join("  " * i + "b:\n" for i in range(1, 200)), load_yaml),
    ('{"a":' * 100 + "1" + "}" * 100, load_json),
])
def test_deep_nesting_is_one_line(text: str, loader) -> None:  # type: ignore[no-untyped-def]
    message = bounded(lambda: loader(text, "deep.json"))
    assert message == "deep.json nests deeper than 64 levels; flatten it"


def test_nan_and_infinity_are_not_json_numbers() -> None:
    for text in ('{"x": NaN}', '{"x": Infinity}', '[-Infinity]'):
        with pytest.raises(InvalidBundleError, match="is not a JSON number"):
            load_json(text, "m.json")


def test_a_sparse_8gb_prompt_file_is_refused_without_being_read(tmp_path: Path) -> None:
    folder = write(tmp_path / "b", BASE, user__j2="{{ q }}")
    with open(folder / "system.md", "wb") as fh:
        fh.truncate(8 * 1024**3)  # sparse: no disk used, 8 GB if read
    message = bounded(lambda: load_bundle_dir(folder))
    assert message == "system.md is 8589934592 bytes; text files are limited to 4 MiB"


def test_a_5000_character_path_is_one_line(tmp_path: Path) -> None:
    folder = write(tmp_path / "b", BASE.replace("system.md", "x" * 5000), user__j2="{{ q }}")
    message = bounded(lambda: load_bundle_dir(folder))
    assert message == "system_prompt.file is a path of 5000 characters; the limit is 1024"
    folder = write(tmp_path / "c", BASE.replace("system.md", "d/" * 300 + "x" * 300),
                   user__j2="{{ q }}")
    assert "system_prompt.file" in bounded(lambda: load_bundle_dir(folder))


def test_the_policy_file_gets_the_same_bounds() -> None:
    with pytest.raises(PolicyError, match="key 'version' appears twice"):
        parse_policy(DEFAULT_POLICY_YAML + "\nversion: 1\n", source="llmreg-policy.yaml")
    with pytest.raises(PolicyError, match="expands to more than"):
        parse_policy(laughs() + DEFAULT_POLICY_YAML, source="llmreg-policy.yaml")


def test_a_control_character_is_one_line_not_a_yaml_traceback() -> None:
    with pytest.raises(InvalidBundleError) as info:
        load_yaml("a: \x07\n", "llmreg.yaml")
    assert str(info.value).startswith(
        "llmreg.yaml: not valid YAML, does not parse (unacceptable character #x0007")
    with pytest.raises(PolicyError, match=r"^p\.yaml: not valid YAML"):
        parse_policy("version: \x07", source="p.yaml")


# -- characters, not only values: alias bombs of long text, and JSON's same bounds -------

LONG = "x" * 50_000


@pytest.mark.parametrize("document", [
    # one long string, aliased in a list
    f'a: &a "{LONG}"\nb: [' + ", ".join(["*a"] * 100) + "]\n",
    # a plain (unquoted) scalar, aliased as mapping values
    f"a: &a {LONG}\nb: {{" + ", ".join(f"k{i}: *a" for i in range(100)) + "}\n",
    # a block scalar, aliased
    "a: &a |\n  " + LONG + "\nb: [" + ", ".join(["*a"] * 100) + "]\n",
    # doubling: each level holds the one below twice (255 values, 6.4 M characters)
    f'a0: &a0 "{LONG}"\n' + "".join(f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n"
                                    for i in range(1, 8)),
    # a long key, repeated by aliasing the mapping that holds it
    f'k: &k\n  ? "{LONG}"\n  : 1\nl: [' + ", ".join(["*k"] * 100) + "]\n",
    # merge keys repeat a mapping of long values
    f'base: &b {{p: "{LONG}", q: "{LONG}"}}\n'
    + "".join(f"m{i}: {{<<: *b, n: {i}}}\n" for i in range(50)),
])
def test_aliases_of_long_text_are_refused_by_their_characters(document: str) -> None:
    message = bounded(lambda: load_yaml(document, "llmreg.yaml"))
    assert message == (f"llmreg.yaml expands to more than {MAX_CHARS} characters of text "
                       "(YAML anchors and aliases repeat what they name); write the text "
                       "out once or share less")


def test_the_bounds_are_the_documented_ones() -> None:
    # docs/security.md: 100,000 values, 64 levels, 4 MiB of characters (a text file's limit)
    assert (MAX_NODES, MAX_DEPTH, MAX_CHARS) == (100_000, 64, 4 * 1024 * 1024)


def test_yaml_characters_are_counted_exactly_at_the_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "MAX_CHARS", 20)
    # keys count: "a" (1) + "xxxx" (4) + "b" (1) + 3 aliases (12) + "c" (1) + "y" (1) = 20
    text = "a: &a xxxx\nb: [*a, *a, *a]\nc: y\n"
    assert load_yaml(text, "x.yaml")["b"] == ["xxxx"] * 3
    with pytest.raises(InvalidBundleError, match="more than 20 characters"):
        load_yaml(text.replace("c: y", "c: yz"), "x.yaml")
    with pytest.raises(InvalidBundleError, match="more than 20 characters"):
        load_yaml(text.replace("[*a, *a, *a]", "[*a, *a, *a, *a]"), "x.yaml")


def test_yaml_values_are_counted_exactly_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "MAX_NODES", 9)
    # the root mapping, a and its 1, b and its list, the list's 4 items (aliases count)
    assert load_yaml("a: &a 1\nb: [*a, *a, *a, 2]\n", "x.yaml") == {"a": 1, "b": [1, 1, 1, 2]}
    with pytest.raises(InvalidBundleError, match="more than 9 values"):
        load_yaml("a: &a 1\nb: [*a, *a, *a, *a, 2]\n", "x.yaml")


@pytest.mark.parametrize(("text", "values", "characters"), [
    ("1", 1, 1), ("[]", 1, 0), ("{}", 1, 0), ("[[]]", 2, 0), (" [ [ ] , { } ] ", 3, 0),
    ('{"a": [1, 2], "b": {}}', 7, 4), ('{"a":"b"}', 3, 2), ('["ab", "c\\"d"]', 3, 6),
    ("[true, null, -1.5e3]", 4, 14), ('{"a": {"b": {"c": []}}}', 7, 3),
    ('["[{,:", "]}"]', 3, 6),  # structure inside strings is text
])
def test_json_size_counts_values_and_characters_without_parsing(
        text: str, values: int, characters: int) -> None:
    assert json_size(text) == (values, characters)


@pytest.mark.parametrize("document", [
    "[" + ",".join(["{}"] * 1_400_000) + "]",  # 4 MiB, 1.4 M objects
    "[" + ",".join(["[]"] * 200_000) + "]",
    "[" + ",".join(["0"] * 200_000) + "]",
    "{" + ",".join(f'"k{i}":null' for i in range(60_000)) + "}",
    "[" + ",".join(['"ab"'] * 150_000) + "]",
    '{"a":' + "[" + ",".join(['{"b":[1,{"c":2}]}'] * 20_000) + "]}",
])
def test_json_with_too_many_values_is_refused_before_it_is_built(document: str) -> None:
    message = bounded(lambda: load_json(document, "llmreg.json"))
    assert message.startswith(f"llmreg.json holds more than {MAX_NODES} values (")
    assert message.endswith("); split it, or move the data into an artifact")


@pytest.mark.parametrize("document", [
    '"' + "x" * (MAX_CHARS + 1) + '"',
    '{"a": "' + "x" * (MAX_CHARS // 2) + '", "b": "' + "y" * (MAX_CHARS // 2) + '"}',
    "[" + "1" * (MAX_CHARS + 1) + "]",  # one huge number
    '{"' + "k" * (MAX_CHARS + 1) + '": 1}',  # one huge key
])
def test_json_with_too_much_text_is_refused(document: str) -> None:
    message = bounded(lambda: load_json(document, "llmreg.json"))
    assert message.startswith(f"llmreg.json holds more than {MAX_CHARS} characters of text (")


def test_json_bounds_hold_exactly_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "MAX_NODES", 5)
    monkeypatch.setattr(parse, "MAX_CHARS", 6)
    assert load_json('{"ab": [1, "cd"]}', "m.json") == {"ab": [1, "cd"]}  # 5 values, 5 chars
    assert load_json('[[], {}, [], {}]', "m.json") == [[], {}, [], {}]  # empties: 5 values
    with pytest.raises(InvalidBundleError, match=r"more than 5 values \(6\)"):
        load_json('{"ab": [1, "cd", 2]}', "m.json")
    assert load_json('["abcdef"]', "m.json") == ["abcdef"]
    with pytest.raises(InvalidBundleError, match=r"more than 6 characters of text \(7\)"):
        load_json('["abcdefg"]', "m.json")


def test_a_manifest_json_bomb_is_refused_through_the_bundle_directory(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "llmreg.json").write_text('{"few_shot": [' + ",".join(
        ['{"input": {}, "output": {}}'] * 100_000) + "]}")
    message = bounded(lambda: load_bundle_dir(folder))
    assert message.startswith("llmreg.json holds more than 100000 values")
