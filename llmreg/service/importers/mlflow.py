"""Import from MLflow: prompts, registered models and their aliases, over MLflow's REST API.

llmreg speaks the tracking server's REST API with httpx; the ``mlflow`` package is not
needed. What comes across (see docs/integrations.md):

- every version of every registered prompt becomes a bundle under the prompt's name:
  MLflow's ``{{ var }}`` placeholders become Jinja2 with the variables declared (literal
  braces are kept literal), a chat prompt's system message becomes the system prompt,
  earlier user/assistant pairs become few-shot examples and the last user message the
  template; ``model_config`` becomes the model section. A model id that is not
  date-pinned stops the import, naming the prompt and the ``--model-map`` that fixes it;
- every version of every registered model becomes a weights bundle: its artifacts are
  streamed into the blob store and verified, the run id, source, metrics and params kept
  as provenance;
- aliases become environment slots through the mapping given (``production=production``).

Everything is read and checked first; :meth:`~llmreg.service.importers.apply.Imports.apply` then
writes it in one transaction.

A tracking server is a remote input, so every read is bounded, and each bound, when
hit, stops the import with one error naming the server, what was being read, the limit
and the fix, before anything is registered:

- **bytes**: one JSON answer at most :data:`MAX_ANSWER`, all of them together at most
  :data:`MAX_ANSWERS` (what is read is kept, as the plan); an artifact at most what
  MLflow lists for it (reading stops at the first byte more) and at most
  :data:`MAX_ARTIFACT`, the limit of a blob upload;
- **counts**: :data:`MAX_PAGES` pages per listing (an endless ``next_page_token``),
  :data:`MAX_ITEMS` names, versions or files, artifact folders at most
  :data:`MAX_FOLDER_DEPTH` deep and :data:`MAX_FOLDERS` per model version;
- **time**: every socket operation waits at most ``timeout`` seconds, a JSON answer
  arrives whole within :data:`REQUEST_DEADLINE`, an artifact at :data:`MIN_RATE` or
  faster once :data:`GRACE` has passed, and the whole import ends within
  :data:`IMPORT_DEADLINE`.

All listings (names, versions, runs, artifact folders) are read before the first
artifact byte is stored, so a bound hit while listing leaves even the blob store as it
was; one hit while downloading leaves only complete, unreferenced blobs, which
``llmreg gc`` removes.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, cast
from urllib.parse import urlencode, urlsplit

import httpcore
import httpx

from llmreg.bundle.pinning import check_model_id
from llmreg.bundle.render import referenced_variables
from llmreg.bundle.schema import Bundle
from llmreg.errors import (
    ConfigError,
    FloatingModelIdError,
    IntegrityError,
    InvalidBundleError,
    LLMRegError,
    PayloadTooLargeError,
    RegistryUnavailableError,
    shown,
)
from llmreg.policy import Policy
from llmreg.service.blobs import Blobs
from llmreg.service.importers.apply import ImportPlan, PlannedAlias, PlannedVersion
from llmreg.service.notifications.delivery import DeadlineBackend

IS_PROMPT = "mlflow.prompt.is_prompt"
PROMPT_TEXT = "mlflow.prompt.text"
PROMPT_TYPE = "_mlflow_prompt_type"
MODEL_CONFIG = "_mlflow_prompt_model_config"
RESPONSE_FORMAT = "_mlflow_prompt_response_format"
# MLflow's own variable pattern (mlflow.prompt.constants.PROMPT_TEMPLATE_VARIABLE_PATTERN).
VARIABLE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*(?:\.[a-zA-Z_][a-zA-Z0-9_]*)*)\s*\}\}")
JINJA_MARKS = ("{{", "}}", "{%", "%}", "{#", "#}")
MAX_ITEMS = 10_000  # names, versions per name, artifact files per version: each bounded
MAX_ANSWER = 16 * 1024 * 1024  # bytes of one JSON answer (the server's own body limit)
MAX_ANSWERS = 256 * 1024 * 1024  # bytes of all JSON answers of one import, together
MAX_PAGES = 200  # pages of one listing: MAX_ITEMS at 100 a page, twice over
MAX_FOLDER_DEPTH = 32  # levels of artifact folders under a model version
MAX_FOLDERS = 1_000  # artifact folders listed per model version
MAX_ARTIFACT = 64 * 1024**3  # bytes of one artifact: a blob upload's limit (server MAX_BLOB)
REQUEST_DEADLINE = 60.0  # seconds for one JSON answer, whole
GRACE = 30.0  # seconds an artifact may take before MIN_RATE applies
MIN_RATE = 64 * 1024  # bytes/s an artifact arrives at, on average, after GRACE
IMPORT_DEADLINE = 6 * 3600.0  # seconds for the whole import
PARAMS = {"temperature": "temperature", "max_tokens": "max_tokens", "top_p": "top_p",
          "top_k": "top_k", "frequency_penalty": "frequency_penalty",
          "presence_penalty": "presence_penalty", "stop_sequences": "stop"}
# A model_config without a provider: guessed from the id's family, else refused.
PROVIDERS = (("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"),
             ("claude-", "anthropic"), ("gemini-", "google"), ("mistral-", "mistral"))

Sink = Callable[[BinaryIO], tuple[str, int]]


def to_jinja(text: str) -> tuple[str, list[str]]:
    """An MLflow template as Jinja2 source and its variables, rendering the same text.

    A template with ``{% … %}`` is already Jinja2 for MLflow too and is kept as it is.
    Otherwise each ``{{ var }}`` becomes a Jinja2 variable and any other text that Jinja2
    would read as syntax is wrapped in ``{% raw %}``.

    Example:
        >>> to_jinja("Hi {{name}}, {{ name }} has {x} and {{ 1 }}")
        ('Hi {{ name }}, {{ name }}{% raw %} has {x} and {{ 1 }}{% endraw %}', ['name'])
    """
    if "{%" in text and "%}" in text:
        # MLflow's Jinja2 drops one trailing newline (keep_trailing_newline=False); llmreg
        # keeps them, so the source loses it here and both render the same text.
        source = text[:-1] if text.endswith("\n") else text
        return source, sorted(referenced_variables(source))
    parts: list[str] = []
    names: list[str] = []
    pos = 0
    for m in VARIABLE.finditer(text):
        name = m.group(1)
        if "." in name:
            raise InvalidBundleError(
                f"variable {{{{ {name} }}}}: llmreg variables are plain identifiers; rename "
                "it in MLflow (e.g. to " + name.replace(".", "_") + ")")
        parts.append(_literal(text[pos:m.start()]))
        parts.append("{{ " + name + " }}")
        if name not in names:
            names.append(name)
        pos = m.end()
    parts.append(_literal(text[pos:]))
    return "".join(parts), sorted(names)


def _literal(text: str) -> str:
    if not any(mark in text for mark in JINJA_MARKS):
        return text
    if "endraw" in text:
        raise InvalidBundleError("the template's literal text contains 'endraw'; llmreg "
                                 "cannot keep it literal")
    return "{% raw %}" + text + "{% endraw %}"


@dataclass(frozen=True)
class Artifacts:
    """What a model version's artifact folder holds: ``(relative path, size)`` per file."""

    root: str
    files: list[tuple[str, int]]


class MlflowSource:
    """A tracking server's model registry, read over its REST API, every read bounded
    (see the module's docstring).

    Example:
        >>> src = MlflowSource("http://127.0.0.1:5000")  # doctest: +SKIP
        >>> [m["name"] for m in src.registered_models(prompts=True)]  # doctest: +SKIP
        ['qa', 'summarise']
    """

    def __init__(self, tracking_uri: str, *, timeout: float = 30.0) -> None:
        uri = tracking_uri.rstrip("/")
        if not re.match(r"^https?://[^/\s]+", uri):
            raise ConfigError(f"--tracking-uri {shown(tracking_uri)} is not an http(s) URL; give "
                              "the tracking server's address, e.g. http://127.0.0.1:5000")
        self.uri = uri
        self.timeout = timeout
        self.answered = 0  # bytes of JSON answers read so far
        self.backend = DeadlineBackend(IMPORT_DEADLINE)
        self.ends_at = self.backend.at  # the whole import's deadline
        parts = urlsplit(uri)
        proxy = None
        if not urllib.request.proxy_bypass(parts.hostname or ""):
            proxy_url = urllib.request.getproxies().get(parts.scheme)
            proxy = httpcore.Proxy(proxy_url) if proxy_url else None
        self.http = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context() if parts.scheme == "https" else None,
            proxy=proxy, max_connections=1, network_backend=cast(
                "httpcore.NetworkBackend", self.backend))

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    @contextmanager
    def _request(self, url: str, what: str, deadline: float) -> Iterator[httpcore.Response]:
        """One GET of ``url`` whose answer must start (and, for JSON, end) within
        ``deadline`` seconds and the import's deadline; every failure is one line."""
        self.backend.at = min(time.monotonic() + deadline, self.ends_at)
        extensions = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"),
                                               self.timeout)}
        try:
            with self.http.stream("GET", url, extensions=extensions) as r:
                yield r
        except (httpcore.TimeoutException, TimeoutError):
            raise self._too_slow(what, deadline) from None
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
            if isinstance(exc, LLMRegError):
                raise
            raise RegistryUnavailableError(
                f"MLflow at {self.uri} cannot be reached or broke off {what} "
                f"({type(exc).__name__}: {exc}); check --tracking-uri and that `mlflow "
                "server` is running") from None

    def _too_slow(self, what: str, deadline: float) -> RegistryUnavailableError:
        if time.monotonic() >= self.ends_at:
            return RegistryUnavailableError(
                f"MLflow at {self.uri}: the import ran past its limit of {IMPORT_DEADLINE:g} "
                f"s at {what}; nothing was imported; check the server's health, or import "
                "from a host closer to it")
        if self.backend.expired():
            return RegistryUnavailableError(
                f"MLflow at {self.uri} took more than {deadline:g} s over {what}, the limit "
                "per request; nothing was imported; check the server's health")
        return RegistryUnavailableError(
            f"MLflow at {self.uri} sent nothing for {self.timeout:g} s during {what}; "
            "nothing was imported; check the server's health")

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One REST call, as JSON, at most :data:`MAX_ANSWER` bytes within
        :data:`REQUEST_DEADLINE`; an unreachable or non-MLflow server is one clear error."""
        url = f"{self.uri}/api/2.0/{path}" + (f"?{urlencode(params)}" if params else "")
        what = f"GET {path}"
        with self._request(url, what, REQUEST_DEADLINE) as r:
            body = b"".join(self._capped(r.iter_stream(), MAX_ANSWER, self._answer_too_big,
                                         what))
            status = r.status
        self.answered += len(body)
        if self.answered > MAX_ANSWERS:
            raise RegistryUnavailableError(
                f"MLflow at {self.uri}: its answers came to more than {MAX_ANSWERS} bytes by "
                f"{what}, the limit of one import; nothing was imported; is --tracking-uri "
                "an MLflow tracking server?")
        if status != 200:
            raise RegistryUnavailableError(
                f"MLflow at {self.uri} answered {status} to {what}: "
                f"{shown(body[:200].decode('utf-8', 'replace'))}; is --tracking-uri an MLflow "
                "tracking server?")
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise RegistryUnavailableError(
                f"{self.uri} answered {what} with something other than a JSON object; is "
                "--tracking-uri an MLflow tracking server?")
        return data

    def _answer_too_big(self, what: str, limit: int) -> LLMRegError:
        return RegistryUnavailableError(
            f"MLflow at {self.uri} answered {what} with more than {limit} bytes, the limit "
            "of one answer; nothing was imported; is --tracking-uri an MLflow tracking "
            "server?")

    def _capped(self, chunks: Iterator[bytes], limit: int,
                over: Callable[[str, int], LLMRegError], what: str,
                paced: bool = False) -> Iterator[bytes]:
        """``chunks``, stopped at the first byte past ``limit``; with ``paced``, refused
        when slower than :data:`MIN_RATE` on average once :data:`GRACE` has passed."""
        got = 0
        started = time.monotonic()
        try:
            for chunk in chunks:
                got += len(chunk)
                if got > limit:
                    raise over(what, limit)
                elapsed = time.monotonic() - started
                if paced and elapsed > GRACE and got < MIN_RATE * elapsed:
                    raise RegistryUnavailableError(
                        f"MLflow at {self.uri} sent {what} at {got / elapsed:.0f} bytes/s; "
                        f"the minimum is {MIN_RATE} bytes/s after {GRACE:g} s; nothing was "
                        "imported; check the server's health")
                yield chunk
        except (httpcore.TimeoutException, TimeoutError):
            raise self._too_slow(what, REQUEST_DEADLINE) from None
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise RegistryUnavailableError(
                f"MLflow at {self.uri} broke off {what} ({type(exc).__name__}: {exc}); "
                "nothing was imported") from None

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = None
        for _ in range(MAX_PAGES):
            page = self.get(path, {**params, **({"page_token": token} if token else {})})
            found = page.get(key, [])
            if not isinstance(found, list) or not all(isinstance(i, dict) for i in found):
                raise RegistryUnavailableError(
                    f"MLflow at {self.uri} answered GET {path} with {key} that is not a "
                    "list of objects; is --tracking-uri an MLflow tracking server?")
            items.extend(found)
            token = page.get("next_page_token")
            if len(items) > MAX_ITEMS:
                raise ConfigError(f"MLflow at {self.uri} lists more than {MAX_ITEMS} {key}; "
                                  "import it in parts")
            if not token:
                return items
        raise RegistryUnavailableError(
            f"MLflow at {self.uri} answered GET {path} with more than {MAX_PAGES} pages "
            f"(the limit; {len(items)} {key} so far, and still a next_page_token); nothing "
            "was imported; is --tracking-uri an MLflow tracking server?")

    def registered_models(self, *, prompts: bool) -> list[dict[str, Any]]:
        """Every registered prompt (``prompts=True``) or model, sorted by name."""
        params: dict[str, Any] = {"max_results": 100}
        if prompts:
            params["filter"] = f"tags.`{IS_PROMPT}` = 'true'"
        found = self._pages("mlflow/registered-models/search", "registered_models", params)
        if not prompts:
            found = [m for m in found if _tags(m).get(IS_PROMPT) != "true"]
        return sorted(found, key=lambda m: str(m["name"]))

    def versions(self, name: str, *, prompts: bool) -> list[dict[str, Any]]:
        """Every version of one registered prompt or model, oldest first."""
        quoted = name.replace("'", "\\'")
        flt = f"name = '{quoted}'"
        if prompts:
            flt += f" AND tags.`{IS_PROMPT}` = 'true'"
        found = self._pages("mlflow/model-versions/search", "model_versions",
                            {"filter": flt, "max_results": 200})
        return sorted(found, key=lambda v: int(v["version"]))

    def run(self, run_id: str) -> dict[str, Any]:
        """A run's metrics (latest values) and params."""
        data = self.get("mlflow/runs/get", {"run_id": run_id}).get("run", {}).get("data", {})
        return {"metrics": {m["key"]: _finite(m.get("value")) for m in data.get("metrics", [])},
                "params": {p["key"]: p.get("value") for p in data.get("params", [])}}

    def artifact_root(self, name: str, version: str, source: str) -> str:
        """The proxied artifact path of a model version (``mlflow-artifacts:`` URIs)."""
        uri = source
        if not uri.startswith("mlflow-artifacts:"):
            uri = str(self.get("mlflow/model-versions/get-download-uri",
                               {"name": name, "version": version}).get("artifact_uri", ""))
        if not uri.startswith("mlflow-artifacts:"):
            raise ConfigError(
                f"models:/{name}/{version}: its artifacts are at {shown(uri or source)}, which the "
                "tracking server does not serve; run `mlflow server` with artifact serving "
                "(--serve-artifacts, the default) and an --artifacts-destination")
        return re.sub(r"^mlflow-artifacts:(//[^/]*)?/*", "", uri).rstrip("/")

    def artifact_files(self, root: str) -> list[tuple[str, int]]:
        """Every file under ``root`` (relative path, size), bounded in depth, folders and
        files; a name that is not a plain file name is refused."""
        out: list[tuple[str, int]] = []
        stack = [("", 0)]
        folders = 0
        while stack:
            rel, depth = stack.pop()
            folders += 1
            if folders > MAX_FOLDERS:
                raise RegistryUnavailableError(
                    f"MLflow at {self.uri}: {shown(root)} holds more than {MAX_FOLDERS} artifact "
                    "folders, the limit per model version; nothing was imported; package "
                    "the model's files in fewer folders")
            path = f"{root}/{rel}" if rel else root
            listing = self.get("mlflow-artifacts/artifacts", {"path": path})
            for f in sorted(listing.get("files", []), key=lambda f: str(f["path"]),
                            reverse=True):
                child = f"{rel}/{_file_name(f['path'], root)}" if rel else \
                    _file_name(f["path"], root)
                if f.get("is_dir"):
                    if depth + 1 > MAX_FOLDER_DEPTH:
                        raise RegistryUnavailableError(
                            f"MLflow at {self.uri}: {shown(f'{root}/{child}')} is more than "
                            f"{MAX_FOLDER_DEPTH} folders deep, the limit; nothing was "
                            "imported; flatten the model's artifact folders")
                    stack.append((child, depth + 1))
                else:
                    out.append((child, _file_size(f.get("file_size"), shown(f"{root}/{child}"))))
                if len(out) > MAX_ITEMS:
                    raise ConfigError(f"{shown(root)} holds more than {MAX_ITEMS} files; llmreg "
                                      "imports at most that many per model version")
        return sorted(out)

    def download(self, root: str, rel: str, size: int, sink: Sink) -> tuple[str, int]:
        """Stream one artifact file into ``sink``, refusing it past ``size`` bytes (what
        MLflow lists) or :data:`MAX_ARTIFACT`; return its digest and size."""
        what = f"artifact {shown(f'{root}/{rel}')}"
        if size > MAX_ARTIFACT:
            raise PayloadTooLargeError(
                f"MLflow at {self.uri} lists {what} at {size} bytes; one blob may hold at "
                f"most {MAX_ARTIFACT} (64 GiB, as for an upload); nothing was imported; "
                "split the file")
        url = f"{self.uri}/api/2.0/mlflow-artifacts/artifacts/{root}/{rel}"
        with self._request(url, what, REQUEST_DEADLINE) as r:
            if r.status != 200:
                raise RegistryUnavailableError(
                    f"MLflow at {self.uri} answered {r.status} for {what}")
            self.backend.at = self.ends_at  # the body: paced, and by the import's deadline
            chunks = self._capped(r.iter_stream(), size, self._longer_than_listed, what,
                                  paced=True)
            return sink(cast(BinaryIO, _Reader(chunks)))

    def _longer_than_listed(self, what: str, size: int) -> LLMRegError:
        return IntegrityError(f"MLflow at {self.uri} sends more than the {size} bytes it "
                              f"lists for {what}; stopped there, nothing was imported")


def _file_name(value: Any, root: str) -> str:
    name = str(value)
    if not name or name in (".", "..") or "/" in name or "\\" in name or len(name) > 255 \
            or not name.isprintable():
        raise RegistryUnavailableError(
            f"MLflow lists a file {shown(name)} under {shown(root)}, which is not a plain file "
            "name; "
            "nothing was imported")
    return name


def _file_size(value: Any, label: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RegistryUnavailableError(
            f"MLflow lists {label} with file_size {shown(value)}, which is not a size in "
            "bytes; nothing was imported")
    return value


class _Reader(io.RawIOBase):
    """A binary stream over an iterator of chunks (for the blob store's put_stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self.rest:
            try:
                self.rest = next(self.chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self.rest))
        b[:n] = self.rest[:n]
        self.rest = self.rest[n:]
        return n


def hash_only(stream: BinaryIO) -> tuple[str, int]:
    """A sink that stores nothing: the digest and size of what ``stream`` yields
    (a dry run).

    Example:
        >>> hash_only(io.BytesIO(b"hello"))[1]
        5
    """
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(1 << 20):
        h.update(chunk)
        size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def blob_sink(blobs: Blobs) -> Sink:
    """A sink that streams into the blob store and verifies what it stored.

    Example:
        >>> from llmreg.store import MemoryStore
        >>> blob_sink(Blobs(MemoryStore()))(io.BytesIO(b"hello"))[1]
        5
    """
    def put(stream: BinaryIO) -> tuple[str, int]:
        desc = blobs.put_stream(stream)
        if not blobs.intact(desc.digest):
            raise IntegrityError(f"{desc.digest} did not verify after it was stored")
        return desc.digest, desc.size
    return put


def plan_mlflow(source: MlflowSource, policy: Policy, *, map_aliases: dict[str, str],
                model_map: dict[str, str], sink: Sink,
                default_model: str | None = None) -> ImportPlan:
    """Read everything from ``source`` and build the import plan; raise on the first bad
    input or bound hit, before anything is registered. Every listing is read before the
    first artifact is stored; a failure while downloading leaves only complete,
    unreferenced blobs, for ``gc``.

    Example:
        >>> plan = plan_mlflow(MlflowSource(uri), Policy.default(), map_aliases={},
        ...                    model_map={}, sink=hash_only)  # doctest: +SKIP
    """
    envs = {}
    for alias, env in map_aliases.items():
        try:
            envs[alias] = policy.canonical_env(env)
        except LLMRegError as exc:
            raise type(exc)(f"--map-aliases {alias}={env}: {exc}; fix the mapping") from None
    try:
        return _plan(source, policy, envs, model_map, sink, default_model)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        if isinstance(exc, LLMRegError):
            raise
        # A field missing or of the wrong type: one line, not a traceback.
        raise RegistryUnavailableError(
            f"MLflow at {source.uri} answered something llmreg cannot read "
            f"({type(exc).__name__}: {shown(str(exc), 80)}); nothing was imported; is "
            "--tracking-uri an MLflow tracking server?") from None


def _plan(source: MlflowSource, policy: Policy, envs: dict[str, str],
          model_map: dict[str, str], sink: Sink, default_model: str | None) -> ImportPlan:
    # Every listing first: a bound hit here leaves even the blob store as it was.
    listed = []
    for kind, models in (("prompt", source.registered_models(prompts=True)),
                         ("model", source.registered_models(prompts=False))):
        for model in models:
            name = str(model["name"])
            versions = [(v, None if kind == "prompt" else _model_listing(source, name, v))
                        for v in source.versions(name, prompts=kind == "prompt")]
            listed.append((name, model, versions))
    plan = ImportPlan(source=f"mlflow {source.uri}")
    digests: dict[tuple[str, str], str] = {}
    for name, model, versions in listed:
        for v, listing in versions:
            if listing is None:
                planned = _prompt_version(source, policy, name, v, model_map, default_model)
            else:
                planned = _model_version(source, name, v, listing, sink)
            plan.versions.append(planned)
            digests[(name, str(v["version"]))] = planned.bundle.digest
        for a in model.get("aliases", []):
            alias, number = str(a["alias"]), str(a["version"])
            if alias not in envs:
                plan.skipped_aliases.append(f"{name}@{alias}")
                continue
            if (name, number) not in digests:
                raise ConfigError(f"MLflow alias {name}@{alias} points to version {number}, "
                                  "which MLflow does not list")
            plan.aliases.append(PlannedAlias(
                name=name, alias=alias, env=envs[alias], digest=digests[(name, number)],
                reason=f"imported from MLflow {source.uri}: alias {shown(alias)} held "
                       f"version {number}; gates bypassed-by-import"))
    return plan


def _prompt_version(source: MlflowSource, policy: Policy, name: str, v: dict[str, Any],
                    model_map: dict[str, str], default_model: str | None) -> PlannedVersion:
    tags = _tags(v)
    label = f"prompts:/{name}/{v['version']}"
    try:
        manifest = _prompt_manifest(tags, model_map, default_model, policy)
        bundle = Bundle.from_dict(manifest,
                                  allow_floating_model_ids=policy.models.allow_floating)
    except LLMRegError as exc:
        raise type(exc)(f"MLflow prompt {shown(name)} version {v['version']}: {exc}") from None
    config = json.loads(tags[MODEL_CONFIG]) if MODEL_CONFIG in tags else None
    provenance = {"source": "mlflow", "tracking_uri": source.uri, "uri": label,
                  "mlflow_version": int(v["version"]),
                  "created_ms": v.get("creation_timestamp"), "user": v.get("user_id"),
                  "model_config": config,
                  "tags": {k: t for k, t in tags.items()
                           if k not in (IS_PROMPT, PROMPT_TEXT, PROMPT_TYPE, MODEL_CONFIG,
                                        RESPONSE_FORMAT)}}
    message = (v.get("description") or "").strip() or f"imported from {label}"
    return PlannedVersion(name=name, source=label, bundle=bundle,
                          message=f"{message} (MLflow {label})", provenance=provenance)


def _prompt_manifest(tags: dict[str, str], model_map: dict[str, str],
                     default_model: str | None, policy: Policy) -> dict[str, Any]:
    text = tags.get(PROMPT_TEXT)
    if text is None:
        raise InvalidBundleError(f"the version has no {PROMPT_TEXT} tag; it is not a prompt")
    manifest: dict[str, Any] = {"model": _model(tags, model_map, default_model, policy)}
    if tags.get(PROMPT_TYPE) == "chat":
        manifest.update(_chat(json.loads(text)))
    else:
        source, variables = to_jinja(text)
        manifest["template"] = {"source": source, "variables": variables}
    if RESPONSE_FORMAT in tags:
        manifest["response_schema"] = json.loads(tags[RESPONSE_FORMAT])
        manifest["model"]["parameters"]["response_format"] = "json_schema"
    return manifest


def _model(tags: dict[str, str], model_map: dict[str, str], default_model: str | None,
           policy: Policy) -> dict[str, Any]:
    config = json.loads(tags[MODEL_CONFIG]) if MODEL_CONFIG in tags else {}
    model_id = config.get("model_name")
    provider = config.get("provider")
    if not model_id:
        if not default_model or ":" not in default_model:
            raise InvalidBundleError(
                "model_config names no model_name; set it in MLflow, or give "
                "--default-model PROVIDER:ID (e.g. openai:gpt-4o-2024-08-06)")
        provider, _, model_id = default_model.partition(":")
    mapped = model_map.get(model_id, model_id)
    if not provider:
        provider = next((p for prefix, p in PROVIDERS if mapped.startswith(prefix)), None)
        if provider is None:
            raise InvalidBundleError(f"model_config gives no provider for {shown(mapped)}; set "
                                     "model_config.provider in MLflow")
    try:
        check_model_id(provider, mapped, allow_floating=policy.models.allow_floating)
    except FloatingModelIdError:
        raise FloatingModelIdError(
            f"model {shown(mapped)} is not date-pinned, and llmreg never weakens the pinning rule; "
            f"map it to a dated snapshot with --model-map {model_id}=<{model_id}-YYYY-MM-DD> "
            "(e.g. --model-map gpt-4o=gpt-4o-2024-08-06)") from None
    params = {ours: config[theirs] for theirs, ours in PARAMS.items()
              if config.get(theirs) is not None}
    return {"provider": provider, "id": mapped, "parameters": params}


def _chat(messages: Any) -> dict[str, Any]:
    """System message → system prompt; user/assistant pairs → few-shot; last user turn →
    the template."""
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages):
        raise InvalidBundleError("the chat prompt is not a list of {role, content: text} "
                                 "messages; llmreg imports text messages only")
    out: dict[str, Any] = {}
    rest = list(messages)
    if rest[0].get("role") == "system":
        system = rest.pop(0)["content"]
        if VARIABLE.search(system):
            raise InvalidBundleError("the system message uses variables; an llmreg system "
                                     "prompt is fixed text: move them into the user message")
        out["system_prompt"] = system
    if not rest or rest[-1].get("role") != "user":
        raise InvalidBundleError("the chat prompt must end with a user message (the template)")
    *shots, last = rest
    if len(shots) % 2 or any(m.get("role") != want for m, want in
                             zip(shots, ["user", "assistant"] * len(shots), strict=False)):
        raise InvalidBundleError("messages before the last must be user/assistant pairs "
                                 "(few-shot examples), after at most one system message")
    examples = []
    for user, assistant in zip(shots[::2], shots[1::2], strict=True):
        if VARIABLE.search(user["content"]) or VARIABLE.search(assistant["content"]):
            raise InvalidBundleError("an example message uses variables; only the last user "
                                     "message may")
        examples.append({"input": user["content"], "output": assistant["content"]})
    if examples:
        out["few_shot"] = examples
    source, variables = to_jinja(last["content"])
    out["template"] = {"source": source, "variables": variables}
    return out


def _model_listing(source: MlflowSource, name: str,
                   v: dict[str, Any]) -> tuple[Artifacts, dict[str, Any]]:
    """A model version's artifact files and its run, read before any download."""
    root = source.artifact_root(name, str(v["version"]), str(v.get("source") or ""))
    run_id = v.get("run_id") or None
    run = source.run(run_id) if run_id else {"metrics": {}, "params": {}}
    return Artifacts(root, source.artifact_files(root)), run


def _model_version(source: MlflowSource, name: str, v: dict[str, Any],
                   listing: tuple[Artifacts, dict[str, Any]], sink: Sink) -> PlannedVersion:
    label = f"models:/{name}/{v['version']}"
    found, run = listing
    root = found.root
    artifacts = []
    for rel, size in found.files:
        digest, got = source.download(root, rel, size, sink)
        if got != size:
            raise IntegrityError(f"{label}: artifact {rel} is {got} bytes; MLflow lists "
                                 f"{size}; nothing was imported")
        artifacts.append({"name": re.sub(r"[^A-Za-z0-9._-]", "_", rel.replace("/", "__")),
                          "media_type": "application/octet-stream", "digest": digest,
                          "size": size, "annotations": {"mlflow.path": rel}})
    if not artifacts:
        raise InvalidBundleError(f"{label} has no artifacts under {root}; nothing to import")
    try:
        bundle = Bundle.from_dict({"kind": "weights", "artifacts": artifacts})
    except LLMRegError as exc:
        raise type(exc)(f"MLflow model {shown(name)} version {v['version']}: {exc}") from None
    run_id = v.get("run_id") or None
    provenance = {"source": "mlflow", "tracking_uri": source.uri, "uri": label,
                  "mlflow_version": int(v["version"]), "run_id": run_id,
                  "artifact_source": v.get("source"), "created_ms": v.get("creation_timestamp"),
                  "user": v.get("user_id"), "metrics": run["metrics"], "params": run["params"],
                  "tags": _tags(v)}
    message = (v.get("description") or "").strip() or f"imported from {label}"
    return PlannedVersion(name=name, source=label, bundle=bundle,
                          message=f"{message} (MLflow {label})", provenance=provenance)


def _tags(entity: dict[str, Any]) -> dict[str, str]:
    return {str(t["key"]): str(t.get("value", "")) for t in entity.get("tags", [])}


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None
