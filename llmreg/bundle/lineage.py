"""Lineage for trained models: weights as a bundle, datasets hashed deterministically.

A **dataset** is a file or a folder. A file's digest is the SHA-256 of its bytes. A
folder's digest is the SHA-256 of its *manifest*: the canonical JSON of every file's
relative POSIX path, digest and size, sorted by path. Rules, so that the same data
always gives the same digest:

- hidden files and folders (names starting with ``.``) are skipped (``.git``,
  ``.DS_Store``, editor files);
- a symlink to a file counts as that file's content; symlinked folders are not
  followed (no loops, no escaping the folder);
- permissions, owners and timestamps are not part of the digest;
- empty folders do not count.

The folder manifest is stored as a blob, so ``reproduce-check`` can say *which* files
differ, not only that something does.

Example:
    >>> info = hash_dataset("data/train")  # doctest: +SKIP
    >>> info.digest, info.kind, info.files  # doctest: +SKIP
    ('sha256:…', 'folder', 1204)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmreg.bundle.digest import canonical_json, digest_bytes, is_digest
from llmreg.errors import InvalidBundleError, InvalidEvidenceError

DATASET_SCHEMA = "llmreg.dataset/v1"


@dataclass(frozen=True)
class DatasetInfo:
    """A hashed dataset: its digest, and for a folder the manifest of its files."""

    digest: str
    kind: str  # "file", "folder" or "digest" (given, not hashed here)
    files: int = 1
    size: int = 0
    manifest: dict[str, Any] | None = field(default=None, compare=False)

    def provenance(self, manifest_digest: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": self.digest, "kind": self.kind, "files": self.files,
                               "size": self.size}
        if manifest_digest:
            out["manifest"] = manifest_digest
        return out


def hash_dataset(source: str | Path) -> DatasetInfo:
    """Hash a dataset file or folder (see the module docstring), or accept a digest."""
    from llmreg.bundle.directory import hash_file

    if isinstance(source, str) and is_digest(source):
        return DatasetInfo(digest=source, kind="digest", files=0)
    path = Path(source)
    if path.is_file():
        digest, size = hash_file(path)
        return DatasetInfo(digest=digest, kind="file", size=size)
    if not path.is_dir():
        raise InvalidBundleError(
            f"dataset {str(source)!r} is neither a file, a folder nor a 'sha256:…' digest")
    entries = []
    total = 0
    for rel in _walk(path):
        digest, size = hash_file(path / rel)
        entries.append({"path": rel, "digest": digest, "size": size})
        total += size
    manifest = {"schema": DATASET_SCHEMA, "files": entries}
    return DatasetInfo(digest=digest_bytes(canonical_json(manifest)), kind="folder",
                       files=len(entries), size=total, manifest=manifest)


def _walk(root: Path) -> list[str]:
    out = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith("."):
                continue
            full = Path(folder) / name
            if full.is_file():  # a symlink to a file counts; a dangling one does not
                out.append(full.relative_to(root).as_posix())
    return sorted(out)


def compare_datasets(registered: dict[str, Any] | None, rebuilt: DatasetInfo
                     ) -> list[str]:
    """Which files differ between a registered folder manifest and a rebuilt folder."""
    if registered is None or rebuilt.manifest is None:
        return []
    old = {f["path"]: f["digest"] for f in registered.get("files", [])}
    new = {f["path"]: f["digest"] for f in rebuilt.manifest["files"]}
    out = []
    for p in sorted(set(old) | set(new)):
        if p not in new:
            out.append(f"{p}: missing from the rebuilt dataset")
        elif p not in old:
            out.append(f"{p}: not in the registered dataset")
        elif old[p] != new[p]:
            out.append(f"{p}: content differs")
    return out


def weights_name(path: Path) -> str:
    """The artifact name of a weights file: its file name, checked."""
    import re

    if not re.fullmatch(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", path.name):
        raise InvalidBundleError(f"weights file {path.name!r}: artifact names use letters, "
                                 "digits, '.', '_' and '-'; rename the file")
    return path.name


def weights_files(weights: str | Path | list[str | Path]) -> list[Path]:
    """Expand ``weights`` (a file, a folder's top-level files, or a list) to files."""
    items = weights if isinstance(weights, list) else [weights]
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            out.append(p)
        else:
            raise InvalidBundleError(f"weights {str(item)!r} does not exist")
    if not out:
        raise InvalidBundleError("weights: no files given")
    return out


MEDIA_TYPES = {
    ".safetensors": "application/vnd.safetensors",
    ".gguf": "application/vnd.gguf",
    ".bin": "application/octet-stream",
    ".pt": "application/vnd.pytorch",
    ".onnx": "application/vnd.onnx",
    ".json": "application/json",
}


def media_type(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix, "application/octet-stream")


def load_config(config: dict[str, Any] | str | Path | None) -> dict[str, Any] | None:
    """A config given as a dict, or as a JSON/YAML file."""
    if config is None or isinstance(config, dict):
        return config
    from llmreg.bundle.parse import load_json, load_yaml

    p = Path(config)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidBundleError(f"config {str(p)!r} cannot be read: {exc.strerror}") from None
    label = f"config {str(p)!r}"
    data = load_yaml(text, label) if p.suffix in (".yaml", ".yml") else load_json(text, label)
    if not isinstance(data, dict):
        raise InvalidBundleError(f"config {str(p)!r} must hold a mapping")
    return data


def check_metrics(metrics: Any) -> dict[str, float]:
    """Validate a flat JSON object of numbers, naming the bad key.

    Example:
        >>> check_metrics({"accuracy": 0.93, "n": 500})
        {'accuracy': 0.93, 'n': 500.0}
    """
    hint = 'metrics are a flat JSON object of numbers, e.g. {"accuracy": 0.93}'
    if not isinstance(metrics, dict) or not metrics:
        raise InvalidEvidenceError(f"metrics must be a non-empty object; {hint}")
    out = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key or len(key) > 128:
            raise InvalidEvidenceError(f"metric name {key!r} is not allowed; {hint}")
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise InvalidEvidenceError(f"metrics[{key!r}] = {value!r} is not a number; {hint}")
        out[key] = float(value)
    return out
