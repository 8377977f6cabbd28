"""The client: :class:`~llmreg.client.core.Client` and the backends under it
(embedded, HTTP, the signed mirror), their transport and the disk cache.

Example:
    >>> import pkgutil
    >>> import llmreg.client
    >>> "remote" in [m.name for m in pkgutil.iter_modules(llmreg.client.__path__)]
    True
"""
