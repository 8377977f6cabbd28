"""What ``resolve()`` returns: a verified manifest, ready to render, without pydantic.

An application resolves its bundle at startup and renders it on every request. The
bytes were verified against their digest on the way in, and the registry validated the
content when it was registered, so nothing needs re-validating here: rendering works
on the manifest dict directly. Anything else (``.model``, ``.retrieval``,
``.postprocess(text)``, …) builds the full :class:`~llmreg.bundle.schema.Bundle` on first use
and delegates to it.

Example:
    >>> rb = ResolvedBundle(b'{"kind":"llm","model":{"id":"gpt-4o-2024-08-06","provider":'
    ...     b'"openai"},"schema":"llmreg.bundle/v1","template":{"source":"Hi {{ n }}",'
    ...     b'"variables":["n"]}}', name="greeter", version=1, env="production")
    >>> rb.render(n="Ana").to_openai()
    [{'role': 'user', 'content': 'Hi Ana'}]
    >>> rb.model.id
    'gpt-4o-2024-08-06'
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from llmreg.bundle.digest import digest_bytes, short
from llmreg.bundle.served import ServedFrom

if TYPE_CHECKING:
    from llmreg.bundle.messages import Messages
    from llmreg.bundle.schema import Bundle


class ResolvedBundle(ServedFrom):
    """A bundle resolved from a slot (or a ref): name, version, env, digest, manifest."""

    __slots__ = ("_body", "_bundle", "_manifest", "cache_age", "digest", "env", "name",
                 "version")

    def __init__(self, body: bytes, *, name: str | None, version: int | None,
                 env: str | None, digest: str | None = None,
                 cache_age: float | None = None) -> None:
        self._body = body
        self.digest = digest or digest_bytes(body)
        self.name = name
        self.version = version
        self.env = env
        self.cache_age = cache_age
        self._manifest: dict[str, Any] | None = None
        self._bundle: Bundle | None = None

    @classmethod
    def from_bundle(cls, bundle: Bundle, env: str | None = None) -> ResolvedBundle:
        out = cls(bundle.canonical_bytes(), name=bundle.name, version=bundle.version,
                  env=env, digest=bundle.digest)
        out._bundle = bundle
        return out

    @property
    def manifest(self) -> dict[str, Any]:
        """The canonical manifest as a dict (defaults omitted)."""
        if self._manifest is None:
            self._manifest = json.loads(self._body)
        return self._manifest

    @property
    def canonical(self) -> bytes:
        """The canonical manifest bytes (they hash to :attr:`digest`)."""
        return self._body

    @property
    def short_digest(self) -> str:
        return short(self.digest)

    def _cache_age_of(self) -> float | None:  # served_from_cache, stale_seconds
        return self.cache_age

    @property
    def bundle(self) -> Bundle:
        """The full, validated :class:`~llmreg.bundle.schema.Bundle` (built on first use)."""
        if self._bundle is None:
            from llmreg.bundle.schema import Bundle

            self._bundle = Bundle.from_canonical(self._body)
            if self.name is not None and self.version is not None:
                self._bundle = self._bundle.with_slot(self.name, self.version,
                                                      self.env or "", self.cache_age)
        return self._bundle

    def render(self, **variables: Any) -> Messages:
        """Render the chat messages; the same rules as :meth:`Bundle.render`."""
        from llmreg.bundle.render import render_manifest

        return render_manifest(self.manifest, variables)

    def postprocess(self, text: str) -> Any:
        """Run the declared post-processing steps over a model output."""
        return self.bundle.postprocess(text)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.bundle, name)

    def __eq__(self, other: object) -> bool:
        return getattr(other, "digest", None) == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        where = f"{self.name}@{self.version}" if self.name else "bundle"
        env = f" in {self.env}" if self.env else ""
        cached = f", cached {self.cache_age:.0f}s" if self.cache_age is not None else ""
        return f"<ResolvedBundle {where}{env} {self.short_digest}{cached}>"
