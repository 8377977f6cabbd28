"""Every error llmreg raises, in one hierarchy.

Callers catch :class:`LLMRegError` to handle anything llmreg refuses; the subclasses
say which kind of refusal it was. Where a builtin fits, the error also inherits it so
that generic handlers keep working (``RefNotFoundError`` is a ``LookupError``)::

    LLMRegError
    ├── InvalidBundleError (ValueError)        a manifest or bundle directory is wrong
    │   ├── FloatingModelIdError               a model id is not date-pinned
    │   └── TemplateSyntaxError                the Jinja2 template does not parse
    ├── RenderError (ValueError)               missing or undeclared template variable
    ├── PostprocessError (ValueError)          a post-processing step rejected the output
    ├── InvalidRefError (ValueError)           a ref does not parse (``name@what``)
    ├── InvalidNameError (ValueError)          a bundle or artifact name is not allowed
    ├── InvalidRequestError (ValueError)       an HTTP request body is malformed (a JSON
    │                                          object that names a key twice)
    ├── RefNotFoundError (LookupError)         unknown name, version or digest
    ├── AmbiguousRefError (LookupError)        a short digest matches several bundles
    ├── BlobNotFoundError (FileNotFoundError)  a blob is missing from the store
    ├── IntegrityError                         stored bytes do not match their digest
    │   ├── DigestInvalidError (ValueError)    uploaded bytes do not hash to the digest given
    │   └── MirrorVerificationError            a signed mirror's files fail TUF verification
    ├── RegistryNotFoundError (FileNotFoundError)  no ``.llmreg/`` folder was found
    ├── ConfigError (ValueError)               an ``LLMREG_*`` variable has a bad value
    ├── InvalidEvidenceError (ValueError)      metrics, suite or links are malformed
    ├── PolicyError (ValueError)               the policy file is invalid (names line and field)
    ├── UnknownEnvironmentError (ValueError)   an environment the policy does not define
    ├── EmptySlotError (LookupError)           nothing runs in that environment yet
    ├── TransitionError                        the policy allows no such move, or the version
    │                                          is archived / deprecated / in use
    ├── GateFailedError                        a promotion's gates are not all met (.report)
    ├── ApprovalError                          separation of duties refused an approval
    ├── SlotConflictError                      the slot moved; compare-and-set failed
    ├── AuditChainError                        the audit log's hash chain is broken
    ├── AuthError                              no valid token (HTTP 401)
    ├── PermissionDeniedError (PermissionError)  the token's role may not do this (HTTP 403)
    ├── PayloadTooLargeError (ValueError)      a request body over the server's limit
    │   └── HeaderTooLargeError                a request line and headers over the limit
    │                                          (HTTP 431)
    ├── RangeNotSatisfiableError (ValueError)  a blob read's Range is malformed, names
    │                                          several ranges or lies outside (HTTP 416)
    ├── RequestTimeoutError (TimeoutError)     a request's head or body arrived too slowly
    │                                          (HTTP 408)
    ├── ServerBusyError                        every slot for a large body is taken (HTTP
    │                                          503, ``Retry-After``)
    ├── RegistryUnavailableError (ConnectionError)  the server cannot be reached, no cache
    ├── ServerError                            the server failed (HTTP 5xx)
    ├── InvalidWebhookError (ValueError)       a webhook URL, event name or format is refused
    ├── ReadOnlyError                          a write (or a query) a static mirror cannot do
    ├── MissingDependencyError (ImportError)   an optional extra is not installed
    └── UnknownOperationError (LookupError)    a backend was asked for an operation the
                                               table does not declare

Every message names the object at fault and, where there is one, the next step.
Each class carries a stable ``code`` (the OCI distribution-spec style used over HTTP).
A message that quotes what the caller gave quotes it through :func:`shown`: escaped and
length-capped, so no input reaches a terminal, a log or a page raw.
"""

from __future__ import annotations

SHOWN_LIMIT = 160  # characters of escaped input an error message quotes, at most


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """``value`` as an error message may quote it: a ``repr``-like, single-quoted form
    in which every control, format or separator character (newlines, ANSI escapes,
    bidirectional overrides, NUL) is written as its escape, cut to at most ``limit``
    characters between the quotes, with the full length said after a cut.

    Only the first ``limit`` characters of a long string are looked at, so quoting
    megabytes costs no more than quoting a name. Anything that is not a string (a number,
    ``None``, a list) is written as its ``repr`` (which escapes the strings inside it),
    under the same cap, so ``3`` stays ``3``.

    Args:
        value: what the caller gave (a name, ref, header, field value, ...).
        limit: characters between the quotes, at most (escapes count as written).

    Example:
        >>> print(shown("support-rag@1\\n"))
        'support-rag@1\\n'
        >>> print(shown("\\x1b[31mred\\x1b[0m"))
        '\\x1b[31mred\\x1b[0m'
        >>> print(shown("x" * 10_000, limit=8))
        'xxxxxxxx…' (10000 characters)
        >>> print(shown(3), shown(None), shown(["a\\n"]))
        3 None ['a\\n']
    """
    if not isinstance(value, str):
        text = repr(value)
        if len(text) <= limit and text.isprintable():
            return text
        return shown(text, limit)  # quoted: it is cut, or holds what repr left raw
    text = value
    out: list[str] = []
    used = 0
    for ch in text[:limit + 1]:
        if ch == "'" or ch == "\\":
            piece = "\\" + ch
        elif ch.isprintable():
            piece = ch
        else:
            piece = repr(ch)[1:-1]  # '\\n', '\\x1b', '\\u202e', ...
        if used + len(piece) > limit:
            return "'" + "".join(out) + f"…' ({len(text)} characters)"
        out.append(piece)
        used += len(piece)
    return "'" + "".join(out) + "'"


class LLMRegError(Exception):
    """Root of every error llmreg raises.

    Example:
        >>> try:
        ...     raise RefNotFoundError("'chat' has no version 9; see `llmreg history chat`")
        ... except LLMRegError as exc:
        ...     print(exc.code)
        BUNDLE_UNKNOWN
    """

    code = "UNKNOWN"


class InvalidBundleError(LLMRegError, ValueError):
    """A manifest or bundle directory is malformed; the message names the field."""

    code = "MANIFEST_INVALID"


class FloatingModelIdError(InvalidBundleError):
    """A model id is a floating alias; the message shows the pinned form expected."""

    code = "MODEL_ID_FLOATING"


class TemplateSyntaxError(InvalidBundleError):
    """The bundle's Jinja2 template does not parse."""

    code = "TEMPLATE_INVALID"


class RenderError(LLMRegError, ValueError):
    """Rendering failed: a declared variable is missing or an undeclared one was given."""

    code = "RENDER_FAILED"


class PostprocessError(LLMRegError, ValueError):
    """A post-processing step could not handle the model's output."""

    code = "POSTPROCESS_FAILED"


class InvalidRefError(LLMRegError, ValueError):
    """A ref does not parse; refs look like ``name@7``, ``name@sha256:…``."""

    code = "REF_INVALID"


class InvalidNameError(LLMRegError, ValueError):
    """A bundle or artifact name contains characters that are not allowed."""

    code = "NAME_INVALID"


class InvalidRequestError(LLMRegError, ValueError):
    """An HTTP request body is malformed before any field is read: a JSON object names
    the same key twice (the server never lets the last one win). FastAPI's own refusals
    of a field use the same ``REQUEST_INVALID`` code."""

    code = "REQUEST_INVALID"


class RefNotFoundError(LLMRegError, LookupError):
    """The name, version or digest a ref points to does not exist."""

    code = "BUNDLE_UNKNOWN"


class AmbiguousRefError(LLMRegError, LookupError):
    """A short digest matches more than one bundle."""

    code = "DIGEST_AMBIGUOUS"


class BlobNotFoundError(LLMRegError, FileNotFoundError):
    """A blob the registry refers to is not in the blob store."""

    code = "BLOB_UNKNOWN"


class IntegrityError(LLMRegError):
    """Stored bytes do not hash to the digest they are stored under."""

    code = "INTEGRITY_FAILED"


class DigestInvalidError(IntegrityError, ValueError):
    """Bytes offered under a digest hash to something else; nothing was stored.

    The caller's input is wrong (HTTP 400), not the store. It stays an
    :class:`IntegrityError`, so code that guards uploads with that class keeps working.
    """

    code = "DIGEST_INVALID"


class MirrorVerificationError(IntegrityError):
    """A signed mirror's metadata or files do not verify against the trusted root:
    tampered content, a rollback, expired (frozen) metadata, an untrusted signature, or
    metadata mixed from different publishes. The message names what failed."""

    code = "MIRROR_UNTRUSTED"


class RegistryNotFoundError(LLMRegError, FileNotFoundError):
    """No embedded registry was found from the current folder upward."""

    code = "REGISTRY_UNKNOWN"


class ConfigError(LLMRegError, ValueError):
    """An ``LLMREG_*`` setting has a value llmreg cannot use."""

    code = "CONFIG_INVALID"


class InvalidEvidenceError(LLMRegError, ValueError):
    """Evidence input is malformed (metrics, suite name, links, report size)."""

    code = "EVIDENCE_INVALID"


class PolicyError(LLMRegError, ValueError):
    """The policy file is invalid; the message names the file, line and field."""

    code = "POLICY_INVALID"


class UnknownEnvironmentError(LLMRegError, ValueError):
    """An environment name the policy does not define (and that is no alias)."""

    code = "ENVIRONMENT_UNKNOWN"


class EmptySlotError(LLMRegError, LookupError):
    """An environment slot holds no version yet."""

    code = "SLOT_EMPTY"


class TransitionError(LLMRegError):
    """The policy allows no such move, or the version's state forbids it."""

    code = "TRANSITION_DENIED"


class GateFailedError(LLMRegError):
    """Some gates of a promotion are not met; ``report`` lists every gate."""

    code = "GATE_FAILED"

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class ApprovalError(LLMRegError):
    """An approval was refused (e.g. the author approving their own version)."""

    code = "APPROVAL_DENIED"


class SlotConflictError(LLMRegError):
    """The slot no longer holds the version the caller expected; nothing changed."""

    code = "SLOT_CONFLICT"


class AuditChainError(LLMRegError):
    """The audit log's hash chain does not verify; the message names the first bad entry."""

    code = "AUDIT_BROKEN"


class AuthError(LLMRegError):
    """No token, or a token that is unknown or revoked."""

    code = "UNAUTHORIZED"


class PermissionDeniedError(LLMRegError, PermissionError):
    """The token's role does not allow this operation."""

    code = "DENIED"


class PayloadTooLargeError(LLMRegError, ValueError):
    """A request body is larger than the server accepts."""

    code = "PAYLOAD_TOO_LARGE"


class HeaderTooLargeError(PayloadTooLargeError):
    """A request line and its headers are longer, or more, than the server accepts."""

    code = "HEADERS_TOO_LARGE"


class RangeNotSatisfiableError(LLMRegError, ValueError):
    """A blob read's ``Range`` header is not one satisfiable ``bytes=`` range (HTTP 416).

    Example:
        >>> RangeNotSatisfiableError("Range 'bytes=9-' is outside the blob").code
        'RANGE_INVALID'
    """

    code = "RANGE_INVALID"


class RequestTimeoutError(LLMRegError, TimeoutError):
    """A request's headers or body stalled, took too long, or arrived slower than the
    server's minimum rate."""

    code = "REQUEST_TIMEOUT"


class ServerBusyError(LLMRegError):
    """The server reads as many large bodies at once as it may; try again shortly."""

    code = "BUSY"


class RegistryUnavailableError(LLMRegError, ConnectionError):
    """The registry server cannot be reached (and no usable cached copy exists)."""

    code = "UNAVAILABLE"


class ServerError(LLMRegError):
    """The registry server answered with an internal error."""

    code = "SERVER_ERROR"


class ReadOnlyError(LLMRegError):
    """A static mirror serves ``resolve`` and ``get`` only; writes and queries go to the
    registry itself."""

    code = "READ_ONLY"


class MissingDependencyError(LLMRegError, ImportError):
    """An optional dependency is not installed; the message names the extra."""

    code = "DEPENDENCY_MISSING"


class InvalidWebhookError(LLMRegError, ValueError):
    """A webhook is refused: unknown event, bad format, or a URL the SSRF guard blocks."""

    code = "WEBHOOK_INVALID"


class UnknownOperationError(LLMRegError, LookupError):
    """A backend was called with an operation name that
    :data:`llmreg.contract.operations.OPERATIONS` does not declare (a programming error
    in a caller, named with the closest declared names)."""

    code = "OPERATION_UNKNOWN"
