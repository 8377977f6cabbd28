"""Commands on bundles: init, register, show, list, history, render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

import llmreg
from llmreg.bundle.digest import short
from llmreg.bundle.directory import load_bundle_dir, looks_like_path
from llmreg.bundle.names import check_name
from llmreg.bundle.parse import load_json
from llmreg.errors import InvalidRefError, RenderError, shown
from llmreg.policy import DEFAULT_POLICY_YAML, POLICY_FILENAME
from llmreg.settings import HOME_DIRNAME

from ._common import STATE, connect, handle_errors, note_audit_head
from ._output import JSON_OPTION, Output
from ._views import bundle_json, print_bundle
from .inspect import print_registry_sections, registry_sections


def register_commands(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    for command in (init, register, show, list_names, history, render):
        name = "list" if command is list_names else command.__name__
        app.command(name)(handle_errors(command))


def init(
    directory: Annotated[Path, typer.Argument(help="Where to create .llmreg/.")] = Path("."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an embedded registry (.llmreg/) and the default llmreg-policy.yaml."""
    out = Output(as_json)
    if STATE.registry is not None and "://" in STATE.registry:
        raise InvalidRefError("init creates a local registry folder; run it on the server's "
                              "machine, not against a URL")
    env_home = llmreg.Settings.from_env().home if directory == Path(".") else None
    home = (Path(STATE.registry) if STATE.registry
            else env_home if env_home is not None else directory / HOME_DIRNAME)
    existed = home.is_dir()
    policy = home.parent / POLICY_FILENAME
    wrote_policy = not policy.exists()
    if wrote_policy:
        home.parent.mkdir(parents=True, exist_ok=True)
        policy.write_text(DEFAULT_POLICY_YAML, encoding="utf-8")
    with llmreg.connect(home, create=True):
        pass
    out.result({"home": str(home.resolve()), "created": not existed,
                "policy": str(policy.resolve()), "policy_written": wrote_policy},
               f"registry already initialised at {home}" if existed
               else f"initialised an empty registry at {home}")
    if wrote_policy:
        out.line(f"wrote the default promotion policy to {policy}; see `llmreg policy check`")


def register(
    directories: Annotated[list[Path], typer.Argument(help="Bundle directories to register.")],
    message: Annotated[str, typer.Option("--message", "-m",
                                         help="Changelog message: what changed and why.")],
    name: Annotated[str | None, typer.Option(
        "--name", help="Name to register under (default: the manifest's name or the folder). "
                       "With several directories: they become consecutive versions of "
                       "this name, in the order given, committed in one transaction.")
    ] = None,
    team: Annotated[str | None, typer.Option(
        "--team", help="The team that claims a new name (default: your token's only team "
                       "where it is a publisher). See docs/teams.md.")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Register bundle directories; identical content keeps its existing version. A new
    name is owned by the registering token's team."""
    out = Output(as_json)
    # Validate every directory and name before writing anything, so a bad one changes
    # nothing. An explicit --name is used as given: '' is refused, never replaced.
    if name is not None:
        check_name(name, field="--name")
    for directory in directories:
        _, manifest_name = load_bundle_dir(directory)
        if name is None and manifest_name is not None:
            check_name(manifest_name, field=f"{directory}: the manifest's name")
    results = []
    with connect() as reg:
        if name is not None and len(directories) > 1:
            bundles = reg.log_bundles(directories, name=name, message=message, team=team)
        else:
            bundles = [reg.log_bundle(d, name=name, message=message, team=team)
                       for d in directories]
        for directory, bundle in zip(directories, bundles, strict=True):
            assert bundle.info is not None
            results.append({"name": bundle.name, "version": bundle.version,
                            "digest": bundle.digest, "created": bundle.newly_registered,
                            "directory": str(directory)})
        note_audit_head(reg)
    out.json(results if len(results) > 1 else results[0])
    for r in results:
        verb = "registered" if r["created"] else "unchanged "
        note = "" if r["created"] else "  (this content is already that version)"
        out.line(f"{verb} {r['name']}@{r['version']}  {short(str(r['digest']))}{note}")


def show(
    ref: Annotated[str, typer.Argument(help="name, name@7, name@sha256:…, or a bundle folder.")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one bundle: registration details, provenance and every section."""
    out = Output(as_json)
    bundle = _load(ref)
    sections: dict[str, Any] = {}
    if bundle.name is not None:  # registered: where it runs, its evidence and approvals
        with connect() as reg:
            sections = registry_sections(reg, bundle)
    out.json({**bundle_json(bundle), **sections})
    out.view(_show, bundle)
    out.view(print_registry_sections, sections)


def _show(out: Output, bundle: llmreg.Bundle) -> None:
    label = None
    weights = bundle.model.weights if bundle.model is not None else None
    if weights is not None:  # follow the reference to the weights bundle
        with connect() as reg:
            info = reg.info(weights)
        label = f"{info.ref}  ({info.message})"
    print_bundle(out, bundle, weights_label=label)


def list_names(as_json: bool = JSON_OPTION) -> None:
    """List registered names with their latest version and digest."""
    with connect() as reg:
        names = reg.list()
    Output(as_json).table(
        names, ("name", "latest", "digest", "versions", "updated"),
        lambda n: (n.name, n.latest_version, short(n.latest_digest), n.versions, n.updated_at),
        empty="no bundles registered yet; try `llmreg register bundles/* -m 'first import'`")


def history(
    name: Annotated[str, typer.Argument(help="A registered name.")],
    env: Annotated[str | None, typer.Option(
        "--env", help="Show who moved this environment's slot, when, from what, and why.")
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """List every version of NAME, or with --env every move of one environment slot."""
    out = Output(as_json)
    with connect() as reg:
        if env is not None:
            out.table(reg.slot_history(name, env),
                      ("when", "action", "from", "to", "by", "reason"),
                      lambda e: (e.at, e.action, f"@{e.from_version}" if e.from_version else "-",
                                 f"@{e.to_version}", e.actor, e.reason))
            return
        versions = reg.history(name)
        running: dict[int, list[str]] = {}
        for slot in reg.status(name):
            running.setdefault(slot.version, []).append(slot.env)
    # "runs in" is where each version runs now; status is its lifecycle state, which a
    # version keeps after it leaves a slot (so the two can differ).
    out.table(versions,
              ("version", "digest", "runs in", "status", "author", "registered", "message"),
              lambda v: (v.version, short(v.digest), ", ".join(running.get(v.version, [])) or "-",
                         v.status, v.author, v.created_at, v.message.splitlines()[0]))


def render(
    ref: Annotated[str, typer.Argument(help="name@version, digest, or a bundle folder.")],
    var: Annotated[list[str] | None, typer.Option(
        "--var", help="A template variable as key=value (repeatable).")] = None,
    vars_file: Annotated[Path | None, typer.Option(
        "--vars", help="A JSON object of template variables (for lists and objects).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="Message shape: openai or anthropic.")] = "openai",
    as_json: bool = JSON_OPTION,
) -> None:
    """Render a bundle's chat messages with the given variables."""
    out = Output(as_json)
    if fmt not in ("openai", "anthropic"):
        raise RenderError(f"--format {fmt!r} is not known; use openai or anthropic")
    variables: dict[str, Any] = {}
    if vars_file is not None:
        try:
            text = vars_file.read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise RenderError(
                f"--vars {shown(str(vars_file))} is not a readable JSON file: {exc}") from None
        # parsed as manifests are: a key named twice is refused, never "last one wins"
        loaded = load_json(text, f"--vars {shown(str(vars_file))}", error=RenderError)
        if not isinstance(loaded, dict):
            raise RenderError(f"--vars {shown(str(vars_file))} must hold a JSON object")
        variables.update(loaded)
    for item in var or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RenderError(f"--var {item!r} must look like key=value")
        variables[key] = value
    messages = _load(ref).render(**variables)
    shaped: Any = messages.to_openai() if fmt == "openai" else messages.to_anthropic()
    out.json(shaped)
    turns = shaped if fmt == "openai" else (
        ([{"role": "system", "content": shaped["system"]}] if shaped["system"] else [])
        + shaped["messages"])
    for turn in turns:
        out.line(f"[bold cyan]── {turn['role']} ──[/]")
        out.line(turn["content"], markup=False)


def _load(ref: str) -> llmreg.Bundle:
    if looks_like_path(ref):
        return load_bundle_dir(ref)[0]  # a folder without a manifest raises, naming it
    with connect() as reg:
        return reg.get(ref)
