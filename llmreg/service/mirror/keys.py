"""The mirror's signing keys and its root of trust (The Update Framework, python-tuf).

A keys folder (``llmreg mirror keygen DIR``) holds::

    DIR/root.key                 the root key: OFFLINE. Needed only to create or rotate
                                 keys; move it to a safe place (a hardware token, a vault,
                                 a USB stick in a safe) once keygen is done.
    DIR/targets.key              online keys, held by the publisher
    DIR/snapshot.key             (``llmreg publish``, ``llmreg serve --publish``);
    DIR/timestamp.key            PEM PKCS#8 ed25519, mode 0600.
    DIR/root/1.root.json         every signed root, oldest first: the publisher uploads
    DIR/root/2.root.json …       them all, so a client walks from the root it pins to
                                 the newest one.
    DIR/root.json                the newest root: give this file to the applications
                                 (``connect(url, trusted_root=PATH)`` /
                                 ``LLMREG_TRUSTED_ROOT``).

Rotating a key (:func:`rotate`) writes root N+1, signed by the old root key (and the
new one when the root key itself is rotated), so that clients pinned to an older root
accept it; the next publish re-signs every role with the new keys.

Example:
    >>> import tempfile
    >>> keys = Path(tempfile.mkdtemp()) / "keys"
    >>> sorted(p.name for p in keygen(keys).iterdir())
    ['root', 'root.json', 'root.key', 'snapshot.key', 'targets.key', 'timestamp.key']
    >>> load_root(keys).signed.version
    1
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from llmreg.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata, Root
    from tuf.api.serialization.json import JSONSerializer

ONLINE_ROLES = ("targets", "snapshot", "timestamp")
ROLES = ("root", *ONLINE_ROLES)
ROOT_EXPIRY = timedelta(days=365)


def _require_tuf() -> None:
    try:
        import securesystemslib  # noqa: F401
        import tuf  # noqa: F401
    except ImportError:
        raise MissingDependencyError("the signed mirror needs python-tuf: "
                                     "pip install 'llmreg[mirror]'") from None


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key whole (temp file, 0600, then rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def load_signer(keys: Path, role: str) -> CryptoSigner:
    """The signer for ``role`` from ``keys/<role>.key``; a clear error when it is absent.

    Example:
        >>> load_signer(Path("/nowhere"), "timestamp")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        llmreg.errors.ConfigError: the timestamp key /nowhere/timestamp.key is missing...
    """
    path = keys / f"{role}.key"
    if not path.is_file():
        where = ("bring the offline root key back for this" if role == "root"
                 else "run `llmreg mirror keygen DIR` first, or pass --keys DIR")
        raise ConfigError(f"the {role} key {path} is missing; {where}")
    _require_tuf()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner, SSlibKey

    private = load_pem_private_key(path.read_bytes(), password=None)
    public = SSlibKey.from_crypto(private.public_key(), scheme="ed25519")
    return CryptoSigner(private, public)


def root_history(keys: Path) -> list[Path]:
    """Every signed root in ``keys/root/``, oldest first."""
    found = [p for p in (keys / "root").glob("*.root.json") if p.name.split(".")[0].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split(".")[0]))


def load_root(keys: Path) -> Metadata[Root]:
    """The newest signed root in the keys folder."""
    history = root_history(keys)
    if not history:
        raise ConfigError(f"{keys} holds no signed root (root/1.root.json); run "
                          "`llmreg mirror keygen DIR` to create the mirror's keys")
    _require_tuf()
    from tuf.api.metadata import Metadata, Root

    return Metadata[Root].from_bytes(history[-1].read_bytes())


def keygen(keys: Path) -> Path:
    """Create the four ed25519 keys and root version 1 in a new folder ``keys``.

    Refuses a folder that already holds keys: rotating is :func:`rotate`.
    """
    if (keys / "root.key").exists() or root_history(keys):
        raise ConfigError(f"{keys} already holds mirror keys; rotate one with "
                          "`llmreg mirror rotate DIR --role ROLE`")
    _require_tuf()
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata, Root

    keys.mkdir(parents=True, exist_ok=True)
    (keys / "root").mkdir(exist_ok=True)
    root = Root(expires=_utcnow() + ROOT_EXPIRY, consistent_snapshot=True)
    signers = {}
    for role in ROLES:
        signer = CryptoSigner.generate_ed25519()
        root.add_key(signer.public_key, role)
        signers[role] = signer
    md = Metadata(root)
    md.sign(signers["root"])
    for role, signer in signers.items():
        _write_private(keys / f"{role}.key", signer.private_bytes)
    _save_root(keys, md)
    return keys


def rotate(keys: Path, role: str) -> Metadata[Root]:
    """Replace ``role``'s key with a new one: root N+1, signed by the current root key
    (and by the new root key too when ``role`` is ``root``).

    Needs the offline root key in ``keys/root.key`` for the moment of the rotation.
    """
    if role not in ROLES:
        raise ConfigError(f"--role {role!r} is not a mirror role; use one of {', '.join(ROLES)}")
    current = load_root(keys)
    old_root = load_signer(keys, "root")
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata, Root

    new = Metadata[Root].from_bytes(current.to_bytes())
    root = new.signed
    for keyid in list(root.roles[role].keyids):
        root.revoke_key(keyid, role)
    signer = CryptoSigner.generate_ed25519()
    root.add_key(signer.public_key, role)
    root.version += 1
    root.expires = _utcnow() + ROOT_EXPIRY
    new.signatures.clear()
    new.sign(old_root, append=True)  # clients that trust root N accept N+1
    if role == "root":
        new.sign(signer, append=True)  # and N+1 must be signed by its own root key
    _write_private(keys / f"{role}.key", signer.private_bytes)
    _save_root(keys, new)
    return new


def _save_root(keys: Path, md: Metadata[Root]) -> None:
    data = md.to_bytes(_pretty())
    _write_public(keys / "root" / f"{md.signed.version}.root.json", data)
    _write_public(keys / "root.json", data)


def _pretty() -> JSONSerializer:
    from tuf.api.serialization.json import JSONSerializer

    return JSONSerializer(compact=False)
