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
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    RootModel,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from llmreg.digest import DIGEST_RE, canonical_json, digest_bytes, short
from llmreg.errors import InvalidBundleError, LLMRegError, TemplateSyntaxError
from llmreg.pinning import check_model_id

if TYPE_CHECKING:
    from pathlib import Path

    from llmreg.messages import Messages
    from llmreg.types import VersionInfo

SCHEMA_ID = "llmreg.bundle/v1"
ALLOW_FLOATING = "allow_floating_model_ids"  # validation-context key a policy may set


def normalise_newlines(value: Any) -> Any:
    """Turn CRLF and lone CR into LF, inside strings, lists and dicts.

    Example:
        >>> normalise_newlines({"a": ["x\\r\\ny"]})
        {'a': ['x\\ny']}
    """
    if isinstance(value, str):
        return value.replace("\r\n", "\n").replace("\r", "\n")
    if isinstance(value, list):
        return [normalise_newlines(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise_newlines(v) for k, v in value.items()}
    return value


Text = Annotated[str, BeforeValidator(normalise_newlines)]
Json = Annotated[JsonValue, BeforeValidator(normalise_newlines)]
JsonObject = Annotated[dict[str, JsonValue], BeforeValidator(normalise_newlines)]
Digest = Annotated[str, Field(pattern=DIGEST_RE.pattern)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
ArtifactName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    from jsonschema import SchemaError, validators

    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
    return schema


# --- model -----------------------------------------------------------------------


class GenerationParams(_Section):
    """Generation parameters; unset means the provider's default."""

    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=1)
    stop: list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    response_format: Literal["text", "json_object", "json_schema"] | None = None


class ModelRef(_Section):
    """A model by provider and pinned id; a self-hosted one also names its weights."""

    provider: str
    id: str = Field(min_length=1)
    weights: Digest | None = None


class ModelSpec(ModelRef):
    """The chat model and how it is called."""

    parameters: GenerationParams = GenerationParams()


# --- prompt ----------------------------------------------------------------------


class Template(_Section):
    """A Jinja2 template for the user turn, with its declared input variables."""

    source: Text = Field(min_length=1)
    variables: list[Identifier] = []

    @model_validator(mode="after")
    def _parse(self) -> Template:
        from llmreg.render import referenced_variables

        if len(set(self.variables)) != len(self.variables):
            raise ValueError(f"variables {self.variables} lists a name twice")
        used = referenced_variables(self.source)
        undeclared = sorted(used - set(self.variables))
        if undeclared:
            raise TemplateSyntaxError(
                f"source uses {', '.join(undeclared)} but variables declares "
                f"{self.variables}; add {undeclared} to template.variables"
            )
        return self


class Example(_Section):
    """One few-shot example: a user turn and the expected assistant answer.

    ``input`` is either the template's variables (rendered through the template) or
    literal user text.
    """

    input: JsonObject | Text
    output: Text


class Tool(_Section):
    """A function the model may call, with a JSON Schema for its arguments."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    description: Text = ""
    parameters: JsonObject = {"type": "object", "properties": {}}

    _schema = field_validator("parameters")(_check_json_schema)


# --- retrieval -------------------------------------------------------------------


class IndexRef(_Section):
    """The vector/search index, pinned by a version or digest."""

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)


class Reranker(ModelRef):
    top_n: int | None = Field(None, ge=1)


class Chunking(_Section):
    strategy: Literal["fixed", "recursive", "sentence", "markdown", "semantic", "none"]
    size: int | None = Field(None, ge=1)
    overlap: int | None = Field(None, ge=0)
    unit: Literal["tokens", "chars"] = "tokens"

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Chunking:
        if self.size is not None and self.overlap is not None and self.overlap >= self.size:
            raise ValueError(f"overlap {self.overlap} must be smaller than size {self.size}")
        return self


class Retrieval(_Section):
    """How context is fetched before the model is called."""

    retriever: str = Field(min_length=1)
    index: IndexRef
    embedding_model: ModelRef
    top_k: int = Field(ge=1, le=1000)
    filters: JsonObject = {}
    min_score: float | None = None
    reranker: Reranker | None = None
    chunking: Chunking | None = None


# --- post-processing -------------------------------------------------------------


class Strip(_Section):
    """Strip whitespace (or ``chars``) from both ends of the text."""

    type: Literal["strip"]
    chars: str | None = None


class RegexExtract(_Section):
    """Keep the match of ``pattern`` (a group by number or name); no match is an error
    unless ``required`` is false, in which case the text passes unchanged."""

    type: Literal["regex_extract"]
    pattern: str = Field(min_length=1)
    group: int | str = 0
    flags: list[Literal["IGNORECASE", "MULTILINE", "DOTALL"]] = []
    required: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"pattern {v!r} is not a valid regular expression: {exc}") from None
        return v


class JsonParse(_Section):
    """Parse the text as JSON (a surrounding Markdown code fence is removed first)."""

    type: Literal["json_parse"]
    strip_code_fences: bool = True


class JsonSchemaValidate(_Section):
    """Validate parsed JSON against a JSON Schema."""

    type: Literal["json_schema_validate"]
    json_schema: JsonObject

    _schema = field_validator("json_schema")(_check_json_schema)


class Truncate(_Section):
    """Cut the text to at most ``max_chars`` characters."""

    type: Literal["truncate"]
    max_chars: int = Field(ge=1)


Step = Annotated[
    Strip | RegexExtract | JsonParse | JsonSchemaValidate | Truncate,
    Field(discriminator="type"),
]
STEP_TYPES = ("strip", "regex_extract", "json_parse", "json_schema_validate", "truncate")
TEXT_STEPS = ("strip", "regex_extract", "truncate", "json_parse")


class Postprocess(RootModel[list[Step]]):
    """The ordered post-processing steps; call it on a model output to run them.

    Example:
        >>> steps = Postprocess.model_validate([{"type": "strip"}, {"type": "json_parse"}])
        >>> steps(' {"label": "spam"} ')
        {'label': 'spam'}
    """

    model_config = ConfigDict(frozen=True)

    def __call__(self, text: str) -> Any:
        from llmreg.postprocess import run_steps

        return run_steps(self.root, text)

    def __iter__(self) -> Iterator[Step]:  # type: ignore[override]
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)

    def __getitem__(self, index: int) -> Step:
        return self.root[index]


# --- artifacts -------------------------------------------------------------------


class Artifact(_Section):
    """A blob the bundle refers to, by digest (OCI descriptor)."""

    name: ArtifactName
    media_type: Annotated[str, Field(pattern=r"^[\w.+-]+/[\w.+-]+$")]
    digest: Digest
    size: int = Field(ge=0)
    annotations: dict[str, str] = {}


# --- the bundle ------------------------------------------------------------------


class Bundle(_Section):
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
            raise InvalidBundleError(f"artifacts: name {dupes[0]!r} is used twice")

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
        return canonical_json(self.canonical_dict())

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

    @property
    def served_from_cache(self) -> bool:
        """True when the registry was unreachable and this came from the local cache."""
        return self._cache_age is not None

    @property
    def stale_seconds(self) -> float | None:
        """How old the cached answer was when served from cache (else ``None``)."""
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
            return cls.model_validate(data, context={ALLOW_FLOATING: allow_floating_model_ids})
        except ValidationError as exc:
            raise as_bundle_error(exc) from None

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
            ...     "id": "claude-3-5-haiku-20241022"}, "system_prompt": "Be brief.",
            ...     "template": {"source": "{{ q }}", "variables": ["q"]}})
            >>> b.render(q="Hi?").to_anthropic()
            {'system': 'Be brief.', 'messages': [{'role': 'user', 'content': 'Hi?'}]}
        """
        from llmreg.render import render_bundle

        return render_bundle(self, variables)


def _check_step_order(steps: list[Any]) -> None:
    """Refuse step sequences that cannot work: text steps after ``json_parse``, etc."""
    state = "text"
    for i, step in enumerate(steps):
        kind = step.type
        if kind == "json_schema_validate" and state != "json":
            raise InvalidBundleError(
                f"postprocess[{i}] json_schema_validate needs parsed JSON; put a json_parse "
                "step before it"
            )
        if kind in TEXT_STEPS and state != "text":
            raise InvalidBundleError(
                f"postprocess[{i}] {kind} works on text, but an earlier json_parse already "
                "turned the output into JSON; move it before json_parse"
            )
        if kind == "json_parse":
            state = "json"


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


def as_bundle_error(exc: ValidationError) -> LLMRegError:
    """Turn a pydantic error into one llmreg error naming the field, value and fix."""
    err = exc.errors()[0]
    loc = format_loc(tuple(err["loc"]))
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, LLMRegError):
        cls: type[LLMRegError] = type(original)
        message = f"{loc}: {original}" if loc else str(original)
        return cls(message)
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    if err["type"] == "extra_forbidden":
        return InvalidBundleError(f"{loc}: unknown field; remove it or check its spelling{more}")
    if err["type"] == "missing":
        return InvalidBundleError(f"{loc}: required field is missing{more}")
    value = err.get("input")
    shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
    return InvalidBundleError(f"{loc or 'bundle'}: {msg}{shown}{more}")
