"""The bundle's content: its schema and canonical form, digests and names, pinning
and providers, rendering, post-processing, the semantic diff, provenance and lineage.

The lowest layer: it imports nothing else of llmreg but the shared vocabulary
(:mod:`llmreg.errors`, :mod:`llmreg.types`, :mod:`llmreg.settings`, :mod:`llmreg.policy`).
This ``__init__`` imports nothing, so reading a digest never loads pydantic.

Example:
    >>> import pkgutil
    >>> import llmreg.bundle
    >>> "schema" in [m.name for m in pkgutil.iter_modules(llmreg.bundle.__path__)]
    True
"""
