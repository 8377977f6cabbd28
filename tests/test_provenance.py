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


def test_the_remote_is_read_from_a_worktree_and_asked_again_when_config_changes(
        tmp_path: Path) -> None:
    from llmreg.provenance import _git_config_file

    main = tmp_path / "main"
    main.mkdir()
    git(main, "init", "-q", "-b", "main")
    (main / "a.txt").write_text("a\n")
    git(main, "add", "a.txt")
    git(main, "commit", "-q", "-m", "first")
    git(main, "remote", "add", "origin", "https://example.com/one.git")
    git(main, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "side")
    assert _git_config_file(tmp_path / "wt") == (main / ".git" / "config").resolve()
    assert git_info(tmp_path / "wt")["remote"] == "https://example.com/one.git"  # type: ignore[index]
    git(main, "remote", "set-url", "origin", "https://example.com/a-longer-name.git")
    assert git_info(tmp_path / "wt")["remote"] == \
        "https://example.com/a-longer-name.git"  # type: ignore[index]
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / ".git").write_text("not a gitdir line\n")
    assert _git_config_file(tmp_path / "odd") is None
