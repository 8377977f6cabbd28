"""Where an answer was served from: live from the registry, or from the local cache.

Declared once for :class:`~llmreg.bundle.resolved.ResolvedBundle` and
:class:`~llmreg.bundle.schema.Bundle`. Free of pydantic and of both of them: the resolved
bundle is on an application's startup path, and each of the two imports this module.

Example:
    >>> class Answer(ServedFrom):
    ...     def _cache_age_of(self) -> float | None:
    ...         return 42.0
    >>> Answer().served_from_cache, Answer().stale_seconds
    (True, 42.0)
"""

from __future__ import annotations


class ServedFrom:
    """``served_from_cache`` and ``stale_seconds``, from the cache age a subclass gives
    by :meth:`_cache_age_of`."""

    __slots__ = ()

    def _cache_age_of(self) -> float | None:
        """Seconds since the cached answer was stored, or ``None`` when it came live."""
        raise NotImplementedError

    @property
    def served_from_cache(self) -> bool:
        """True when the registry was unreachable and this came from the local cache."""
        return self._cache_age_of() is not None

    @property
    def stale_seconds(self) -> float | None:
        """How old the cached answer was when it was served from cache (else ``None``)."""
        return self._cache_age_of()
