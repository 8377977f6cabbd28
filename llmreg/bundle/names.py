"""Names and refs.

A *name* is what a team calls an LLM feature (``support-bot``): lowercase letters,
digits and ``.``, ``_``, ``-``; 1–64 characters; starts and ends with a letter or digit.
Lowercase only, so ``Support-Bot`` and ``support-bot`` can never be two things.

A *ref* picks one version of a name:

=======================  ==========================================
``support-bot``          the latest version
``support-bot@7``        version 7
``support-bot@sha256:…`` the version with that digest
``support-bot@3f2a9c1b`` the same, by a unique prefix (7+ hex digits)
``support-bot@latest``   the latest version
``support-bot@prod``     a label: an environment slot (promotion issue)
``sha256:…``             content alone, whatever name it has
=======================  ==========================================

Example:
    >>> parse_ref("support-bot@7")
    Ref(name='support-bot', version=7, digest_prefix=None, label=None)
    >>> parse_ref("support-bot@3f2a9c1b7d4e").digest_prefix
    '3f2a9c1b7d4e'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmreg.bundle.digest import parse_prefix
from llmreg.errors import InvalidNameError, InvalidRefError, shown

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
_VERSION_RE = re.compile(r"^\d{1,6}$")
_LABEL_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def check_name(name: str, *, field: str = "name") -> str:
    """Return ``name`` if it is a valid bundle name, else raise naming the fix.

    Nothing is stripped or lowercased: ``'support-bot\\n'`` is refused, never read as
    ``support-bot``. An empty name is refused too (a caller who gives one meant to).

    Example:
        >>> check_name("support-bot")
        'support-bot'
        >>> check_name(" ")
        Traceback (most recent call last):
        ...
        llmreg.errors.InvalidNameError: name ' ' is empty; give a name such as 'support-bot'
    """
    if isinstance(name, str) and not name.strip():
        raise InvalidNameError(f"{field} {shown(name)} is empty; give a name such as "
                               "'support-bot'")
    if isinstance(name, str) and _untrimmed(name):
        raise InvalidNameError(
            f"{field} {shown(name)} has surrounding whitespace or control characters; "
            "give the name alone (e.g. 'support-bot')")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        raise InvalidNameError(
            f"{field} {shown(name)} is not a valid name; use 1-64 lowercase letters, digits, "
            "'.', '_' or '-', starting and ending with a letter or digit (e.g. 'support-bot')"
        )
    return name


def _untrimmed(text: str) -> bool:
    """Whether ``text`` has whitespace at either end or any non-printable character."""
    return text != text.strip() or not text.isprintable()


@dataclass(frozen=True)
class Ref:
    """A parsed ref: a name plus at most one of version, digest prefix or label."""

    name: str | None
    version: int | None = None
    digest_prefix: str | None = None
    label: str | None = None

    def __str__(self) -> str:
        if self.name is None:
            return f"sha256:{self.digest_prefix}"
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.digest_prefix is not None:
            return f"{self.name}@sha256:{self.digest_prefix}"
        if self.label is not None:
            return f"{self.name}@{self.label}"
        return self.name


def parse_ref(text: str) -> Ref:
    """Parse a ref string; raise :class:`InvalidRefError` naming what is wrong.

    The ref is read exactly as given: surrounding whitespace or a control character
    anywhere is refused, never stripped (``support-rag@1\\n`` must not move a slot).

    Example:
        >>> str(parse_ref("chat@latest"))
        'chat@latest'
        >>> parse_ref("chat@1\\n")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        llmreg.errors.InvalidRefError: ref 'chat@1\\n' has surrounding whitespace ...
    """
    if not isinstance(text, str) or not text.strip():
        shown_text = f" {shown(text)}" if isinstance(text, str) and text else ""
        raise InvalidRefError(f"ref{shown_text} is empty; use 'name', 'name@7' or "
                              "'name@sha256:…'")
    if _untrimmed(text):
        raise InvalidRefError(
            f"ref {shown(text)} has surrounding whitespace or control characters; give the "
            "ref alone, e.g. 'chat@1'")
    if "@" not in text:
        if text.startswith("sha256:"):
            prefix = parse_prefix(text)
            if prefix is None:
                raise InvalidRefError(
                    f"ref {shown(text)} is not a digest; use 'sha256:' and at least 7 hex "
                    "digits")
            return Ref(name=None, digest_prefix=prefix)
        return Ref(name=check_name(text, field="ref name"))
    name, _, selector = text.partition("@")
    check_name(name, field=f"ref {shown(text)}: name")
    if _VERSION_RE.fullmatch(selector):
        version = int(selector)
        if version < 1:
            raise InvalidRefError(f"ref {shown(text)}: versions start at 1")
        return Ref(name=name, version=version)
    prefix = parse_prefix(selector)
    if prefix is not None:
        return Ref(name=name, digest_prefix=prefix)
    if selector.startswith("sha256:"):
        raise InvalidRefError(
            f"ref {shown(text)}: {shown(selector)} is not a digest; use 'sha256:' and at "
            "least 7 hex digits")
    if _LABEL_RE.fullmatch(selector):
        return Ref(name=name, label=selector)
    raise InvalidRefError(
        f"ref {shown(text)}: {shown(selector)} is neither a version number, a digest nor a "
        "label; use 'name@7', 'name@sha256:…' or 'name@latest'"
    )
