"""The package version, in one place; ``llmreg.__version__`` re-exports it.

Example:
    >>> import llmreg
    >>> llmreg.__version__ == __version__ and __version__.count(".") == 2
    True
"""

__version__ = "0.1.0"
