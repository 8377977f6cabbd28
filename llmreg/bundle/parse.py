"""Parsing what people write (YAML and JSON) at a bounded cost, with one-line errors.

Manifests, config files and JSON files a bundle names are read through here:

- **No duplicate keys.** A mapping that names a key twice is refused (the last one
  would otherwise win silently).
- **No expansion bombs.** YAML anchors and aliases are fine, but the document they
  expand to may hold at most :data:`MAX_NODES` values (a "billion laughs" file is a
  few hundred bytes that expands to 10⁹) and at most :data:`MAX_CHARS` characters of
  keys and scalars (a few aliases of one long string are few values but gigabytes of
  text once written out), counted on the parsed graph before anything is built from it.
- **The same bound for JSON.** JSON has no aliases, but a 4 MiB file of ``{}`` is over
  a million objects: its values and characters are counted on the text, before
  ``json.loads`` builds anything, against the same two limits.
- **Bounded depth.** At most :data:`MAX_DEPTH` levels of nesting; deeper input is one
  error line, never a ``RecursionError`` traceback.
- **No NaN or Infinity** in JSON: they have no canonical form.

Example:
    >>> load_yaml("a: 1\\nb: [x, y]\\n", "llmreg.yaml")
    {'a': 1, 'b': ['x', 'y']}
    >>> load_json('{"a": 1, "a": 2}', "schema.json")
    Traceback (most recent call last):
    ...
    llmreg.errors.InvalidBundleError: schema.json: key 'a' appears twice; keep one
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable
from typing import Any

from llmreg.errors import InvalidBundleError, LLMRegError

MAX_NODES = 100_000  # values in one document, after anchors are expanded
MAX_DEPTH = 64  # levels of nesting
MAX_CHARS = 4 * 1024 * 1024  # characters of keys and scalars, expanded: a text file's limit


def load_json(text: str, label: str, error: type[LLMRegError] = InvalidBundleError) -> Any:
    """Parse JSON text; ``label`` names the file in errors, raised as ``error``."""
    try:
        return _load_json(text, label)
    except InvalidBundleError as exc:
        raise exc if error is InvalidBundleError else error(str(exc)) from None


def _load_json(text: str, label: str) -> Any:

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise InvalidBundleError(f"{label}: key {key!r} appears twice; keep one")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise InvalidBundleError(f"{label}: {name} is not a JSON number; use null or a "
                                 "finite number")

    _check_json_size(text, label)
    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except RecursionError:
        raise _too_deep(label) from None
    except ValueError as exc:
        if isinstance(exc, InvalidBundleError):
            raise
        raise InvalidBundleError(f"{label} is not JSON: {exc}") from None
    check_depth(data, label)
    return data


def load_yaml(text: str, label: str, error: type[LLMRegError] = InvalidBundleError) -> Any:
    """Parse YAML text (the safe subset); ``label`` names the file in errors, raised as
    ``error``."""
    try:
        return _load_yaml(text, label)
    except InvalidBundleError as exc:
        raise exc if error is InvalidBundleError else error(str(exc)) from None


_FLOAT_12 = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$")


def _load_yaml(text: str, label: str) -> Any:
    import yaml  # only files need YAML: keeps `import llmreg` light

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, Hashable):
                    continue  # the base class reports unhashable keys
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise InvalidBundleError(
                        f"{label} line {line}: key {key!r} appears twice; keep one")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    # YAML 1.2 numbers: `8e2` and `1e0` are floats (YAML 1.1 reads them as strings).
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))
    _check_yaml_depth(text, label)
    loader: Loader | None = None
    try:
        loader = Loader(text)  # its reader refuses control characters right here
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, label)
        return loader.construct_document(node)
    except RecursionError:
        raise _too_deep(label) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise InvalidBundleError(f"{label}{where}: not valid YAML, does not parse ({problem})"
                                 ) from None
    except ValueError as exc:  # e.g. a date out of range in a YAML timestamp
        if isinstance(exc, InvalidBundleError):
            raise
        raise InvalidBundleError(f"{label} does not parse: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()


# A JSON string token (quotes included); what is left once they are cut out is structure,
# numbers and literals (true, false, null), so the counts below see no quoted text.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_STRUCTURE = str.maketrans("", "", "[]{},: \t\r\n")


def json_size(text: str) -> tuple[int, int]:
    """``(values, characters)`` of a JSON text, counted without parsing it: every value
    and key but the first is introduced by exactly one ``[``, ``{``, ``,`` or ``:``
    (an empty ``[]`` or ``{}`` introduces none), and the characters are those of its
    strings (between the quotes, as written) and of its numbers and literals.

    Example:
        >>> json_size('{"a": [1, 2], "b": {}}')
        (7, 4)
    """
    bare, strings = _JSON_STRING.subn("", text)
    tight = "".join(bare.split())
    empty = tight.count("[]") + tight.count("{}")
    values = 1 + sum(bare.count(mark) for mark in "[{,:") - empty
    characters = len(text) - len(bare) - 2 * strings + len(bare.translate(_JSON_STRUCTURE))
    return values, characters


def _check_json_size(text: str, label: str) -> None:
    values, characters = json_size(text)
    if values > MAX_NODES:
        raise InvalidBundleError(f"{label} holds more than {MAX_NODES} values ({values}); "
                                 "split it, or move the data into an artifact")
    if characters > MAX_CHARS:
        raise InvalidBundleError(f"{label} holds more than {MAX_CHARS} characters of text "
                                 f"({characters}); move the data into an artifact")


def check_depth(data: Any, label: str, limit: int = MAX_DEPTH) -> None:
    """Refuse values nested deeper than ``limit`` levels (iteratively: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            raise _too_deep(label)
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _check_yaml_depth(text: str, label: str) -> None:
    """Measure nesting on the token stream (the scanner is iterative; the composer that
    builds nodes is recursive, so deep input must be refused before it runs)."""
    import yaml

    opens = (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken,
             yaml.BlockSequenceStartToken, yaml.BlockMappingStartToken)
    closes = (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)
    depth = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, opens):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _too_deep(label)
            elif isinstance(token, closes):
                depth -= 1
    except yaml.YAMLError:
        return  # the parser reports it, with its line


def _check_expansion(root: Any, label: str) -> None:
    """Count the values and characters the node graph expands to, and its depth, without
    building it.

    Aliases make the graph a DAG: each node's expanded size is computed once (post-order,
    iteratively), so a bomb is measured in time linear in its text.
    """
    import yaml

    sizes: dict[int, int] = {}
    chars: dict[int, int] = {}
    depths: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
        own = len(node.value) if isinstance(node, yaml.ScalarNode) else 0
        chars[id(node)] = own + sum(chars[id(c)] for c in children)
        depths[id(node)] = 1 + max((depths[id(c)] for c in children), default=0)
        if sizes[id(node)] > MAX_NODES:
            raise InvalidBundleError(
                f"{label} expands to more than {MAX_NODES} values (YAML anchors and "
                "aliases repeat what they name); write the values out or share less")
        if chars[id(node)] > MAX_CHARS:
            raise InvalidBundleError(
                f"{label} expands to more than {MAX_CHARS} characters of text (YAML anchors "
                "and aliases repeat what they name); write the text out once or share less")
        if depths[id(node)] > MAX_DEPTH + 1:
            raise _too_deep(label)


def _too_deep(label: str) -> InvalidBundleError:
    return InvalidBundleError(f"{label} nests deeper than {MAX_DEPTH} levels; flatten it")
