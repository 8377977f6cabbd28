"""Commands for the signed static mirror: ``publish``, and the ``mirror`` key group.

Key management needs no registry: it creates and rotates the TUF keys in a folder
(``llmreg.service.mirror.keys``). ``publish`` reads the registry through the client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, get_args

import typer

from llmreg.types import MirrorRole

from ._common import connect, handle_errors, one_of
from ._output import JSON_OPTION, Output

mirror_app = typer.Typer(help="Create and rotate the signing keys of the static mirror.",
                         no_args_is_help=True)

MIRROR_ROLES: tuple[MirrorRole, ...] = get_args(MirrorRole)  # the keys module checks --role

KEYS_OPTION = typer.Option(
    "--keys", help="The mirror's keys folder (default LLMREG_MIRROR_KEYS, else mirror-keys).")


def register_commands(app: typer.Typer) -> None:
    """Attach ``publish`` and the ``mirror`` group to the root app."""
    app.command("publish")(handle_errors(publish))
    mirror_app.command("keygen")(handle_errors(keygen))
    mirror_app.command("rotate")(handle_errors(rotate))
    app.add_typer(mirror_app, name="mirror")


def publish(
    dest: Annotated[str, typer.Argument(help="A folder, file://PATH or s3://BUCKET/PREFIX.")],
    keys: Annotated[Path | None, KEYS_OPTION] = None,
    timestamp_expiry: Annotated[float | None, typer.Option(
        "--timestamp-expiry",
        help="Seconds the signed timestamp stays valid (default 86400); publish more "
             "often than this.")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Publish the registry as a signed static mirror (TUF); writes only what changed."""
    out = Output(as_json)
    with connect() as reg:
        report = reg.publish(dest, keys=keys, timestamp_expiry=timestamp_expiry)
    out.result(report, f"published {report['dest']}: {len(report['written'])} files "
                       f"written (targets v{report['targets_version']}, snapshot "
                       f"v{report['snapshot_version']}, timestamp "
                       f"v{report['timestamp_version']})")


def keygen(
    folder: Annotated[Path, typer.Argument(help="A new folder for the keys and roots.")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Create the mirror's ed25519 keys (root, targets, snapshot, timestamp) and root v1."""
    from llmreg.service.mirror.keys import keygen as make_keys

    make_keys(folder)
    out = Output(as_json)
    out.result({"keys": str(folder), "trusted_root": str(folder / "root.json")},
               f"created the mirror keys in {folder}; give {folder / 'root.json'} to the "
               "applications (LLMREG_TRUSTED_ROOT)")
    out.note(f"move {folder / 'root.key'} offline now: it is needed only to rotate keys")


def rotate(
    folder: Annotated[Path, typer.Argument(help="The keys folder (with root.key back in).")],
    role: Annotated[str, typer.Option("--role", help=f"{one_of(MIRROR_ROLES)}.")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Replace one role's key: writes root N+1, signed by the current root key."""
    from llmreg.service.mirror.keys import rotate as rotate_key

    root = rotate_key(folder, role)
    Output(as_json).result(
        {"role": role, "root_version": root.signed.version},
        f"rotated the {role} key; root is now version {root.signed.version}: run "
        "`llmreg publish` to re-sign the mirror with it")
