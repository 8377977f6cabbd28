"""What one render may cost, counted as it goes.

A template that passed :mod:`llmreg.bundle.language` can still be handed large values,
or refer to one value many times (``[s, s, s]``), so the render keeps one
:class:`Budget` and charges it before anything is allocated:

- **characters written**: every piece of output, into the result or into a
  ``{% set %}`` block, counted as it is written (at most ``max_chars`` in all);
- **characters built**: every string or list a filter, ``~`` or ``+`` makes, sized
  before it is made where it can grow (``replace``, ``indent``, ``join``, ``tojson``,
  ``escape``, ``~``, ``+``, turning a list into text), each at most ``max_chars`` and
  all of them together at most :data:`BUILT_FACTOR` times that;
- **steps**: loop iterations, filter and ``loop.cycle`` calls, operators;
- **time**: the deadline is checked at every step and inside long ones (sizing a big
  nested value checks it every :data:`TICK` items).

Example:
    >>> b = Budget(RenderLimits(max_chars=10))
    >>> b.write(8, "the output")
    >>> b.write(3, "the output")
    Traceback (most recent call last):
    ...
    llmreg.errors.RenderError: the output would be 11 characters; the limit is 10 \
(LLMREG_RENDER_MAX_CHARS)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from llmreg.errors import ConfigError, RenderError

BUILT_FACTOR = 4  # all the values one render builds, in multiples of max_chars
TICK = 1024  # items sized between two looks at the clock
MAX_ROUND_DIGITS = 15  # |round(precision)|: a float has no more
MAX_JSON_INDENT = 8  # |tojson(indent)


@dataclass(frozen=True)
class RenderLimits:
    """What one render may cost: characters out, steps (loop iterations and calls),
    seconds. A template over any of them fails with :class:`RenderError`.

    Example:
        >>> RenderLimits().max_chars
        1000000
    """

    max_chars: int = 1_000_000  # LLMREG_RENDER_MAX_CHARS
    max_steps: int = 100_000  # LLMREG_RENDER_MAX_STEPS
    timeout: float = 2.0  # LLMREG_RENDER_TIMEOUT, seconds

    @classmethod
    def from_env(cls) -> RenderLimits:
        """The limits, with ``LLMREG_RENDER_*`` overrides.

        Example:
            >>> RenderLimits.from_env().max_steps  # with no LLMREG_RENDER_MAX_STEPS set
            100000
        """
        out: dict[str, Any] = {}
        for field, var, kind in (("max_chars", "LLMREG_RENDER_MAX_CHARS", int),
                                 ("max_steps", "LLMREG_RENDER_MAX_STEPS", int),
                                 ("timeout", "LLMREG_RENDER_TIMEOUT", float)):
            raw = os.environ.get(var)
            if raw:
                try:
                    out[field] = kind(raw)
                    if out[field] <= 0:
                        raise ValueError
                except ValueError:
                    raise ConfigError(f"{var}={raw!r} must be a positive number") from None
        return cls(**out)


@lru_cache(maxsize=1)
def limits() -> RenderLimits:
    """The limits this process renders with (read from the environment once).

    Example:
        >>> limits().timeout > 0
        True
    """
    return RenderLimits.from_env()


_current: ContextVar[Budget] = ContextVar("llmreg_render_budget")


class Budget:
    """What is left of one render's characters, steps and time.

    Example:
        >>> Budget(RenderLimits(max_steps=2)).step()
    """

    def __init__(self, lim: RenderLimits) -> None:
        self.limits = lim
        self.steps = 0
        self.written = 0
        self.built = 0
        self.deadline = time.monotonic() + lim.timeout

    def tick(self) -> None:
        """Fail when the render is past its deadline."""
        if time.monotonic() > self.deadline:
            raise RenderError(f"the template ran for more than {self.limits.timeout:g}s; "
                              "LLMREG_RENDER_TIMEOUT raises it")

    def step(self, n: int = 1) -> None:
        """Count ``n`` steps (a loop iteration, a filter, an operator, an item a filter
        walks through) and look at the clock."""
        self.steps += n
        if self.steps > self.limits.max_steps:
            raise RenderError(f"the template took more than {self.limits.max_steps} steps "
                              "(loop iterations, calls and the items filters walk through); "
                              "LLMREG_RENDER_MAX_STEPS raises it")
        self.tick()

    def size(self, n: int, what: str) -> None:
        """Refuse one value of ``n`` characters if it is over the limit."""
        if n > self.limits.max_chars:
            raise RenderError(f"{what} would be {n} characters; the limit is "
                              f"{self.limits.max_chars} (LLMREG_RENDER_MAX_CHARS)")

    def write(self, n: int, what: str) -> None:
        """Charge ``n`` characters of output."""
        self.written += n
        self.size(self.written, what)

    def build(self, n: int, what: str) -> None:
        """Charge a value of ``n`` characters (or items) that the template builds."""
        self.size(n, what)
        self.built += n
        cap = BUILT_FACTOR * self.limits.max_chars
        if self.built > cap:
            raise RenderError(f"the values the template built would be {self.built} "
                              f"characters in all; the limit is {cap} "
                              f"({BUILT_FACTOR} × LLMREG_RENDER_MAX_CHARS)")

    def weigh(self, value: Any, what: str, indent: int = 0) -> int:
        """Size the text ``value`` turns into, refusing it past the limit before it is
        built (sizing stops as soon as it is over)."""
        n = weight(value, self.limits.max_chars, indent, self)
        self.size(n, what)
        return n


def current() -> Budget:
    """The budget of the render under way (a fresh one outside a render).

    Example:
        >>> current().steps
        0
    """
    try:
        return _current.get()
    except LookupError:  # a template run outside a render: each check gets a fresh
        return Budget(limits())  # budget, and none is left behind in the caller's context


def start(lim: RenderLimits) -> Any:
    """Begin a render's budget; pass what it returns to :func:`finish`."""
    return _current.set(Budget(lim))


def finish(token: Any) -> None:
    """End the render's budget begun by :func:`start`."""
    _current.reset(token)


def weight(value: Any, limit: int, indent: int = 0, budget: Budget | None = None) -> int:
    """An upper bound on the characters ``str(value)`` or JSON of it needs, before
    escaping; past ``limit`` it stops counting and answers a number over ``limit``.

    Shared references count every time, as ``str()`` writes them every time; the walk
    is iterative, and the clock is read every :data:`TICK` items.

    Example:
        >>> s = "x" * 1000
        >>> weight([s, s, s], 10**6)  # with quotes and separators
        3014
        >>> weight([[s] * 1000] * 1000, 10**6) > 10**6
        True
    """
    total = 0
    seen = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        seen += 1
        if budget is not None and seen % TICK == 0:
            budget.tick()
        if isinstance(item, str):
            total += len(item) + 2  # quotes, inside a container
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2  # a decimal digit holds over 3 bits
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, Mapping | list | tuple | set | frozenset):
            children = [x for kv in item.items() for x in kv] if isinstance(item, Mapping) \
                else list(item)
            per_item = 2 + (1 + indent * (depth + 1) if indent else 0)
            total += 2 + per_item * len(children)
            stack.extend((child, depth + 1) for child in children)
        else:
            total += 64  # anything else the caller gave: checked again once it is text
        if total > limit:
            return total
    return total


def steps(iterable: Iterable[Any]) -> Iterator[Any]:
    """The guard around every ``for`` loop: each iteration is a step.

    Example:
        >>> list(steps("ab"))
        ['a', 'b']
    """
    budget = current()
    for item in iterable:
        budget.step()
        yield item


def write(value: Any) -> str:
    """The guard around every piece of output: sized before it becomes text, charged
    as it is written.

    Example:
        >>> write(7)
        '7'
    """
    budget = current()
    if not isinstance(value, str):
        budget.weigh(value, "one value written")
    text = str(value)
    budget.write(len(text), "the output")
    return text


def concat(*parts: Any) -> str:
    """The guard around ``~``: the joined length is checked before it is built.

    Example:
        >>> concat("a", 1, [2])
        'a1[2]'
    """
    budget = current()
    budget.step()
    n = sum(len(p) if isinstance(p, str) else budget.weigh(p, "a value joined with ~")
            for p in parts)
    budget.size(n, "joining with ~")
    text = "".join(str(p) for p in parts)
    budget.build(len(text), "joining with ~")
    return text


_SIZED = (str, list, tuple, set, frozenset, dict)


def add(left: Any, right: Any) -> Any:
    """The guard around ``+``: numbers add; strings and lists are sized first.

    Example:
        >>> add("a", "b"), add(1, 2)
        ('ab', 3)
    """
    budget = current()
    budget.step()
    if not (isinstance(left, _SIZED) and isinstance(right, _SIZED)):
        return left + right
    budget.size(len(left) + len(right), "adding two values with +")
    result: Any = left + right  # type: ignore[operator]  # Markup escapes: may grow
    budget.build(len(result), "adding two values with +")
    return result


def subtract(left: Any, right: Any) -> Any:
    """The guard around ``-``: numbers subtract; a set difference is sized first.

    Example:
        >>> subtract(3, 1), subtract({1, 2}, {2})
        (2, {1})
    """
    budget = current()
    budget.step()
    if isinstance(left, _SIZED):
        budget.build(len(left), "subtracting with -")
    return left - right


def slice_of(obj: Any, start: Any, stop: Any, step: Any) -> Any:
    """The guard around ``x[a:b:c]``: the copy a slice makes is charged before it is made.

    Example:
        >>> slice_of("abcdef", 1, None, 2)
        'bdf'
    """
    part = slice(start, stop, step)
    if isinstance(obj, _SIZED):
        current().build(len(range(*part.indices(len(obj)))), "a slice")
    return obj[part]
