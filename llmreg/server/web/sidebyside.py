"""Two texts side by side, line by line, with the changed lines marked (for the diff page).

Example:
    >>> rows = side_by_side("a\\nb\\nc", "a\\nB\\nc")
    >>> [(r.kind, r.old, r.new) for r in rows]
    [('same', 'a', 'a'), ('changed', 'b', 'B'), ('same', 'c', 'c')]
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from itertools import zip_longest

CONTEXT = 3  # unchanged lines kept around each change; longer runs fold into one row


@dataclass(frozen=True, slots=True)
class Row:
    """One row: line numbers and text on each side (None: no line there)."""

    kind: str  # "same", "changed", "added", "removed" or "fold"
    old_no: int | None
    old: str | None
    new_no: int | None
    new: str | None


def side_by_side(old: str, new: str, context: int = CONTEXT) -> list[Row]:
    """Rows pairing ``old`` and ``new`` line by line; long unchanged runs are folded."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[Row] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            rows.extend(_equal(a, b, i1, i2, j1, context, first=not rows, last=i2 == len(a)))
            continue
        for k, (x, y) in enumerate(zip_longest(a[i1:i2], b[j1:j2])):
            kind = "changed" if x is not None and y is not None else \
                "removed" if x is not None else "added"
            rows.append(Row(kind, i1 + k + 1 if x is not None else None, x,
                            j1 + k + 1 if y is not None else None, y))
    return rows


def _equal(a: list[str], b: list[str], i1: int, i2: int, j1: int, context: int, *,
           first: bool, last: bool) -> list[Row]:
    keep = [k for k in range(i2 - i1)
            if (not first and k < context) or (not last and k >= i2 - i1 - context)]
    out: list[Row] = []
    previous = -1
    for k in keep:
        if k != previous + 1:
            out.append(Row("fold", None, f"{k - previous - 1} unchanged lines", None, None))
        out.append(Row("same", i1 + k + 1, a[i1 + k], j1 + k + 1, b[j1 + k]))
        previous = k
    if previous != i2 - i1 - 1:
        out.append(Row("fold", None, f"{i2 - i1 - 1 - previous} unchanged lines", None, None))
    return out
