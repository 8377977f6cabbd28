"""The sections a bundle is made of: model, template, examples, tools, retrieval,
post-processing steps and artifacts (pydantic models), and the text rules they share.

:mod:`llmreg.bundle.schema` assembles them into the :class:`~llmreg.bundle.schema.Bundle`; the
names here are re-exported there.

Example:
    >>> Template(source="Hello {{ name }}", variables=["name"]).variables
    ['name']
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    RootModel,
    field_validator,
    model_validator,
)

from llmreg.bundle.digest import DIGEST_RE
from llmreg.errors import InvalidBundleError, TemplateSyntaxError

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
        from llmreg.bundle.render import referenced_variables

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
        from llmreg.bundle.postprocess import run_steps

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
