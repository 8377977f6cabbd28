"""llmreg: a registry for LLM application bundles.

Importing this package is nearly free: every public name is loaded on first use
(PEP 562), so an application that only resolves its bundle from a server never
imports pydantic, the ORM, the server stack or the CLI.

Example:
    >>> import llmreg                                   # doctest: +SKIP
    >>> bundle = llmreg.connect().get("support-rag@1")  # doctest: +SKIP
    >>> bundle.render(question="Where is my order?", context="…").to_openai()  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from llmreg._version import __version__ as __version__

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from llmreg import errors as errors
    from llmreg.bundle.diff import BundleDiff as BundleDiff
    from llmreg.bundle.diff import diff_bundles as diff_bundles
    from llmreg.bundle.digest import canonical_json as canonical_json
    from llmreg.bundle.digest import digest_bytes as digest_bytes
    from llmreg.bundle.digest import short as short_digest
    from llmreg.bundle.directory import load_bundle_dir as load_bundle_dir
    from llmreg.bundle.messages import Messages as Messages
    from llmreg.bundle.names import parse_ref as parse_ref
    from llmreg.bundle.resolved import ResolvedBundle as ResolvedBundle
    from llmreg.bundle.schema import Bundle as Bundle
    from llmreg.client.connect import connect as connect
    from llmreg.client.core import Client as Client
    from llmreg.client.remote import RemoteClient as RemoteClient
    from llmreg.errors import AmbiguousRefError as AmbiguousRefError
    from llmreg.errors import ApprovalError as ApprovalError
    from llmreg.errors import AuditChainError as AuditChainError
    from llmreg.errors import AuthError as AuthError
    from llmreg.errors import BlobNotFoundError as BlobNotFoundError
    from llmreg.errors import ConfigError as ConfigError
    from llmreg.errors import DigestInvalidError as DigestInvalidError
    from llmreg.errors import EmptySlotError as EmptySlotError
    from llmreg.errors import FloatingModelIdError as FloatingModelIdError
    from llmreg.errors import GateFailedError as GateFailedError
    from llmreg.errors import HeaderTooLargeError as HeaderTooLargeError
    from llmreg.errors import IntegrityError as IntegrityError
    from llmreg.errors import InvalidBundleError as InvalidBundleError
    from llmreg.errors import InvalidEvidenceError as InvalidEvidenceError
    from llmreg.errors import InvalidNameError as InvalidNameError
    from llmreg.errors import InvalidRefError as InvalidRefError
    from llmreg.errors import InvalidRequestError as InvalidRequestError
    from llmreg.errors import InvalidWebhookError as InvalidWebhookError
    from llmreg.errors import LLMRegError as LLMRegError
    from llmreg.errors import MirrorVerificationError as MirrorVerificationError
    from llmreg.errors import MissingDependencyError as MissingDependencyError
    from llmreg.errors import PayloadTooLargeError as PayloadTooLargeError
    from llmreg.errors import PermissionDeniedError as PermissionDeniedError
    from llmreg.errors import PolicyError as PolicyError
    from llmreg.errors import PostprocessError as PostprocessError
    from llmreg.errors import RangeNotSatisfiableError as RangeNotSatisfiableError
    from llmreg.errors import ReadOnlyError as ReadOnlyError
    from llmreg.errors import RefNotFoundError as RefNotFoundError
    from llmreg.errors import RegistryNotFoundError as RegistryNotFoundError
    from llmreg.errors import RegistryUnavailableError as RegistryUnavailableError
    from llmreg.errors import RenderError as RenderError
    from llmreg.errors import RequestTimeoutError as RequestTimeoutError
    from llmreg.errors import ServerBusyError as ServerBusyError
    from llmreg.errors import ServerError as ServerError
    from llmreg.errors import SlotConflictError as SlotConflictError
    from llmreg.errors import TemplateSyntaxError as TemplateSyntaxError
    from llmreg.errors import TransitionError as TransitionError
    from llmreg.errors import UnknownEnvironmentError as UnknownEnvironmentError
    from llmreg.errors import UnknownOperationError as UnknownOperationError
    from llmreg.policy import Policy as Policy
    from llmreg.policy import load_policy as load_policy
    from llmreg.settings import Settings as Settings
    from llmreg.types import Actor as Actor
    from llmreg.types import ApprovalInfo as ApprovalInfo
    from llmreg.types import AuditInfo as AuditInfo
    from llmreg.types import ChangelogEntry as ChangelogEntry
    from llmreg.types import EvidenceInfo as EvidenceInfo
    from llmreg.types import GateReport as GateReport
    from llmreg.types import GateResult as GateResult
    from llmreg.types import NameSummary as NameSummary
    from llmreg.types import Registration as Registration
    from llmreg.types import SlotEventInfo as SlotEventInfo
    from llmreg.types import SlotStatus as SlotStatus
    from llmreg.types import VersionInfo as VersionInfo


# The public API, in full: tests/test_public_api.py checks it exactly (every public
# exception class of llmreg.errors, plus the names listed there), so a new error class
# that is not added here fails that test instead of being served by a fallback.
__all__ = [
    "Actor",
    "AmbiguousRefError",
    "ApprovalError",
    "ApprovalInfo",
    "AuditChainError",
    "AuditInfo",
    "AuthError",
    "BlobNotFoundError",
    "Bundle",
    "BundleDiff",
    "ChangelogEntry",
    "Client",
    "ConfigError",
    "DigestInvalidError",
    "EmptySlotError",
    "EvidenceInfo",
    "FloatingModelIdError",
    "GateFailedError",
    "GateReport",
    "GateResult",
    "IntegrityError",
    "InvalidBundleError",
    "InvalidEvidenceError",
    "InvalidNameError",
    "InvalidRefError",
    "HeaderTooLargeError",
    "InvalidRequestError",
    "InvalidWebhookError",
    "LLMRegError",
    "Messages",
    "MirrorVerificationError",
    "MissingDependencyError",
    "NameSummary",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Policy",
    "PolicyError",
    "PostprocessError",
    "RangeNotSatisfiableError",
    "ReadOnlyError",
    "RefNotFoundError",
    "Registration",
    "RegistryNotFoundError",
    "RegistryUnavailableError",
    "RemoteClient",
    "RenderError",
    "RequestTimeoutError",
    "ResolvedBundle",
    "ServerBusyError",
    "ServerError",
    "Settings",
    "SlotConflictError",
    "SlotEventInfo",
    "SlotStatus",
    "TemplateSyntaxError",
    "TransitionError",
    "UnknownEnvironmentError",
    "UnknownOperationError",
    "VersionInfo",
    "__version__",
    "canonical_json",
    "connect",
    "diff_bundles",
    "digest_bytes",
    "errors",
    "load_bundle_dir",
    "load_policy",
    "parse_ref",
    "short_digest",
]

# Where each name lives. Every *Error is in llmreg.errors; the rest is listed.
_LAZY: dict[str, tuple[str, str | None]] = {
    "errors": ("llmreg.errors", None),
    "connect": ("llmreg.client.connect", "connect"),
    "Bundle": ("llmreg.bundle.schema", "Bundle"),
    "load_bundle_dir": ("llmreg.bundle.directory", "load_bundle_dir"),
    "Client": ("llmreg.client.core", "Client"),
    "BundleDiff": ("llmreg.bundle.diff", "BundleDiff"),
    "diff_bundles": ("llmreg.bundle.diff", "diff_bundles"),
    "canonical_json": ("llmreg.bundle.digest", "canonical_json"),
    "digest_bytes": ("llmreg.bundle.digest", "digest_bytes"),
    "short_digest": ("llmreg.bundle.digest", "short"),
    "Messages": ("llmreg.bundle.messages", "Messages"),
    "parse_ref": ("llmreg.bundle.names", "parse_ref"),
    "Policy": ("llmreg.policy", "Policy"),
    "load_policy": ("llmreg.policy", "load_policy"),
    "RemoteClient": ("llmreg.client.remote", "RemoteClient"),
    "ResolvedBundle": ("llmreg.bundle.resolved", "ResolvedBundle"),
    "Settings": ("llmreg.settings", "Settings"),
    **{name: ("llmreg.types", name) for name in (
        "Actor", "ApprovalInfo", "AuditInfo", "ChangelogEntry", "EvidenceInfo", "GateReport",
        "GateResult", "NameSummary", "Registration", "SlotEventInfo", "SlotStatus",
        "VersionInfo")},
    **{name: ("llmreg.errors", name) for name in __all__ if name.endswith("Error")},
}
assert set(__all__) == {*_LAZY, "__version__"}  # one list, kept in step by this line


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'llmreg' has no attribute {name!r}") from None
    module = import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
