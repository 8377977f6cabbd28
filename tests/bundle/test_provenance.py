"""Provenance read from git: commit, dirty flag, branch, and a remote without secrets."""

from __future__ import annotations

import subprocess
from pathlib import Path

from llmreg.bundle.provenance import git_info


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
    from llmreg.bundle.provenance import _git_config_file

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


def test_a_registration_loop_asks_git_once_while_nothing_changes(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os
    import time

    import llmreg.bundle.provenance as prov

    git(tmp_path, "init", "-q", "-b", "main")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "prompt.txt").write_text("one\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    old = time.time() - 10  # files older than the racy window, as in a real loop
    refs = [tmp_path / ".git" / "HEAD", tmp_path / ".git" / "refs" / "heads" / "main"]
    for path in (bundle / "prompt.txt", *refs):
        os.utime(path, (old, old))
    asked = []
    real = prov._ask_git
    monkeypatch.setattr(prov, "_ask_git", lambda folder: asked.append(folder) or real(folder))
    first = git_info(bundle)
    assert [git_info(bundle) for _ in range(20)] == [first] * 20
    assert len(asked) == 1 and first is not None and first["dirty"] is False
    # An edit of the same size, at once: the file is too new to trust its timestamp.
    (bundle / "prompt.txt").write_text("two\n")
    assert git_info(bundle)["dirty"] is True  # type: ignore[index]
    assert git_info(bundle)["dirty"] is True  # type: ignore[index]
    assert len(asked) == 3
    # A commit moves the branch ref: the new commit is seen.
    git(tmp_path, "commit", "-q", "-am", "second")
    now = git_info(bundle)
    assert now is not None and now["commit"] == git(tmp_path, "rev-parse", "HEAD")
    assert now["dirty"] is False
    # Another tracked file changed out of sight: seen once the answer is FRESH_FOR old.
    for path in (bundle / "prompt.txt", *refs):
        os.utime(path, (old, old))
    git_info(bundle)
    count = len(asked)
    (tmp_path / "train.py").write_text("edited\n")
    git(tmp_path, "add", "train.py")  # staged: the index changed
    assert git_info(bundle)["dirty"] is True  # type: ignore[index]
    assert len(asked) == count + 1
    monkeypatch.setattr(prov, "FRESH_FOR", 0.0)
    git_info(bundle)
    assert len(asked) == count + 2


def test_outside_a_working_tree_git_is_not_run(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import llmreg.bundle.provenance as prov

    monkeypatch.delenv("GIT_DIR", raising=False)
    asked = []
    monkeypatch.setattr(prov, "_git", lambda *a: asked.append(a))
    assert git_info(tmp_path) is None and git_info(tmp_path / "x.yaml") is None
    assert asked == []  # an app outside a checkout registers without a git process each time
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere.git"))
    git_info(tmp_path)
    assert asked  # a GIT_DIR may point anywhere: git decides
