"""The core service layer: the only code that changes registry state.

The Python client, the CLI and the HTTP server all call
:class:`~llmreg.service.registry.RegistryService`; none of them writes to the
database or the blob store directly.
"""

from llmreg.service.registry import RegistryService as RegistryService

__all__ = ["RegistryService"]
