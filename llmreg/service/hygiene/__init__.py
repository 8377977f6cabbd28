"""Keeping the registry clean: owners, deprecation, served traffic, alerts and the
scheduled jobs that run them.

Example:
    >>> import pkgutil
    >>> import llmreg.service.hygiene
    >>> "deprecation" in [m.name for m in pkgutil.iter_modules(llmreg.service.hygiene.__path__)]
    True
"""
