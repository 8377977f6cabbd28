"""The HTTP contract between ``llmreg serve`` and the client: the request and response
bodies (:mod:`.models`) and the one table of operations (:mod:`.operations`).

Example:
    >>> import pkgutil
    >>> import llmreg.contract
    >>> "operations" in [m.name for m in pkgutil.iter_modules(llmreg.contract.__path__)]
    True
"""
