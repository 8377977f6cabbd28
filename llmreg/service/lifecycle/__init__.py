"""The release flow: evidence, approvals, gates, promotions, rollbacks, retirement, and
what runs where. One part per job (``Evidence``, ``Approvals``, ``Lifecycle`` for the
moves, ``Slots``), each composed into ``RegistryService``.

Example:
    >>> import pkgutil
    >>> import llmreg.service.lifecycle
    >>> "gates" in [m.name for m in pkgutil.iter_modules(llmreg.service.lifecycle.__path__)]
    True
"""
