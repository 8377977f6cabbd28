"""Provenance captured at registration, so nobody reconstructs it by hand later.

Recorded: the git commit and dirty flag of the working tree the bundle came from
(tracked changes only; untracked build outputs do not make a tree dirty), the branch,
the remote URL with any credentials removed, the user, the host, and the llmreg,
Python and platform versions. Callers add their own keys (dataset digests, config,
metrics) with ``log_bundle(..., provenance={...})``.

Example:
    >>> p = capture(None, user="ana")
    >>> sorted(p)[:3]
    ['captured_at', 'git', 'host']
"""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from llmreg._version import __version__


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True, text=True, timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _clean_remote(url: str) -> str:
    """Drop ``user:token@`` from an https remote so secrets never reach the registry."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


_remotes: dict[tuple[Path, int, int], str | None] = {}


def _remote(folder: Path) -> str | None:
    """The folder's ``origin`` URL. Asked of git once per repository configuration (its
    ``config`` file's modification time): a registration loop would otherwise pay a
    second git call per version for an answer that has not changed."""
    config = _git_config_file(folder.resolve())
    if config is None:
        return _git(folder, "config", "--get", "remote.origin.url")
    stat = config.stat()
    key = (config, stat.st_mtime_ns, stat.st_size)
    if key not in _remotes:
        _remotes[key] = _git(folder, "config", "--get", "remote.origin.url")
    return _remotes[key]


def _git_config_file(folder: Path) -> Path | None:
    """The ``config`` file of the repository holding ``folder`` (a worktree's is its
    main repository's), found by walking up; None where that is not plain."""
    for candidate in (folder, *folder.parents):
        dot = candidate / ".git"
        if dot.is_dir():
            gitdir = dot
        elif dot.is_file():
            text = dot.read_text(errors="replace").strip()
            if not text.startswith("gitdir:"):
                return None
            gitdir = (candidate / text[len("gitdir:"):].strip()).resolve()
            common = gitdir / "commondir"
            if common.is_file():
                gitdir = (gitdir / common.read_text().strip()).resolve()
        else:
            continue
        config = gitdir / "config"
        return config if config.is_file() else None
    return None


def git_info(path: Path) -> dict[str, Any] | None:
    """Commit SHA, dirty flag, branch and remote of the repository holding ``path``.

    Returns None outside a git working tree (or without git installed).
    """
    folder = path if path.is_dir() else path.parent
    # One call gives commit, branch and changes: porcelain v2 with --branch headers.
    status = _git(folder, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    if status is None:
        return None
    headers = {}
    changes = False
    for line in status.splitlines():
        if line.startswith("# branch."):
            key, _, value = line[len("# branch."):].partition(" ")
            headers[key] = value
        elif line:
            changes = True
    commit = headers.get("oid")
    if not commit or commit == "(initial)":
        return None
    branch = headers.get("head")
    remote = _remote(folder)
    return {
        "commit": commit,
        "dirty": changes,
        "branch": None if branch in (None, "(detached)") else branch,
        "remote": _clean_remote(remote) if remote else None,
    }


def capture(source: Path | None, *, user: str) -> dict[str, Any]:
    """Capture provenance for a registration from ``source`` (or the current folder)."""
    return {"git": git_info(source or Path.cwd()), **_facts(user)}


def _facts(user: str) -> dict[str, Any]:
    return {
        "user": user,
        "host": socket.gethostname(),
        "llmreg_version": __version__,
        "python_version": platform.python_version(),
        "platform": f"{sys.platform}-{platform.machine()}",
        "captured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def capture_many(sources: list[Path | None], *, user: str) -> list[dict[str, Any]]:
    """:func:`capture` for each source, asking git once per repository (a batch of bundle
    folders in one working tree shares one ``git status``).

    Example:
        >>> a, b = capture_many([None, None], user="ana")
        >>> a["git"] == b["git"] and a["user"] == "ana"
        True
    """
    seen: dict[Path, dict[str, Any] | None] = {}
    repo_of: dict[Path | None, Path] = {}
    out = []
    for source in sources:
        if source not in repo_of:
            folder = (source or Path.cwd()).resolve()
            folder = folder if folder.is_dir() else folder.parent
            repo_of[source] = key = _git_config_file(folder) or folder
            if key not in seen:
                seen[key] = git_info(folder)
        out.append({"git": seen[repo_of[source]], **_facts(user)})
    return out
