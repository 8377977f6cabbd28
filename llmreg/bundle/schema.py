"""The bundle: everything that determines an LLM feature's behaviour, as one value.

A :class:`Bundle` holds the date-pinned model and its generation parameters, the
system prompt, the Jinja2 template with its declared variables, few-shot examples,
tools and response schema, the retrieval configuration, the post-processing steps
and artifact descriptors. It is immutable; its identity is :attr:`Bundle.digest`, the
SHA-256 of :meth:`Bundle.canonical_bytes` (RFC 8785 JSON of the content).

What is in the digest: every field that is set to something other than its default,
plus ``schema`` and ``kind``. Fields left at their default are omitted, so a field
added to the schema later (with a default) never changes an existing digest.

Example:
    >>> b = Bundle.model_validate({
    ...     "model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
    ...     "template": {"source": "Q: {{ q }}", "variables": ["q"]},
    ... })
    >>> b.digest == Bundle.from_canonical(b.canonical_bytes()).digest
    True
    >>> b.render(q="hi").to_openai()
    [{'role': 'user', 'content': 'Q: hi'}]
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from llmreg.bundle.digest import canonical_json, digest_bytes, short
from llmreg.bundle.pinning import check_model_id

# The sections live in llmreg.bundle.sections; they are re-exported here, where users look.
from llmreg.bundle.sections import ALLOW_FLOATING as ALLOW_FLOATING
from llmreg.bundle.sections import SCHEMA_ID as SCHEMA_ID
from llmreg.bundle.sections import STEP_TYPES as STEP_TYPES
from llmreg.bundle.sections import TEXT_STEPS as TEXT_STEPS
from llmreg.bundle.sections import Artifact as Artifact
from llmreg.bundle.sections import Chunking as Chunking
from llmreg.bundle.sections import Example as Example
from llmreg.bundle.sections import GenerationParams as GenerationParams
from llmreg.bundle.sections import IndexRef as IndexRef
from llmreg.bundle.sections import JsonObject as JsonObject
from llmreg.bundle.sections import JsonParse as JsonParse
from llmreg.bundle.sections import JsonSchemaValidate as JsonSchemaValidate
from llmreg.bundle.sections import ModelRef as ModelRef
from llmreg.bundle.sections import ModelSpec as ModelSpec
from llmreg.bundle.sections import Postprocess as Postprocess
from llmreg.bundle.sections import RegexExtract as RegexExtract
from llmreg.bundle.sections import Reranker as Reranker
from llmreg.bundle.sections import Retrieval as Retrieval
from llmreg.bundle.sections import Step as Step
from llmreg.bundle.sections import Strip as Strip
from llmreg.bundle.sections import Template as Template
from llmreg.bundle.sections import Text as Text
from llmreg.bundle.sections import Tool as Tool
from llmreg.bundle.sections import Truncate as Truncate
from llmreg.bundle.sections import _check_json_schema, _check_step_order, _Section
from llmreg.bundle.sections import normalise_newlines as normalise_newlines
from llmreg.bundle.served import ServedFrom
from llmreg.errors import InvalidBundleError, LLMRegError, shown

if TYPE_CHECKING:
    from pathlib import Path

    from llmreg.bundle.messages import Messages
    from llmreg.types import VersionInfo



# --- the bundle ------------------------------------------------------------------


class Bundle(_Section, ServedFrom):
    """An immutable LLM bundle. See the module docstring for the digest rules."""

    kind: Literal["llm", "weights"] = "llm"
    model: ModelSpec | None = None
    system_prompt: Text = ""
    template: Template | None = None
    few_shot: list[Example] = []
    tools: list[Tool] = []
    response_schema: JsonObject | None = None
    retrieval: Retrieval | None = None
    postprocess: Postprocess = Postprocess([])
    artifacts: list[Artifact] = []
    # Weights bundles only: what the artifacts are.
    framework: str | None = Field(None, max_length=64)
    base_model: str | None = Field(None, max_length=256)

    _digest: str | None = PrivateAttr(default=None)
    _info: VersionInfo | None = PrivateAttr(default=None)
    _created: bool = PrivateAttr(default=False)
    _sources: dict[str, Path] = PrivateAttr(default_factory=dict)
    _slot: tuple[str, int, str] | None = PrivateAttr(default=None)  # name, version, env
    _cache_age: float | None = PrivateAttr(default=None)
    _canonical: dict[str, Any] | None = PrivateAttr(default=None)

    _response_schema = field_validator("response_schema")(
        lambda v: None if v is None else _check_json_schema(v)
    )

    def check_pins(self, *, allow_floating: bool = False) -> None:
        """Raise :class:`FloatingModelIdError` for any model id that is not pinned.

        Checks the chat model, the embedding model and the reranker.
        """
        if self.model is not None:
            check_model_id(self.model.provider, self.model.id, weights=self.model.weights,
                           allow_floating=allow_floating)
        if self.retrieval is not None:
            em = self.retrieval.embedding_model
            check_model_id(em.provider, em.id, weights=em.weights,
                           field="retrieval.embedding_model.id", allow_floating=allow_floating)
            rr = self.retrieval.reranker
            if rr is not None:
                check_model_id(rr.provider, rr.id, weights=rr.weights,
                               field="retrieval.reranker.id", allow_floating=allow_floating)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Bundle:
        if self.kind == "weights":
            return self._consistent_weights()
        if self.model is None or self.template is None:
            absent = "model" if self.model is None else "template"
            raise InvalidBundleError(f"{absent}: required field is missing (an llm bundle "
                                     "needs model and template)")
        if self.framework is not None or self.base_model is not None:
            raise InvalidBundleError("framework and base_model belong to weights bundles "
                                     "(kind: weights)")
        self.check_pins(allow_floating=bool((info.context or {}).get(ALLOW_FLOATING)))
        if self.model.parameters.response_format == "json_schema" and not self.response_schema:
            raise InvalidBundleError(
                "model.parameters.response_format is 'json_schema' but response_schema is "
                "empty; add response_schema or use response_format 'json_object'"
            )
        declared = set(self.template.variables)
        for i, ex in enumerate(self.few_shot):
            if isinstance(ex.input, dict) and set(ex.input) != declared:
                missing = sorted(declared - set(ex.input))
                extra = sorted(set(ex.input) - declared)
                raise InvalidBundleError(
                    f"few_shot[{i}].input must give exactly the template variables "
                    f"{sorted(declared)}; missing {missing}, undeclared {extra}"
                )
        _check_step_order(self.postprocess.root)
        self._unique_artifacts()
        return self

    def _consistent_weights(self) -> Bundle:
        """A weights bundle is artifacts plus what they are; no prompt sections."""
        extra = [f for f in ("model", "template", "retrieval", "response_schema")
                 if getattr(self, f) is not None]
        extra.extend(f for f in ("system_prompt", "few_shot", "tools", "postprocess")
                     if getattr(self, f))
        if extra:
            raise InvalidBundleError(f"{extra[0]}: a weights bundle holds artifacts only "
                                     "(kind: weights); remove it")
        if not self.artifacts:
            raise InvalidBundleError("artifacts: a weights bundle needs at least one artifact")
        self._unique_artifacts()
        return self

    def _unique_artifacts(self) -> None:
        names = [a.name for a in self.artifacts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidBundleError(f"artifacts: name {shown(dupes[0])} is used twice")

    # -- identity ----------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        """Bundles are equal when their content is: same digest, whatever their name."""
        if not isinstance(other, Bundle):
            return NotImplemented
        return self.digest == other.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def canonical_dict(self) -> dict[str, Any]:
        """Return the content as it is hashed: non-default fields plus schema and kind.

        The result is cached (the bundle is immutable); treat it as read-only.
        """
        if self._canonical is None:
            data = self.model_dump(mode="json", exclude_defaults=True)
            data["kind"] = self.kind
            data["schema"] = SCHEMA_ID
            self._canonical = data
        return self._canonical

    def canonical_bytes(self) -> bytes:
        """Return the RFC 8785 canonical JSON bytes whose SHA-256 is the digest."""
        data = canonical_json(self.canonical_dict())
        if self._digest is None:  # hashing is cheap next to canonicalising: keep both
            self._digest = digest_bytes(data)
        return data

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of :meth:`canonical_bytes`."""
        if self._digest is None:
            self._digest = digest_bytes(self.canonical_bytes())
        return self._digest

    @property
    def short_digest(self) -> str:
        """The first 12 hex digits of the digest, for display."""
        return short(self.digest)

    @property
    def info(self) -> VersionInfo | None:
        """Registration details (name, version, author, …) when this came from a registry."""
        return self._info

    def __repr__(self) -> str:
        """``Bundle(name@version, digest, model)``: what the bundle is, at a glance.

        Example:
            >>> Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
            ...                   "template": {"source": "{{ q }}", "variables": ["q"]}})
            Bundle(unregistered, sha256:..., openai/gpt-4o-2024-08-06)
        """
        ref = (f"{self.name}@{self.version}" if self.name is not None
               else "unregistered")
        model = (f", {self.model.provider}/{self.model.id}" if self.model is not None
                 else f", {self.kind}")
        return f"Bundle({ref}, {self.digest[:19]}...{model})"


    @property
    def name(self) -> str | None:
        """The registered name, or ``None`` for a bundle that is not registered."""
        if self._info:
            return self._info.name
        return self._slot[0] if self._slot else None

    @property
    def version(self) -> int | None:
        """The registered version number, or ``None``."""
        if self._info:
            return self._info.version
        return self._slot[1] if self._slot else None

    @property
    def env(self) -> str | None:
        """The environment this bundle was resolved from, if it was resolved from one."""
        return self._slot[2] if self._slot else None

    def _cache_age_of(self) -> float | None:  # served_from_cache, stale_seconds
        return self._cache_age

    @property
    def newly_registered(self) -> bool:
        """True when the registration that returned this bundle created a new version."""
        return self._created

    def with_info(self, info: VersionInfo, *, created: bool = False) -> Bundle:
        """Return a copy carrying registration details (used by the registry)."""
        copy = self.model_copy()
        copy._digest = self._digest
        copy._info = info
        copy._created = created
        return copy

    def with_slot(self, name: str, version: int, env: str,
                  cache_age: float | None = None) -> Bundle:
        """Return a copy that knows the slot it was resolved from (used by clients)."""
        copy = self.model_copy()
        copy._digest = self._digest
        copy._slot = (name, version, env)
        copy._cache_age = cache_age
        return copy

    # -- construction -------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, *, allow_floating_model_ids: bool = False) -> Bundle:
        """Validate a manifest dict, raising :class:`InvalidBundleError` naming the field.

        Example:
            >>> Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o"},
            ...                   "template": {"source": "x"}})
            Traceback (most recent call last):
            ...
            llmreg.errors.FloatingModelIdError: model.id 'gpt-4o' is a floating alias for \
openai; pin a dated snapshot '<model>-YYYY-MM-DD', for example 'gpt-4o-2024-08-06'
        """
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "schema"}
        try:
            bundle = cls.model_validate(data, context={ALLOW_FLOATING: allow_floating_model_ids})
        except ValidationError as exc:
            raise as_bundle_error(exc) from None
        from llmreg.bundle.providers import provider_problems

        problems = provider_problems(bundle.model_dump(mode="json", exclude_none=True))
        if problems:  # a field the provider's request cannot carry is refused, not dropped
            raise InvalidBundleError("; ".join(problems))
        return bundle

    @classmethod
    def from_canonical(cls, data: bytes) -> Bundle:
        """Rebuild a bundle from stored canonical bytes (already validated once).

        Floating model ids are accepted here: the bundle passed the policy that was in
        force when it was registered, and a stored bundle must always load.
        """
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise InvalidBundleError(f"stored manifest is not JSON: {exc}") from None
        if not isinstance(raw, dict) or raw.get("schema") != SCHEMA_ID:
            got = raw.get("schema") if isinstance(raw, dict) else None
            raise InvalidBundleError(
                f"stored manifest has schema {got!r}; this llmreg reads {SCHEMA_ID!r}"
            )
        bundle = cls.from_dict(raw, allow_floating_model_ids=True)
        return bundle

    # -- use ----------------------------------------------------------------------

    def render(self, **variables: Any) -> Messages:
        """Render the chat messages: system, few-shot pairs, then the user turn.

        Every declared variable must be given and nothing else; the template runs in
        Jinja2's immutable sandbox with strict undefined.

        Example:
            >>> b = Bundle.from_dict({"model": {"provider": "anthropic",
            ...     "id": "claude-3-5-haiku-20241022", "parameters": {"max_tokens": 100}},
            ...     "system_prompt": "Be brief.",
            ...     "template": {"source": "{{ q }}", "variables": ["q"]}})
            >>> b.render(q="Hi?").to_anthropic()
            {'system': 'Be brief.', 'messages': [{'role': 'user', 'content': 'Hi?'}]}
        """
        from llmreg.bundle.render import render_manifest

        return render_manifest(self.canonical_dict(), variables)


def format_loc(loc: tuple[int | str, ...]) -> str:
    """Format a pydantic error location as ``few_shot[2].input`` (union branches dropped).

    Example:
        >>> format_loc(("postprocess", 1, "regex_extract", "pattern"))
        'postprocess[1].pattern'
    """
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in part or (i > 0 and isinstance(loc[i - 1], int) and part in STEP_TYPES):
            continue  # pydantic names the union branch it tried; users never wrote it
        else:
            out += f".{part}" if out else part
    return out


MAX_REPORTED = 20  # validation errors listed in one message


def as_bundle_error(exc: ValidationError) -> LLMRegError:
    """Turn a pydantic error into one llmreg error naming every bad field, its value and
    the fix (all of them, ``; ``-separated, not only the first).

    Example:
        >>> try:
        ...     Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06",
        ...                       "parameters": {"temprature": 0.2, "top_p": 7}}})
        ... except LLMRegError as e:
        ...     print(e)
        model.parameters.top_p: Input should be less than or equal to 1 (got 7); \
model.parameters.temprature: unknown field (did you mean 'temperature'?)
    """
    errors = exc.errors()
    seen: list[str] = []
    cls: type[LLMRegError] = InvalidBundleError
    for n, err in enumerate(errors):
        text, err_cls = _one_error(err)
        if n == 0:
            cls = err_cls
        if text not in seen:
            seen.append(text)
    shown = seen[:MAX_REPORTED]
    more = f"; and {len(seen) - MAX_REPORTED} more" if len(seen) > MAX_REPORTED else ""
    return cls("; ".join(shown) + more)


def _one_error(err: Any) -> tuple[str, type[LLMRegError]]:
    loc = format_loc(tuple(err["loc"]))
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, LLMRegError):
        return (f"{loc}: {original}" if loc else str(original)), type(original)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        close = _close_field(tuple(err["loc"]))
        hint = f"did you mean {close!r}?" if close else "remove it or check its spelling"
        return f"{loc}: unknown field ({hint})", InvalidBundleError
    if err["type"] == "missing":
        return f"{loc}: required field is missing", InvalidBundleError
    value = err.get("input")
    got = "" if isinstance(value, dict | list) else f" (got {shown(value)})"
    return f"{loc or 'bundle'}: {msg}{got}", InvalidBundleError


def _close_field(loc: tuple[int | str, ...]) -> str | None:
    """The known field closest to the unknown last part of ``loc``, if one is close."""
    import difflib
    import typing

    model: Any = Bundle
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        stack, model = [field.annotation], None
        while stack:  # the first pydantic model inside the annotation (lists, unions)
            t = stack.pop(0)
            if isinstance(t, type) and issubclass(t, BaseModel):
                model = t
                break
            stack.extend(typing.get_args(t))
    if model is None or not isinstance(loc[-1], str):
        return None
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
    return close[0] if close else None
