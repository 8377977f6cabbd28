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

import functools
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
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
    gitdir = _git_dir(folder)
    if gitdir is None:
        return None
    config = gitdir[1] / "config"
    return config if config.is_file() else None


def _git_dir(folder: Path) -> tuple[Path, Path] | None:
    """The git folders of the working tree holding ``folder``: its own (``HEAD``, the
    index) and the common one (refs, config), the same but for a worktree. Found by
    walking up; None where that is not plain."""
    for candidate in (folder, *folder.parents):
        dot = candidate / ".git"
        if dot.is_dir():
            return dot, dot
        if dot.is_file():
            text = dot.read_text(errors="replace").strip()
            if not text.startswith("gitdir:"):
                return None
            gitdir = (candidate / text[len("gitdir:"):].strip()).resolve()
            common = gitdir / "commondir"
            if common.is_file():
                return gitdir, (gitdir / common.read_text().strip()).resolve()
            return gitdir, gitdir
    return None


def git_info(path: Path, *, watch: bool = True) -> dict[str, Any] | None:
    """Commit SHA, dirty flag, branch and remote of the repository holding ``path``.

    Returns None outside a git working tree (found without running git: no ``.git``
    in the folder or above it) or without git installed. A registration
    loop does not pay a ``git status`` per version: the answer is reused for up to
    :data:`FRESH_FOR` seconds while nothing it depends on has changed — the repository's
    ``HEAD``, branch ref, packed refs and index, and (``path`` being a folder and
    ``watch`` true: a bundle folder) every file under it. A file changed too recently for
    its timestamp to tell is always asked about again.

    Example:
        >>> info = git_info(Path("."))
        >>> info is None or sorted(info) == ["branch", "commit", "dirty", "remote"]
        True
    """
    folder = path if path.is_dir() else path.parent
    if "GIT_DIR" not in os.environ and _git_dir(folder.resolve()) is None:
        return None  # no .git above it: not a working tree, and no git process to ask
    watched = folder if watch and path.is_dir() else None
    key = (folder.resolve(), watched is not None)
    before = _fingerprint(folder, watched)
    with _answers_lock:
        hit = _answers.get(key)
    now = time.monotonic()
    if (before is not None and hit is not None and hit.fingerprint == before
            and now - hit.asked < FRESH_FOR):
        return dict(hit.info) if hit.info is not None else None
    asked_wall = time.time()
    info = _ask_git(folder)
    after = _fingerprint(folder, watched)
    with _answers_lock:
        _answers.pop(key, None)
    if (before is not None and after is not None and before[1:] == after[1:]
            and after[-1] < asked_wall - RACY_SECONDS):
        # Same refs and files before and after asking (git may rewrite its own index),
        # and no file so new that an edit within its timestamp's tick could hide.
        with _answers_lock:
            if len(_answers) >= 64:
                _answers.pop(next(iter(_answers)))
            _answers[key] = _Answer(after, now, info)
    return dict(info) if info is not None else None


FRESH_FOR = 1.0  # seconds a git answer is reused while its fingerprint holds
RACY_SECONDS = 0.05  # a file this close to the question may have changed unseen
_WATCH_LIMIT = 256  # files under a bundle folder fingerprinted; more: always ask git


@dataclass(frozen=True)
class _Answer:
    fingerprint: tuple[Any, ...]
    asked: float
    info: dict[str, Any] | None


_answers: dict[tuple[Path, bool], _Answer] = {}
_answers_lock = threading.Lock()  # one process may register from several threads


def _fingerprint(folder: Path, watched: Path | None) -> tuple[Any, ...] | None:
    """What a git answer for ``folder`` depends on, cheaply: (the index's stat, the
    stats of HEAD, its branch ref and packed-refs, the stats of the files under
    ``watched``, the newest modification time among them). None: not plain enough to
    fingerprint (no repository found, or too many files)."""
    gitdir = _git_dir(folder.resolve())
    if gitdir is None:
        return None
    own, common = gitdir
    files = [own / "HEAD", common / "packed-refs"]
    try:
        head = (own / "HEAD").read_text(errors="replace").strip()
    except OSError:
        return None
    if head.startswith("ref:"):
        files.append(common / head[4:].strip())
    if watched is not None:
        found: list[str] = []
        for root, dirs, names in os.walk(watched):
            dirs[:] = [d for d in dirs if d != ".git"]
            found.extend(os.path.join(root, n) for n in names)
            if len(found) > _WATCH_LIMIT:
                return None
        files.extend(Path(f) for f in sorted(found))
    stats = [_stat(f) for f in files]
    newest = max((st[0] for st in stats if st is not None), default=0) / 1e9
    return (_stat(own / "index"), head, tuple(stats), newest)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _ask_git(folder: Path) -> dict[str, Any] | None:
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
    git = git_info(source, watch=True) if source else git_info(Path.cwd(), watch=False)
    return {"git": git, **_facts(user)}


def _facts(user: str) -> dict[str, Any]:
    return {"user": user, **_machine(),
            "captured_at": datetime.now(UTC).isoformat(timespec="seconds")}


@functools.cache
def _machine() -> dict[str, str]:
    """What does not change while a process runs: asked once."""
    return {
        "host": socket.gethostname(),
        "llmreg_version": __version__,
        "python_version": platform.python_version(),
        "platform": f"{sys.platform}-{platform.machine()}",
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
                seen[key] = git_info(folder, watch=source is not None)
        out.append({"git": seen[repo_of[source]], **_facts(user)})
    return out
