"""The built-in post-processing steps, run in the order a bundle declares them.

Text flows through ``strip``, ``regex_extract`` and ``truncate``; ``json_parse`` turns
it into JSON, which ``json_schema_validate`` checks. A step that cannot handle the
output raises :class:`~llmreg.errors.PostprocessError` naming the step.

Example:
    >>> from llmreg.bundle.schema import Postprocess
    >>> steps = Postprocess.model_validate([
    ...     {"type": "regex_extract", "pattern": "Answer: (.*)", "group": 1},
    ...     {"type": "truncate", "max_chars": 5}])
    >>> steps("Thinking... Answer: yes, certainly")
    'yes, '
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from llmreg.errors import PostprocessError

_FENCE = re.compile(r"^\s*```[\w-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


@lru_cache(maxsize=256)
def _regex(pattern: str, flags: tuple[str, ...]) -> re.Pattern[str]:
    value = 0
    for name in flags:
        value |= getattr(re, name)
    return re.compile(pattern, value)


def run_steps(steps: Sequence[Any], text: str) -> Any:
    """Run ``steps`` (post-processing step models) over ``text`` and return the result."""
    value: Any = text
    for i, step in enumerate(steps):
        where = f"postprocess[{i}] {step.type}"
        value = _STEPS[step.type](step, value, where)
    return value


def _strip(step: Any, value: str, where: str) -> str:
    return value.strip(step.chars)


def _regex_extract(step: Any, value: str, where: str) -> str:
    match = _regex(step.pattern, tuple(step.flags)).search(value)
    if match is None:
        if step.required:
            raise PostprocessError(f"{where}: pattern {step.pattern!r} did not match the output")
        return value
    try:
        return match.group(step.group) or ""
    except IndexError:
        raise PostprocessError(f"{where}: pattern has no group {step.group!r}") from None


def _json_parse(step: Any, value: str, where: str) -> Any:
    if step.strip_code_fences:
        fenced = _FENCE.match(value)
        if fenced:
            value = fenced.group(1)
    try:
        return json.loads(value)
    except ValueError as exc:
        raise PostprocessError(f"{where}: output is not JSON ({exc})") from None


def _json_schema_validate(step: Any, value: Any, where: str) -> Any:
    from jsonschema import validators

    validator = validators.validator_for(step.json_schema)(step.json_schema)
    error = next(iter(validator.iter_errors(value)), None)
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise PostprocessError(f"{where}: output at {path}: {error.message}")
    return value


def _truncate(step: Any, value: str, where: str) -> str:
    return value[: step.max_chars]


_STEPS = {
    "strip": _strip,
    "regex_extract": _regex_extract,
    "json_parse": _json_parse,
    "json_schema_validate": _json_schema_validate,
    "truncate": _truncate,
}
