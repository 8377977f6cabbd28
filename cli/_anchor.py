"""The audit head a signed mirror publishes, read and verified for ``llmreg audit verify
--mirror``: the anchor that someone with only database access cannot rewrite.

The mirror is read the way an application reads it (python-tuf, against the pinned
root and the metadata this machine trusted before, so an old mirror replayed to hide
newer entries is refused), and ``audit/head.json`` is checked against its signed hash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from llmreg.client.mirror_reader import MirrorBackend, explain
from llmreg.errors import ConfigError, MirrorVerificationError, RegistryUnavailableError
from llmreg.service.mirror.publisher import AUDIT_HEAD


@dataclass(frozen=True)
class SignedHead:
    """The audit head a mirror signed: ``seq`` and ``head`` (None: an empty log)."""

    url: str
    seq: int
    head: str | None


class _HeadReader(MirrorBackend):
    def audit_head(self) -> SignedHead:
        from tuf.api import exceptions

        try:
            data = self._fetch_target(self._updater(), AUDIT_HEAD)
        except LookupError:
            raise MirrorVerificationError(
                f"the mirror {self.url} signs no audit head ({AUDIT_HEAD}); publish it "
                "again with this version of llmreg (`llmreg publish`)") from None
        except exceptions.DownloadError as exc:
            raise RegistryUnavailableError(f"cannot read the mirror {self.url} ({exc})"
                                           ) from None
        except exceptions.RepositoryError as exc:
            raise MirrorVerificationError(f"the mirror {self.url} failed verification: "
                                          f"{explain(exc)}") from None
        body = json.loads(data)  # its bytes matched the signed hash
        return SignedHead(str(self.url), int(body["seq"]), body["head"])


def signed_head(url: str, trusted_root: Path | None) -> SignedHead:
    """The audit head the mirror at ``url`` (``https://``, ``file://``, ``s3://`` or a
    folder) signed, verified against ``trusted_root``.

    Example:
        >>> signed_head("file:///srv/mirror", Path("root.json")).seq  # doctest: +SKIP
        42
    """
    if trusted_root is None:
        raise ConfigError(f"--mirror {url} needs the mirror's root: give --trusted-root "
                          "PATH (or set LLMREG_TRUSTED_ROOT), e.g. mirror-keys/root.json")
    if "://" not in url:  # a folder: the mirror `llmreg publish FOLDER` wrote
        url = Path(url).expanduser().resolve().as_uri()
    reader = _HeadReader(url, trusted_root=trusted_root)
    try:
        return reader.audit_head()
    finally:
        reader.close()
