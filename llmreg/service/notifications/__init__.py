"""Events and their delivery: the outbox written in each change's transaction, webhooks,
the delivery worker and the SSRF guard.

Example:
    >>> import pkgutil
    >>> import llmreg.service.notifications
    >>> "outbox" in [m.name for m in pkgutil.iter_modules(llmreg.service.notifications.__path__)]
    True
"""
