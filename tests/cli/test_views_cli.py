"""CLI commands and views no other test runs: token list/revoke, pull, gc, log-model,
the human diff of every section, and show's provenance, weights, tools and retrieval
rows. Assertions are on the text as users see it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from llmreg.store import LocalStore
from llmreg_cli.main import app


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), prog_name="llmreg",
                             env={"COLUMNS": "200", "TERM": "dumb"})

    return invoke


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def write_bundle(folder: Path, manifest: dict[str, Any], files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "llmreg.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    for name, content in files.items():
        (folder / name).write_text(content)
    return folder


RETRIEVAL = {"retriever": "pgvector", "index": {"name": "kb", "version": "2026-01-01"},
             "embedding_model": {"provider": "openai", "id": "text-embedding-3-large"},
             "top_k": 4}
OLD = {
    "model": {"provider": "openai", "id": "gpt-4o-2024-08-06",
              "parameters": {"temperature": 0.2, "max_tokens": 100}},
    "system_prompt": "Be brief.\nBe kind.\n",
    "template": {"source": "Q: {{ q }} {{ old }}", "variables": ["q", "old"]},
    "few_shot": [{"input": "a", "output": "A"}, {"input": "b", "output": "B"},
                 {"input": "c", "output": "C"}],
    "tools": [{"name": "search", "description": "Search the KB"}],
    "response_schema": {"type": "object"},
    "retrieval": RETRIEVAL,
    "postprocess": [{"type": "strip"}, {"type": "truncate", "max_chars": 100},
                    {"type": "json_parse"}],
    "artifacts": [{"name": "eval-set", "file": "eval.jsonl", "media_type": "application/jsonl"},
                  {"name": "notes", "file": "notes.txt", "media_type": "text/plain"}],
}
NEW = {
    "model": {"provider": "anthropic", "id": "claude-sonnet-4-5-20250929",
              "parameters": {"temperature": 0.7, "max_tokens": 100, "top_p": 0.9}},
    "system_prompt": "Be brief.\nBe nice.\n",
    "template": {"source": "Question: {{ q }} {{ ctx }}", "variables": ["q", "ctx"]},
    "few_shot": [{"input": "c", "output": "C"}, {"input": "a", "output": "A!"},
                 {"input": "d", "output": "D"}],
    "tools": [{"name": "search", "description": "Search the knowledge base"},
              {"name": "lookup"}],
    "response_schema": {"type": "object", "required": ["answer"]},
    "retrieval": {**RETRIEVAL, "top_k": 8,
                  "reranker": {"provider": "cohere", "id": "rerank-english-v3.0"}},
    "postprocess": [{"type": "regex_extract", "pattern": "A: (.*)", "group": 1},
                    {"type": "strip"}, {"type": "truncate", "max_chars": 200}],
    "artifacts": [{"name": "eval-set", "file": "eval.jsonl", "media_type": "application/jsonl"},
                  {"name": "labels", "file": "labels.txt", "media_type": "text/plain"}],
}


@pytest.fixture
def old_new(tmp_path: Path) -> tuple[Path, Path]:
    old = write_bundle(tmp_path / "old", OLD, {"eval.jsonl": '{"q": 1}\n', "notes.txt": "n\n"})
    new = write_bundle(tmp_path / "new", NEW, {"eval.jsonl": '{"q": 2}\n', "labels.txt": "l\n"})
    return old, new


def test_human_diff_shows_every_section(run, old_new: tuple[Path, Path]) -> None:
    old, new = old_new
    result = run("diff", str(old), str(new))
    assert result.exit_code == 0, result.output
    text = lines(result.stdout)
    assert re.fullmatch(rf"{re.escape(str(old))} \([0-9a-f]{{12}}\) → "
                        rf"{re.escape(str(new))} \([0-9a-f]{{12}}\)", text[0])
    body = "\n".join(text[1:])
    expected = """
model
  ! provider changed openai → anthropic
  ! model pin changed gpt-4o-2024-08-06 → claude-sonnet-4-5-20250929
  temperature: 0.2 → 0.7
  + top_p: 0.9

system_prompt (+1 -1 lines)
  @@ -1,2 +1,2 @@
   Be brief.
  -Be kind.
  +Be nice.

template
  + variable ctx
  - variable old
  @@ -1 +1 @@
  -Q: {{ q }} {{ old }}
  +Question: {{ q }} {{ ctx }}

few_shot (3 → 3 examples)
  + added #2: {"input": "d", "output": "D"}
  - removed #1: {"input": "b", "output": "B"}
  ~ modified #0 → #1 (same input)
  @@ -1 +1 @@
  -A
  +A!

tools
  + tools[lookup]: {"name": "lookup", "description": "", "parameters": {"type": "object", \
"properties": {}}}
  tools[search].description: 'Search the KB' → 'Search the knowledge base'

response_schema
  + required: ["answer"]

retrieval
  + reranker: {"provider": "cohere", "id": "rerank-english-v3.0"}
  top_k: 4 → 8

postprocess
  inserted regex_extract at #0
  changed truncate #2
    max_chars: 100 → 200
  removed json_parse from #2

artifacts
  eval-set swapped 727c16eb1b22 (9 B) → 7cde298a5e99 (9 B)
  + labels 6d7ebc44c5bc (2 B)
  - notes a4fb621495a0 (2 B)"""
    assert body == expected
    assert run("diff", str(old), str(new), "--exit-code").exit_code == 1


def test_show_lists_tools_retrieval_schema_postprocess_and_artifacts(
        run, old_new: tuple[Path, Path]) -> None:
    _, new = old_new
    result = run("show", str(new))
    assert result.exit_code == 0, result.output
    assert lines(result.stdout)[0].startswith("(unregistered bundle)  sha256:")
    rows = [" ".join(line.split()) for line in lines(result.stdout)[1:]]
    assert rows == [
        "model anthropic claude-sonnet-4-5-20250929",
        "parameters temperature=0.7, max_tokens=100, top_p=0.9",
        "system prompt 2 lines",
        "template variables: q, ctx",
        "few-shot 3 examples",
        "tools search, lookup",
        "response schema yes",
        "retrieval pgvector kb@2026-01-01, top_k=8, embed text-embedding-3-large, "
        "rerank rerank-english-v3.0",
        "postprocess regex_extract → strip → truncate",
        "artifact eval-set application/jsonl 9 B 7cde298a5e99",
        "artifact labels text/plain 2 B 6d7ebc44c5bc",
    ]


@pytest.fixture
def lora(run, tmp_path: Path) -> str:
    """lora@1 logged from the CLI with its dataset, config, metrics and base model."""
    assert run("init").exit_code == 0
    (tmp_path / "w.bin").write_bytes(bytes(range(256)) * 12)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "a.txt").write_text("a\n")
    (tmp_path / "ds" / "b.txt").write_text("b\n")
    (tmp_path / "cfg.json").write_text('{"lr": 0.001, "epochs": 3}')
    (tmp_path / "m.json").write_text('{"loss": 0.25}')
    result = run("log-model", "lora", "--weights", str(tmp_path / "w.bin"), "-m", "first run",
                 "--dataset", str(tmp_path / "ds"), "--config", str(tmp_path / "cfg.json"),
                 "--metrics", str(tmp_path / "m.json"), "--framework", "pytorch",
                 "--base-model", "llama-3-8b")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"logged lora@1  [0-9a-f]{12}  \(1 file\(s\)\)",
                        lines(result.stdout)[-1])
    history = json.loads(run("history", "lora", "--json").stdout)
    return str(history[0]["digest"])


def test_log_model_again_is_unchanged_and_json_reports_it(run, lora: str,
                                                          tmp_path: Path) -> None:
    args = ("log-model", "lora", "--weights", str(tmp_path / "w.bin"), "-m", "again",
            "--dataset", str(tmp_path / "ds"), "--config", str(tmp_path / "cfg.json"),
            "--metrics", str(tmp_path / "m.json"), "--framework", "pytorch",
            "--base-model", "llama-3-8b")
    again = run(*args)
    assert again.exit_code == 0
    assert lines(again.stdout)[-1] == f"unchanged lora@1  {lora[7:19]}  (1 file(s))"
    as_json = json.loads(run(*args, "--json").stdout)
    assert as_json == {"name": "lora", "version": 1, "digest": lora, "created": False}
    (tmp_path / "bad.json").write_text("{nope")
    bad = run("log-model", "lora", "--weights", str(tmp_path / "w.bin"), "-m", "x",
              "--metrics", str(tmp_path / "bad.json"))
    assert bad.exit_code == 1 and f"--metrics {str(tmp_path / 'bad.json')!r}" in bad.stderr


def test_show_a_model_lists_its_provenance(run, lora: str) -> None:
    result = run("show", "lora@1")
    assert result.exit_code == 0, result.output
    text = lines(result.stdout)
    assert text[0] == f"lora@1  {lora}"
    assert re.fullmatch(r"registered \d{4}-\d\d-\d\d \d\d:\d\d UTC by tester: first run",
                        text[1])
    assert text[2].startswith("git ")
    assert text[3].startswith("provenance: user tester, llmreg ")
    rows = [" ".join(line.split()) for line in text[4:]]
    assert rows[:2] == ["kind weights (pytorch)", "base model llama-3-8b"]
    assert re.fullmatch(r"dataset sha256:[0-9a-f]{64} \(folder, 2 file\(s\)\)", rows[2])
    assert rows[3:5] == ["config lr=0.001, epochs=3", "metrics loss=0.25"]
    assert re.fullmatch(r"artifact w\.bin application/octet-stream 3072 B [0-9a-f]{12}",
                        rows[5])


def test_show_follows_a_weights_reference(run, lora: str, tmp_path: Path) -> None:
    hosted = write_bundle(tmp_path / "hosted", {
        "model": {"provider": "self-hosted", "id": "llama-3-8b-lora-2026-11-01",
                  "weights": lora},
        "template": {"source": "Q: {{ q }}", "variables": ["q"]}}, {})
    result = run("show", str(hosted))
    assert result.exit_code == 0, result.output
    rows = [" ".join(line.split()) for line in lines(result.stdout)[1:3]]
    assert rows == [f"model self-hosted llama-3-8b-lora-2026-11-01 weights {lora}",
                    "weights bundle lora@1 (first run)"]


def test_pull_downloads_verified_artifacts(run, old_new: tuple[Path, Path],
                                           tmp_path: Path) -> None:
    _, new = old_new
    assert run("init").exit_code == 0
    assert run("register", str(new), "-m", "first").exit_code == 0
    result = run("pull", "new@1", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert [line for line in lines(result.stdout) if line] == [
        f"{out / 'eval-set'}  (9 bytes, verified)",
        f"{out / 'labels'}  (2 bytes, verified)"]
    assert (out / "labels").read_text() == "l\n"
    as_json = run("pull", "new@1", str(out), "--json")
    assert json.loads(as_json.stdout) == [str(out / "eval-set"), str(out / "labels")]
    hosted = write_bundle(tmp_path / "plain", {
        "model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
        "template": {"source": "Q: {{ q }}", "variables": ["q"]}}, {})
    assert run("register", str(hosted), "-m", "first").exit_code == 0
    empty = run("pull", "plain@1", str(tmp_path / "none"))
    assert [line for line in lines(empty.stdout) if line] == ["plain@1 has no artifacts"]


def test_gc_lists_then_deletes_unreferenced_blobs(run, old_new: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    _, new = old_new
    assert run("init").exit_code == 0
    assert run("register", str(new), "-m", "first").exit_code == 0
    home = tmp_path / "home" / ".llmreg"
    orphan = LocalStore(home).put_bytes(b"nothing refers to me").digest
    young = run("gc", "--dry-run")
    assert lines(young.stdout) == ["0 unreferenced blob(s) older than 24h"]
    dry = run("gc", "--dry-run", "--grace-hours", "0")
    assert lines(dry.stdout) == [f"would delete {orphan}",
                                 "1 unreferenced blob(s) older than 0h"]
    assert LocalStore(home).exists(orphan)
    gone = run("gc", "--grace-hours", "0", "--json")
    assert json.loads(gone.stdout) == {"blobs": [orphan], "deleted": True}
    assert not LocalStore(home).exists(orphan)
    assert lines(run("gc", "--grace-hours", "0").stdout) == [
        "0 unreferenced blob(s) older than 0h"]
    assert run("verify", "new@1").exit_code == 0  # what is referenced stays


def test_token_create_list_revoke(run) -> None:
    assert run("init").exit_code == 0
    created = run("token", "create", "--subject", "bob", "--role", "reader")
    assert created.exit_code == 0, created.output
    first, secret = lines(created.stdout)
    token_id = re.fullmatch(r"created token ([0-9a-f]{12}) for bob \(role reader\), never "
                            r"expires \(give --expires 90d for one that does\); store it "
                            r"now, it is not shown again:", first)
    assert token_id is not None and secret.startswith(f"llmreg_{token_id[1]}_")
    listed = run("token", "list")
    header, row = (" ".join(line.split()) for line in lines(listed.stdout))
    assert header == "id subject role teams status created by expires revoked"
    assert re.fullmatch(rf"{token_id[1]} bob reader - active \d{{4}}-\d\d-\d\d \d\d:\d\d UTC "
                        r"tester never", row)
    assert secret not in listed.stdout  # never shown again
    revoked = run("token", "revoke", token_id[1])
    assert " ".join(lines(revoked.stdout)) == (
        f"revoked token {token_id[1]} (bob): every server refuses it within 5 seconds (one "
        "you revoked it through, at once) and its web sessions end. A revoked token cannot "
        "be rotated; if bob still needs access, create a new one: `llmreg token create "
        "--subject bob --role reader`")
    (info,) = json.loads(run("token", "list", "--json").stdout)
    assert info["token_id"] == token_id[1] and info["revoked_at"] is not None
    assert "token" not in info and secret not in json.dumps(info)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
    row_after = " ".join(lines(run("token", "list").stdout)[1].split())
    assert re.fullmatch(rf"{token_id[1]} bob reader - revoked {stamp} tester never {stamp}",
                        row_after)
    again = run("token", "revoke", token_id[1], "--json")  # revoking twice changes nothing
    assert again.exit_code == 0 and json.loads(again.stdout) == {**info, "revoked_now": False}
    said = run("token", "revoke", token_id[1])
    assert said.stdout == (f"token {token_id[1]} (bob) was already revoked at "
                           f"{info['revoked_at'][:19]}Z; nothing changed\n")
    unknown = run("token", "revoke", "000000000000")
    assert unknown.exit_code == 1
    assert "no token '000000000000'; see `llmreg token list`" in unknown.stderr


def test_init_list_history_and_render_edges(run, old_new: tuple[Path, Path],
                                            tmp_path: Path) -> None:
    against_url = run("--registry", "http://127.0.0.1:9", "init")
    assert against_url.exit_code == 1
    assert ("init creates a local registry folder; run it on the server's machine, not "
            "against a URL") in against_url.stderr
    first = run("init", str(tmp_path / "proj"))
    home = tmp_path / "proj" / ".llmreg"
    assert lines(first.stdout) == [
        f"initialised an empty registry at {home}",
        f"wrote the default promotion policy to {tmp_path / 'proj' / 'llmreg-policy.yaml'}; "
        "see `llmreg policy check`"]
    again = run("init", str(tmp_path / "proj"))
    assert lines(again.stdout) == [f"registry already initialised at {home}"]
    assert run("init").exit_code == 0  # LLMREG_HOME, used by the commands below
    assert lines(run("list").stdout) == [
        "no bundles registered yet; try `llmreg register bundles/* -m 'first import'`"]
    old, new = old_new
    two = run("register", str(old), str(new), "--name", "x", "-m", "m")  # one batch
    assert two.exit_code == 0, two.stderr
    assert [line.split()[:2] for line in lines(two.stdout)] == [
        ["registered", "x@1"], ["registered", "x@2"]]
    assert run("register", str(old), "--name", "qa-bot", "-m", "first").exit_code == 0
    assert run("owner", "set", "qa-bot", "--team", "qa", "--contact", "qa@example.com"
               ).exit_code == 0  # init's policy has require_owner: true
    assert run("promote", "qa-bot@1", "--to", "staging", "--reason", "try").exit_code == 0
    listed = json.loads(run("list", "--json").stdout)
    assert [(n["name"], n["latest_version"]) for n in listed] == [("qa-bot", 1), ("x", 2)]
    moves = run("history", "qa-bot", "--env", "staging")
    header, row = (" ".join(line.split()) for line in lines(moves.stdout))
    assert header == "when action from to by reason"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC promote - @1 tester try", row)
    (moved,) = json.loads(run("history", "qa-bot", "--env", "staging", "--json").stdout)
    assert (moved["action"], moved["to_version"], moved["reason"]) == ("promote", 1, "try")
    shown = run("render", "qa-bot@1", "--var", "q=hi", "--var", "old=x")
    assert lines(shown.stdout) == ["── system ──", "Be brief.", "Be kind.", "",
                                   "── user ──", "a", "── assistant ──", "A",
                                   "── user ──", "b", "── assistant ──", "B",
                                   "── user ──", "c", "── assistant ──", "C",
                                   "── user ──", "Q: hi x"]
    messages = json.loads(run("render", "qa-bot@1", "--var", "q=hi", "--var", "old=x",
                              "--json").stdout)
    assert messages[0] == {"role": "system", "content": "Be brief.\nBe kind.\n"}
    bad_format = run("render", "qa-bot@1", "--format", "gemini")
    assert "--format 'gemini' is not known; use openai or anthropic" in bad_format.stderr
    (tmp_path / "list.json").write_text("[1, 2]")
    not_object = run("render", "qa-bot@1", "--vars", str(tmp_path / "list.json"))
    assert f"--vars {str(tmp_path / 'list.json')!r} must hold a JSON object" in \
        not_object.stderr
    no_equals = run("render", "qa-bot@1", "--var", "q")
    assert no_equals.exit_code == 1 and "--var 'q' must look like key=value" in no_equals.stderr


def _hosted(folder: Path, weights: str, few_shot: list[dict[str, Any]]) -> Path:
    return write_bundle(folder, {
        "model": {"provider": "self-hosted", "id": "llama-3-8b-lora-2026-11-01",
                  "weights": weights},
        "template": {"source": "Q: {{ q }}", "variables": ["q"]},
        "few_shot": few_shot}, {})


def test_human_diff_of_weights_kind_and_few_shot_inputs(run, lora: str,
                                                        tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"retrained")
    second = run("log-model", "lora", "--weights", str(tmp_path / "w.bin"), "-m", "run 2",
                 "--json")
    lora2 = json.loads(second.stdout)["digest"]
    one = _hosted(tmp_path / "h1", lora, [{"input": {"q": "a"}, "output": "A"},
                                          {"input": {"q": "b"}, "output": "B"}])
    two = _hosted(tmp_path / "h2", lora2, [{"input": {"q": "b"}, "output": "B"},
                                           {"input": {"q": "a2"}, "output": "A"}])
    result = run("diff", str(one), str(two))
    assert result.exit_code == 0, result.output
    assert lines(result.stdout)[1:] == [
        "", "model", f"  ! weights changed {lora} → {lora2}",
        "", "few_shot (2 → 2 examples)",
        "  ~ modified #0 → #1 (same output)",
        "    input.q: 'a' → 'a2'"]
    kinds = run("diff", "lora@1", str(one))
    assert kinds.exit_code == 0, kinds.output
    text = lines(kinds.stdout)
    assert text[1:4] == ["", "kind", "  weights → llm"]
    assert "  ! provider changed None → self-hosted" in text
    assert re.fullmatch(r"  - w\.bin [0-9a-f]{12} \(3072 B\)", text[-1])


def test_show_prints_the_git_commit_and_host(run, old_new: tuple[Path, Path],
                                             tmp_path: Path) -> None:
    import socket

    from tests.bundle.test_provenance import git

    old, _ = old_new
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "old")
    git(tmp_path, "commit", "-q", "-m", "bundle")
    sha = git(tmp_path, "rev-parse", "HEAD")
    assert run("init").exit_code == 0
    assert run("register", str(old), "-m", "clean").exit_code == 0
    clean = lines(run("show", "old@1").stdout)
    assert clean[2] == f"git {sha[:12]}  host {socket.gethostname()}"
    (old / "notes.txt").write_text("edited\n")
    assert run("register", str(old), "-m", "dirty").exit_code == 0
    dirty = lines(run("show", "old@2").stdout)
    assert dirty[2] == f"git {sha[:12]} (dirty)  host {socket.gethostname()}"
