"""The release flow: evidence, approvals, gates, promotions, rollbacks, retirement.

Example:
    >>> import pkgutil
    >>> import llmreg.service.lifecycle
    >>> "gates" in [m.name for m in pkgutil.iter_modules(llmreg.service.lifecycle.__path__)]
    True
"""
