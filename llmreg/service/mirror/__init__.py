"""The signed static mirror (TUF): the publisher, its destinations and its keys.

Example:
    >>> import pkgutil
    >>> import llmreg.service.mirror
    >>> "publisher" in [m.name for m in pkgutil.iter_modules(llmreg.service.mirror.__path__)]
    True
"""
