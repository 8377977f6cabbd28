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
from llmreg.settings import Settings as Settings
from llmreg.types import ChangelogEntry as ChangelogEntry
from llmreg.types import NameSummary as NameSummary
from llmreg.types import Registration as Registration
from llmreg.types import VersionInfo as VersionInfo

__all__ = [
    "Bundle",
    "BundleDiff",
    "ChangelogEntry",
    "Client",
    "LLMRegError",
    "Messages",
    "NameSummary",
    "Registration",
    "Settings",
    "VersionInfo",
    "__version__",
    "canonical_json",
    "connect",
    "diff_bundles",
    "digest_bytes",
    "errors",
    "load_bundle_dir",
    "parse_ref",
    "short_digest",
]
