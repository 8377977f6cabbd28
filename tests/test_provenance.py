"""Provenance read from git: commit, dirty flag, branch, and a remote without secrets."""

from __future__ import annotations

import subprocess
from pathlib import Path

from llmreg.provenance import git_info


def git(path: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), "-c", "user.email=t@t", "-c", "user.name=t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def test_git_info_reads_commit_dirty_branch_and_a_clean_remote(tmp_path: Path) -> None:
    assert git_info(tmp_path) is None  # not a repository
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "train.py").write_text("print(1)\n")
    assert git_info(tmp_path) is None  # a repository without a commit yet
    git(tmp_path, "add", "train.py")
    git(tmp_path, "commit", "-q", "-m", "first")
    sha = git(tmp_path, "rev-parse", "HEAD")
    git(tmp_path, "remote", "add", "origin", "https://ci-bot:s3cret@github.com/acme/train.git")
    info = git_info(tmp_path / "train.py")  # a file: its folder's repository
    assert info is not None
    assert (info["commit"], info["dirty"], info["branch"]) == (sha, False, "main")
    assert info["remote"] == "https://github.com/acme/train.git"  # the token is dropped
    (tmp_path / "untracked.txt").write_text("ignored")
    assert git_info(tmp_path)["dirty"] is False  # type: ignore[index]  # untracked: clean
    (tmp_path / "train.py").write_text("print(2)\n")
    assert git_info(tmp_path)["dirty"] is True  # type: ignore[index]
    git(tmp_path, "remote", "set-url", "origin", "git@github.com:acme/train.git")
    assert git_info(tmp_path)["remote"] == "git@github.com:acme/train.git"  # type: ignore[index]
    git(tmp_path, "checkout", "-q", "--detach")
    assert git_info(tmp_path)["branch"] is None  # type: ignore[index]
