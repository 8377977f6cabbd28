"""The bundle directory: the human-edited form of a bundle.

A folder holds ``llmreg.yaml`` (or ``llmreg.json``) and the text files it names::

    support-bot/
      llmreg.yaml        # model, retrieval, post-processing; names the files below
      system.md          # system_prompt: {file: system.md}
      user.j2            # template: {file: user.j2, variables: [question, context]}
      examples.jsonl     # few_shot: {file: examples.jsonl}
      labels.json        # response_schema: {file: labels.json}; also tools[].parameters

Loading inlines every file, normalises line endings to LF, drops a UTF-8 BOM, and
validates the result as a :class:`~llmreg.bundle.schema.Bundle`. Artifacts may be given as
``{name, file, media_type}``: the file is hashed and uploaded at registration. File
references must stay inside the folder (no absolute paths, no ``..``, no symlink
escaping it). The optional top-level ``name`` is the default registration name and is
not part of the digest; neither are file names.

Example:
    >>> from pathlib import Path
    >>> b = load_bundle_dir(Path("bundles/ticket-classifier"))  # doctest: +SKIP
    >>> b.digest  # doctest: +SKIP
    'sha256:…'
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from typing import Any

from llmreg.bundle.digest import format_digest, new_hasher
from llmreg.bundle.parse import load_json, load_yaml
from llmreg.bundle.schema import Bundle, normalise_newlines
from llmreg.errors import InvalidBundleError

MANIFEST_NAMES = ("llmreg.yaml", "llmreg.yml", "llmreg.json")
MAX_TEXT_BYTES = 4 * 1024 * 1024  # a prompt file over 4 MiB is a mistake, not a prompt
MAX_PATH = 1024  # characters in a path a manifest names


def find_manifest(folder: Path) -> Path:
    """Return the manifest file inside ``folder`` or raise naming what was expected."""
    if not folder.is_dir():
        raise InvalidBundleError(f"bundle directory {str(folder)!r} does not exist")
    for candidate in MANIFEST_NAMES:
        if (folder / candidate).is_file():
            return folder / candidate
    raise InvalidBundleError(
        f"{str(folder)!r} has no manifest; create {MANIFEST_NAMES[0]} in it "
        "(see docs/bundle-directory.md)"
    )


def looks_like_path(value: str | Path) -> bool:
    """Tell whether a CLI/client argument means a folder rather than a ref.

    Names never contain ``/``, so anything with one (or ``.``/``..``, or an existing
    path) is a folder.

    Example:
        >>> looks_like_path("bundles/chat"), looks_like_path("chat@3")
        (True, False)
        >>> looks_like_path("chat@" + "9" * 10_000), looks_like_path("chat\\x00")
        (False, False)
    """
    if isinstance(value, Path):
        return True
    if "/" in value or value in (".", ".."):
        return True
    try:
        return Path(value).exists()
    except (OSError, ValueError):  # too long for a file name, or a NUL: not a folder
        return False


def read_manifest(folder: Path) -> tuple[dict[str, Any], Path]:
    """Parse the manifest of ``folder`` into a dict (no file references resolved)."""
    path = find_manifest(folder)
    text = _read_text(path, path.name)
    data = load_json(text, path.name) if path.suffix == ".json" else load_yaml(text, path.name)
    if not isinstance(data, dict):
        raise InvalidBundleError(f"{path.name} must be a mapping of bundle sections")
    return data, path


def load_bundle_dir(
    folder: str | Path, *, allow_floating_model_ids: bool = False
) -> tuple[Bundle, str | None]:
    """Load a bundle directory; return the bundle and the manifest's ``name`` (if any)."""
    root = Path(folder)
    data, manifest = read_manifest(root)
    name = data.pop("name", None)
    if name is not None and not isinstance(name, str):
        raise InvalidBundleError(f"name {name!r} must be a string")
    data.pop("description", None)  # documentation for humans, not behaviour
    sources: dict[str, Path] = {}
    if isinstance(data.get("system_prompt"), dict):
        data["system_prompt"] = _file_text(root, data["system_prompt"], "system_prompt")
    template = data.get("template")
    if isinstance(template, dict) and "file" in template:
        template = dict(template)
        template["source"] = _file_text(root, {"file": template.pop("file")}, "template")
        data["template"] = template
    if isinstance(data.get("few_shot"), dict):
        data["few_shot"] = _jsonl(root, data["few_shot"], "few_shot")
    schema = data.get("response_schema")
    if isinstance(schema, dict) and set(schema) == {"file"}:
        data["response_schema"] = _json_file(root, schema, "response_schema")
    for i, tool in enumerate(data.get("tools") or []):
        if isinstance(tool, dict) and isinstance(tool.get("parameters"), dict) \
                and set(tool["parameters"]) == {"file"}:
            tool["parameters"] = _json_file(root, tool["parameters"], f"tools[{i}].parameters")
    for i, art in enumerate(data.get("artifacts") or []):
        if isinstance(art, dict) and "file" in art:
            path = _resolve(root, art.pop("file"), f"artifacts[{i}].file")
            digest, size = hash_file(path)
            art.setdefault("media_type", _guess_media_type(path))
            art.update(digest=digest, size=size)
            sources[digest] = path
    try:
        bundle = Bundle.from_dict(data, allow_floating_model_ids=allow_floating_model_ids)
    except InvalidBundleError as exc:
        raise type(exc)(with_lines(str(exc), manifest)) from None
    bundle._sources = sources
    return bundle, name


_LOC = re.compile(r"^([A-Za-z_][\w.\[\]-]*): ")


def with_lines(message: str, manifest: Path) -> str:
    """Prefix each ``field: problem`` of a validation message with the manifest's file
    name and the line of that field (the nearest line that exists for a missing one).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "llmreg.yaml"
        >>> _ = p.write_text("model:\\n  provider: openai\\n  temprature: 2\\n")
        >>> with_lines("model.temprature: unknown field", p)
        'llmreg.yaml line 3: model.temprature: unknown field'
    """
    import yaml

    try:
        root = yaml.compose(manifest.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (yaml.YAMLError, OSError, ValueError):
        root = None
    parts: list[str] = []
    for part in message.split("; "):
        m = _LOC.match(part)
        if m is None and parts:  # the rest of the previous problem ("…; add max_tokens")
            parts[-1] += f"; {part}"
            continue
        line = _line_of(root, m.group(1)) if m and root is not None else None
        where = f"{manifest.name} line {line}" if line else manifest.name
        parts.append(f"{where}: {part}")
    return "; ".join(parts)


def _line_of(node: Any, loc: str) -> int | None:
    import yaml

    line: int = node.start_mark.line + 1
    for key in re.findall(r"[^.\[\]]+", loc):
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == key), None)
            if child is not None:
                line = next(k for k, v in node.value if v is child).start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            child = node.value[int(key)]
            line = child.start_mark.line + 1
        if child is None:
            return line
        node = child
    return line


def _resolve(root: Path, ref: Any, field: str) -> Path:
    if not isinstance(ref, str) or not ref:
        raise InvalidBundleError(f"{field} must be a relative file path (got {ref!r})")
    if len(ref) > MAX_PATH:
        raise InvalidBundleError(f"{field} is a path of {len(ref)} characters; the limit is "
                                 f"{MAX_PATH}")
    try:
        return _inside(root, ref, field)
    except OSError as exc:
        raise InvalidBundleError(f"{field} {ref[:80]!r} cannot be read: {exc.strerror}"
                                 ) from None


def _inside(root: Path, ref: str, field: str) -> Path:
    rel = Path(ref)
    if rel.is_absolute() or ".." in rel.parts:
        raise InvalidBundleError(
            f"{field} {ref!r} must be a path inside the bundle directory, without '..'"
        )
    path = root / rel
    if not path.is_file():
        raise InvalidBundleError(f"{field} {ref!r} not found in {str(root)!r}")
    if not path.resolve().is_relative_to(root.resolve()):
        raise InvalidBundleError(f"{field} {ref!r} is a link that leaves the bundle directory")
    return path


def _read_text(path: Path, label: str) -> str:
    # Size first, then read at most one byte past the limit: a sparse 8 GB file (or one
    # growing while we read) is refused without being read.
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            raw = fh.read(MAX_TEXT_BYTES + 1) if size <= MAX_TEXT_BYTES else b""
    except OSError as exc:
        raise InvalidBundleError(f"{label} cannot be read: {exc.strerror}") from None
    if max(size, len(raw)) > MAX_TEXT_BYTES:
        raise InvalidBundleError(f"{label} is {max(size, len(raw))} bytes; text files are "
                                 "limited to 4 MiB")
    try:
        text = raw.decode("utf-8-sig")  # drops a BOM
    except UnicodeDecodeError as exc:
        raise InvalidBundleError(f"{label} is not UTF-8 text: {exc}") from None
    result: str = normalise_newlines(text)
    return result


def _file_text(root: Path, spec: dict[str, Any], field: str) -> str:
    if set(spec) != {"file"}:
        raise InvalidBundleError(
            f"{field} must be text or {{file: PATH}} (got keys {sorted(spec)})")
    return _read_text(_resolve(root, spec["file"], f"{field}.file"), spec["file"])


def _json_file(root: Path, spec: dict[str, Any], field: str) -> Any:
    return load_json(_file_text(root, spec, field), f"{field}.file {spec['file']!r}")


def _jsonl(root: Path, spec: dict[str, Any], field: str) -> list[Any]:
    text = _file_text(root, spec, field)
    rows = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        rows.append(load_json(line, f"{field}.file {spec['file']!r} line {lineno}"))
    return rows


def hash_file(path: Path) -> tuple[str, int]:
    """``(sha256:<hex>, size)`` of a file, streamed in 1 MiB chunks."""
    hasher = new_hasher()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            hasher.update(chunk)
            size += len(chunk)
    return format_digest(hasher), size


def _guess_media_type(path: Path) -> str:
    if path.suffix == ".jsonl":
        return "application/jsonl"
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
