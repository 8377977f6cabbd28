"""Run the code blocks of a Markdown doc, in order, in a fresh folder.

The convention (docs/testing.md, "Docs that run"):

- ```` ```bash ```` blocks run with ``bash -euo pipefail``, the project's venv first on
  PATH, in the doc's own fresh temporary folder (shared by all blocks of that doc, in
  order), with ``LLMREG_HOME=./.llmreg``. As in the reader's terminal, a variable a
  block exports (``export LLMREG_USER=ana``) is still set in the blocks after it; each
  block starts in the doc's folder again.
- ```` ```python ```` blocks run with the venv's python, each as its own process, in the
  same folder, in order.
- Every other block (```` ```yaml ````, ```` ```json ````, ```` ```text ````, untagged …)
  is not executed.
- ``<!-- docs-runner: skip — <reason> -->`` right before a block: not run (the reason is
  required).
- ``<!-- docs-runner: output -->`` right before a ```` ```text ```` block: that block must
  equal the stdout of the previous executed block, where a line that is ``...`` matches
  any number of lines and ``...`` inside a line matches any text.

``LLMREG_SRC`` is set to the checkout the doc comes from, so a doc can copy the example
bundles (``cp -r "$LLMREG_SRC/bundles" .``). Background processes a doc leaves behind
are killed when the doc ends.

Run one doc by hand: ``python -m tests.docs_runner docs/walkthrough.md``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_LANGS = {"bash": "bash", "python": "python"}
BLOCK_TIMEOUT = 180.0  # seconds per block
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-runner:\s*(?P<body>.*?)\s*-->\s*$")
_SKIP = re.compile(r"^skip(?:\s*(?:—|–|-{1,2}|:)\s*(?P<reason>.*))?$")


class DocsError(AssertionError):
    """A doc that does not run as written (or a malformed runner directive)."""


@dataclass
class Block:
    """One fenced code block of a doc."""

    lang: str
    code: str
    line: int                      # 1-based line of the opening fence
    skip: str | None = None        # the reason, when marked skip
    expect_output: bool = False    # preceded by `<!-- docs-runner: output -->`

    @property
    def runs(self) -> bool:
        return self.lang in RUN_LANGS and self.skip is None


@dataclass
class Result:
    """What running a doc did: every executed block and its stdout."""

    doc: Path
    ran: list[tuple[Block, str]] = field(default_factory=list)
    skipped: list[Block] = field(default_factory=list)
    checked: int = 0


def parse(text: str, name: str = "<doc>") -> list[Block]:
    """The fenced blocks of a Markdown text, with their runner directives."""
    lines = text.splitlines()
    blocks: list[Block] = []
    pending: str | None = None        # the directive on the last non-blank line
    pending_line = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _FENCE.match(line)
        if m is None:
            d = _DIRECTIVE.match(line)
            if d is not None:
                if pending is not None:
                    raise DocsError(f"{name}:{pending_line}: directive "
                                    f"'{pending}' is not followed by a code block")
                pending, pending_line = d.group("body"), i + 1
            elif line.strip() and pending is not None:
                raise DocsError(f"{name}:{pending_line}: directive '{pending}' must be "
                                "immediately before a code block")
            i += 1
            continue
        fence = m.group("fence")
        lang = (m.group("info").split() or [""])[0].lower()
        start = i + 1
        body: list[str] = []
        i += 1
        while i < len(lines):
            close = lines[i].strip()
            if close.startswith(fence[0] * len(fence)) and set(close) == {fence[0]}:
                break
            body.append(lines[i][len(m.group("indent")):] if m.group("indent") else lines[i])
            i += 1
        else:
            raise DocsError(f"{name}:{start}: code block is never closed")
        i += 1
        block = Block(lang=lang, code="\n".join(body) + "\n", line=start)
        if pending is not None:
            if pending == "output":
                if lang != "text":
                    raise DocsError(f"{name}:{start}: an output block must be ```text, "
                                    f"not ```{lang or '(untagged)'}")
                block.expect_output = True
            else:
                s = _SKIP.match(pending)
                if s is None:
                    raise DocsError(f"{name}:{pending_line}: unknown directive "
                                    f"'{pending}'; use 'skip — <reason>' or 'output'")
                if not (s.group("reason") or "").strip():
                    raise DocsError(f"{name}:{pending_line}: a skip needs a reason: "
                                    "<!-- docs-runner: skip — <why it cannot run> -->")
                block.skip = s.group("reason").strip()
            pending = None
        blocks.append(block)
    if pending is not None:
        raise DocsError(f"{name}:{pending_line}: directive '{pending}' is not followed "
                        "by a code block")
    return blocks


def output_matches(expected: str, actual: str) -> bool:
    """Whether `actual` fits `expected`, where `...` is a wildcard.

    A line that is exactly ``...`` matches any number of lines (none included);
    ``...`` inside a line matches any text on that line. Trailing spaces and trailing
    blank lines are ignored.
    """
    def norm(s: str) -> list[str]:
        out = [ln.rstrip() for ln in s.splitlines()]
        while out and not out[-1]:
            out.pop()
        return out

    exp, act = norm(expected), norm(actual)

    def line_ok(pattern: str, line: str) -> bool:
        if "..." not in pattern:
            return pattern == line
        rx = ".*".join(re.escape(p) for p in pattern.split("..."))
        return re.fullmatch(rx, line) is not None

    memo: dict[tuple[int, int], bool] = {}

    def go(i: int, j: int) -> bool:
        key = (i, j)
        if key in memo:
            return memo[key]
        if i == len(exp):
            ok = j == len(act)
        elif exp[i].strip() == "...":
            ok = any(go(i + 1, k) for k in range(j, len(act) + 1))
        else:
            ok = j < len(act) and line_ok(exp[i], act[j]) and go(i + 1, j + 1)
        memo[key] = ok
        return ok

    return go(0, 0)


def environment(folder: Path) -> dict[str, str]:
    """The environment blocks run in: the venv first on PATH, no stray LLMREG_*."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LLMREG_", "PYTEST", "COV_CORE", "VIRTUAL_ENV"))}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    env["LLMREG_HOME"] = "./.llmreg"
    env["LLMREG_SRC"] = str(ROOT)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "100"
    env["TERM"] = "dumb"
    return env


_SHELL_OWN = {"PWD", "OLDPWD", "SHLVL", "_", "__rc"}


def _exported(raw: bytes) -> dict[str, str]:
    """The environment a bash block left (``env -0``), minus the shell's own."""
    env: dict[str, str] = {}
    for item in raw.decode("utf-8", "replace").split("\0"):
        key, sep, value = item.partition("=")
        if sep and key not in _SHELL_OWN:
            env[key] = value
    return env


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tail(s: str, n: int = 40) -> str:
    lines = s.splitlines()
    return "\n".join(([f"… ({len(lines) - n} lines above)"] if len(lines) > n else [])
                     + lines[-n:])


def run_doc(doc: Path, folder: Path | None = None) -> Result:
    """Run every runnable block of `doc` in order; raise DocsError at the first failure."""
    name = str(doc.relative_to(ROOT)) if doc.is_relative_to(ROOT) else str(doc)
    blocks = parse(doc.read_text(encoding="utf-8"), name)
    own = folder is None
    work = Path(tempfile.mkdtemp(prefix="llmreg-docs-")) if folder is None else folder
    scripts = Path(tempfile.mkdtemp(prefix="llmreg-docs-blocks-"))
    env = environment(work)
    result = Result(doc=doc)
    groups: list[int] = []
    last: tuple[Block, str] | None = None
    try:
        for n, block in enumerate(blocks):
            if block.expect_output:
                if last is None:
                    raise DocsError(f"{name}:{block.line}: an output block with no "
                                    "executed block before it")
                if not output_matches(block.code, last[1]):
                    raise DocsError(
                        f"{name}:{block.line}: the output of the block at line "
                        f"{last[0].line} differs from the doc.\n--- doc shows:\n"
                        f"{block.code}--- the command printed:\n{last[1]}")
                result.checked += 1
                continue
            if block.skip is not None:
                result.skipped.append(block)
                continue
            if not block.runs:
                continue
            script = scripts / f"block{n}.{'sh' if block.lang == 'bash' else 'py'}"
            env_out = scripts / f"block{n}.env"
            code = block.code
            if block.lang == "bash":  # keep what the block exports for the next blocks
                code = (f"trap '__rc=$?; env -0 > {shlex.quote(str(env_out))}; "
                        "exit $__rc' EXIT\n" + code)
            script.write_text(code, encoding="utf-8")
            # Python runs with -c, as a reader's `python` in that folder would: the
            # folder (not this script's) is first on sys.path, so a file an earlier
            # block wrote there can be imported.
            argv = (["bash", "-euo", "pipefail", str(script)] if block.lang == "bash"
                    else [sys.executable, "-c", code])
            out_path, err_path = scripts / f"block{n}.out", scripts / f"block{n}.err"
            # Files, not pipes: a server a block starts in the background keeps the
            # pipe open, and the block must still count as finished.
            with out_path.open("wb") as out, err_path.open("wb") as err:
                proc = subprocess.Popen(argv, cwd=work, env=env, stdout=out, stderr=err,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
                groups.append(proc.pid)
                try:
                    rc = proc.wait(timeout=BLOCK_TIMEOUT)
                except subprocess.TimeoutExpired:
                    _kill_group(proc.pid)
                    rc = None
            stdout = out_path.read_text(encoding="utf-8", errors="replace")
            stderr = err_path.read_text(encoding="utf-8", errors="replace")
            if rc != 0:
                why = (f"timed out after {BLOCK_TIMEOUT:.0f}s" if rc is None
                       else f"exited {rc}")
                raise DocsError(
                    f"{name}:{block.line}: ```{block.lang} block {why}\n--- block:\n"
                    f"{block.code}--- stdout:\n{_tail(stdout)}\n--- stderr:\n"
                    f"{_tail(stderr)}\n--- folder: {work}")
            if env_out.exists():
                env = _exported(env_out.read_bytes())
            last = (block, stdout)
            result.ran.append(last)
    finally:
        for pgid in groups:
            _kill_group(pgid)
        shutil.rmtree(scripts, ignore_errors=True)
        if own:
            shutil.rmtree(work, ignore_errors=True)
    return result


def docs() -> list[Path]:
    """Every doc the runner checks: README.md and docs/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def main(argv: list[str]) -> int:
    """Run the docs named on the command line (all of them when none)."""
    paths = [Path(a).resolve() for a in argv] or docs()
    failed = 0
    for path in paths:
        t0 = time.monotonic()
        try:
            r = run_doc(path)
        except DocsError as e:
            failed += 1
            print(f"FAIL {path.name}\n{e}\n", file=sys.stderr)
            continue
        print(f"ok   {path.name}: {len(r.ran)} blocks run, {len(r.skipped)} skipped, "
              f"{r.checked} outputs checked ({time.monotonic() - t0:.1f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
