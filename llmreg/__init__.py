"""llmreg: a registry for LLM application bundles.

Importing this package is cheap: it never imports the server stack, the ORM or the
CLI. ``connect()`` loads the embedded registry on first use.

Example:
    >>> import llmreg                                   # doctest: +SKIP
    >>> bundle = llmreg.connect().get("support-rag@1")  # doctest: +SKIP
    >>> bundle.render(question="Where is my order?", context="…").to_openai()  # doctest: +SKIP
"""

from llmreg import errors as errors
from llmreg._version import __version__ as __version__
from llmreg.bundle import Bundle as Bundle
from llmreg.bundledir import load_bundle_dir as load_bundle_dir
from llmreg.client import Client as Client
from llmreg.client import connect as connect
from llmreg.diff import BundleDiff as BundleDiff
from llmreg.diff import diff_bundles as diff_bundles
from llmreg.digest import canonical_json as canonical_json
from llmreg.digest import digest_bytes as digest_bytes
from llmreg.digest import short as short_digest
from llmreg.errors import LLMRegError as LLMRegError
from llmreg.messages import Messages as Messages
from llmreg.names import parse_ref as parse_ref
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

__all__ = [
    "Actor",
    "ApprovalInfo",
    "AuditInfo",
    "Bundle",
    "BundleDiff",
    "ChangelogEntry",
    "Client",
    "EvidenceInfo",
    "GateReport",
    "GateResult",
    "LLMRegError",
    "Messages",
    "NameSummary",
    "Policy",
    "Registration",
    "Settings",
    "SlotEventInfo",
    "SlotStatus",
    "VersionInfo",
    "__version__",
    "canonical_json",
    "connect",
    "diff_bundles",
    "digest_bytes",
    "errors",
    "load_policy",
    "load_bundle_dir",
    "parse_ref",
    "short_digest",
]
