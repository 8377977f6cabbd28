"""The mirror client: resolve and get from a signed static mirror, and the attacks it
refuses — each falls back to the verified cache, or raises when ``strict``."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import llmreg
from llmreg.client.mirror_reader import MirrorBackend, explain
from llmreg.errors import (
    ConfigError,
    EmptySlotError,
    MirrorVerificationError,
    ReadOnlyError,
    RefNotFoundError,
    RegistryUnavailableError,
)
from llmreg.service import RegistryService
from llmreg.service.mirror.keys import keygen
from llmreg.service.mirror.publisher import pointer_bytes, publish
from llmreg.settings import Settings
from tests.client.hostile import Hostile, drip, edited, endless, late, slow_headers
from tests.mirror import ANA, make_keys, register, to_production


@dataclass
class Mirror:
    svc: RegistryService
    keys: Path
    path: Path
    tmp: Path

    def publish(self, **kwargs: object) -> list[str]:
        return publish(self.svc, self.path, self.keys, **kwargs).written  # type: ignore[arg-type]

    def client(self, cache: str = "cache") -> llmreg.Client:
        return llmreg.connect(f"file://{self.path}", trusted_root=self.keys / "root.json",
                              settings=Settings(cache=self.tmp / cache))

    def file(self, prefix: str) -> Path:
        """The one published target file under ``prefix`` (e.g. a pointer)."""
        *_, folder, base = f"targets/{prefix}".split("/")
        found = [p for p in (self.path / "targets").rglob(f"*.{base}")
                 if p.parent.name == folder]
        assert len(found) == 1, found
        return found[0]

    def pointer(self, env: str) -> Path:
        digest = self.svc.versions.slot("chat", env).digest
        data = json.dumps({"digest": digest, "env": env, "name": "chat",
                           "version": self.svc.versions.slot("chat", env).version},
                          sort_keys=True, separators=(",", ":")).encode()
        import hashlib

        return (self.path / "targets" / "pointers" / "chat"
                / f"{hashlib.sha256(data).hexdigest()}.{env}.json")


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    svc = RegistryService.open_home(tmp_path / "reg")
    to_production(svc, register(svc, 1))
    m = Mirror(svc, make_keys(tmp_path), tmp_path / "mirror", tmp_path)
    m.publish()
    yield m
    svc.close()


def next_version_in_production(m: Mirror) -> None:
    to_production(m.svc, register(m.svc, 2))
    m.publish()


# -- reading ---------------------------------------------------------------------------

def test_resolve_and_get_from_the_mirror(mirror: Mirror) -> None:
    reg = mirror.client()
    assert reg.url == f"file://{mirror.path}" and reg.home is None
    prod = reg.resolve("chat", env="production")
    assert (prod.version, prod.env, prod.served_from_cache) == (1, "production", False)
    assert prod.digest == mirror.svc.versions.slot("chat", "production").digest
    assert reg.resolve("chat", env="prod").env == "production"  # an alias
    assert prod.render(q="hi").to_openai()[-1] == {"role": "user", "content": "Q: hi"}
    next_version_in_production(mirror)
    assert reg.resolve("chat", env="production").version == 2
    assert reg.get("chat@1").digest == prod.digest
    assert reg.get("chat").version == 2  # the latest
    assert reg.get(f"chat@{prod.digest[:15]}").version == 1
    assert reg.get("chat@staging").version == 2
    fresh = mirror.client("other-cache")  # nothing cached: the manifest comes from the mirror
    assert fresh.get("chat@1").digest == prod.digest
    reg.close()


def test_unknown_names_slots_and_refs_are_named(mirror: Mirror) -> None:
    reg = mirror.client()
    with pytest.raises(EmptySlotError, match="has no chat@shadow"):
        reg.resolve("chat", env="shadow")
    with pytest.raises(RefNotFoundError, match="no bundle named 'nope'"):
        reg.get("nope@1")
    with pytest.raises(RefNotFoundError, match="has no chat@9"):
        reg.get("chat@9")
    with pytest.raises(ReadOnlyError, match="by name"):
        reg.get("sha256:0123456789")


def test_a_mirror_is_read_only(mirror: Mirror) -> None:
    reg = mirror.client()
    with pytest.raises(ReadOnlyError,
                       match=r"read-only mirror: promote \(POST /v1/promotions\) needs the"):
        reg.promote("chat@1", to="staging", reason="x")
    with pytest.raises(ReadOnlyError, match="status"):
        reg.status()
    with pytest.raises(ReadOnlyError, match="publish"):
        reg.publish(mirror.tmp / "again")
    for call in (lambda: reg.policy, lambda: reg.actor, lambda: reg.list(),
                 lambda: reg.history("chat"), lambda: reg.info("chat@1")):
        with pytest.raises(ReadOnlyError):
            call()
    reg.report_served(reg.resolve("chat", env="production"))
    reg.close()  # heartbeats are dropped, not an error


def test_connect_reads_the_mirror_settings(mirror: Mirror, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setenv("LLMREG_URL", f"file://{mirror.path}")
    monkeypatch.setenv("LLMREG_TRUSTED_ROOT", str(mirror.keys / "root.json"))
    monkeypatch.setenv("LLMREG_CACHE", str(mirror.tmp / "env-cache"))
    assert llmreg.connect().resolve("chat", env="production").version == 1
    with pytest.raises(ConfigError, match="give the root it is signed with"):
        llmreg.connect(f"file://{mirror.path}", settings=Settings())
    with pytest.raises(ConfigError, match="trusted_root='nope.json' cannot be read"):
        llmreg.connect(f"file://{mirror.path}", trusted_root="nope.json")
    with pytest.raises(ConfigError, match="set LLMREG_TRUSTED_ROOT too"):
        Settings.from_env({"LLMREG_URL": "s3://bucket/m"})


def test_the_mirror_client_imports_tuf_only_when_it_resolves(mirror: Mirror) -> None:
    code = ("import sys, llmreg\n"
            f"reg = llmreg.connect('file://{mirror.path}', trusted_root="
            f"'{mirror.keys / 'root.json'}')\n"
            "assert 'tuf' not in sys.modules\n"
            "reg.resolve('chat', env='production')\n"
            "heavy = sorted(m for m in ('boto3', 'pydantic', 'sqlalchemy', 'httpx') "
            "if m in sys.modules)\n"
            "print(heavy, 'tuf.ngclient' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"LLMREG_CACHE": str(mirror.tmp / "sub-cache"), "PATH": ""},
                         check=True).stdout
    assert out.strip() == "[] True"


# -- outages and attacks ---------------------------------------------------------------

def cached_then(m: Mirror) -> llmreg.Client:
    """A client that resolved production once (v1 is in its verified cache)."""
    reg = m.client()
    assert reg.resolve("chat", env="production").version == 1
    return reg


def assert_falls_back(reg: llmreg.Client, caplog: pytest.LogCaptureFixture, why: str,
                      version: int = 1) -> None:
    with caplog.at_level(logging.WARNING, logger="llmreg"):
        served = reg.resolve("chat", env="production")
    assert served.served_from_cache and served.version == version
    assert why in caplog.text and "serving the cached chat@production" in caplog.text
    with pytest.raises(MirrorVerificationError, match=why) as exc:
        reg.resolve("chat", env="production", strict=True)
    assert "strict=True" in str(exc.value)


@pytest.mark.parametrize("damage", ["a file", "unreadable"])
def test_a_file_mirror_that_cannot_be_read_is_an_outage_served_from_the_cache(
        mirror: Mirror, damage: str) -> None:
    """Not only a missing folder: a file in its place (NotADirectoryError) or any other
    OSError is an outage with a clean message, never an exception out of resolve."""
    reg = cached_then(mirror)
    if damage == "a file":
        mirror.path.rename(mirror.tmp / "moved")
        mirror.path.write_text("not a folder")
    else:
        meta = mirror.path / "metadata"
        (meta / "timestamp.json").unlink()
        (meta / "loop").symlink_to(meta / "loop")
        (meta / "timestamp.json").symlink_to(meta / "loop")  # ELOOP: an OSError
    assert reg.resolve("chat", env="production").served_from_cache
    with pytest.raises(RegistryUnavailableError, match=r"cannot read the mirror"):
        reg.resolve("chat", env="production", strict=True)


def test_an_unreachable_mirror_falls_back_to_the_cache(
        mirror: Mirror, caplog: pytest.LogCaptureFixture) -> None:
    reg = cached_then(mirror)
    mirror.path.rename(mirror.tmp / "gone")
    with caplog.at_level(logging.WARNING, logger="llmreg"):
        assert reg.resolve("chat", env="production").served_from_cache
    assert "cannot read the mirror" in caplog.text
    with pytest.raises(RegistryUnavailableError, match="strict=True"):
        reg.resolve("chat", env="production", strict=True)
    with pytest.raises(RegistryUnavailableError, match="over max_stale=0s"):
        time.sleep(0.01)
        reg.resolve("chat", env="production", max_stale=0)
    with pytest.raises(RegistryUnavailableError, match="no cached answer"):
        mirror.client("empty").resolve("chat", env="production")


def test_a_changed_byte_in_a_published_manifest_is_refused(
        mirror: Mirror, caplog: pytest.LogCaptureFixture) -> None:
    reg = cached_then(mirror)
    next_version_in_production(mirror)
    digest = mirror.svc.versions.slot("chat", "production").digest.removeprefix("sha256:")
    blob = mirror.file(f"blobs/sha256/{digest}")
    data = bytearray(blob.read_bytes())
    data[10] ^= 1
    blob.write_bytes(bytes(data))
    assert_falls_back(reg, caplog, "tampered content")
    with pytest.raises(MirrorVerificationError, match="tampered content.*no cached answer"):
        mirror.client("fresh").resolve("chat", env="production")


def test_an_old_timestamp_replayed_is_refused(mirror: Mirror,
                                              caplog: pytest.LogCaptureFixture) -> None:
    old = (mirror.path / "metadata" / "timestamp.json").read_bytes()
    reg = mirror.client()
    next_version_in_production(mirror)
    assert reg.resolve("chat", env="production").version == 2  # it has seen timestamp v2
    (mirror.path / "metadata" / "timestamp.json").write_bytes(old)  # v1, validly signed
    assert_falls_back(reg, caplog, "rollback", version=2)


def test_expired_timestamp_metadata_is_refused(mirror: Mirror,
                                               caplog: pytest.LogCaptureFixture) -> None:
    register(mirror.svc, 2)  # a change, so the next publish signs a new timestamp:
    mirror.publish(timestamp_expiry=timedelta(seconds=2))  # short-lived, then frozen
    reg = cached_then(mirror)
    time.sleep(2.2)
    assert_falls_back(reg, caplog, "frozen metadata")


def test_a_pointer_signed_with_an_untrusted_key_is_refused(
        mirror: Mirror, caplog: pytest.LogCaptureFixture) -> None:
    reg = cached_then(mirror)
    evil = RegistryService.open_home(mirror.tmp / "evil")
    to_production(evil, register(evil, 666))
    publish(evil, mirror.path, keygen(mirror.tmp / "evil-keys"))  # over the real mirror
    assert_falls_back(reg, caplog, "signature not made by a trusted key")
    evil.close()


def test_a_pointer_swapped_for_another_slot_is_refused(
        mirror: Mirror, caplog: pytest.LogCaptureFixture) -> None:
    reg = cached_then(mirror)
    next_version_in_production(mirror)  # production: v2, a pointer the client has not read
    mirror.svc.lifecycle.promote(register(mirror.svc, 3), "staging", actor=ANA, reason="x")
    mirror.publish()
    # Both pointers are genuine and signed; serving staging's as production's is not.
    mirror.pointer("production").write_bytes(mirror.pointer("staging").read_bytes())
    assert_falls_back(reg, caplog, "tampered content")


def test_metadata_mixed_from_two_publishes_is_refused(
        mirror: Mirror, caplog: pytest.LogCaptureFixture) -> None:
    reg = cached_then(mirror)
    shutil.copy(mirror.path / "metadata" / "1.targets.json", mirror.tmp / "t1")
    next_version_in_production(mirror)
    # the new snapshot names targets v2; the mirror serves v1's content under that name
    shutil.copy(mirror.tmp / "t1", mirror.path / "metadata" / "2.targets.json")
    assert_falls_back(reg, caplog, "mix-and-match")


# -- max_stale on every failure path ---------------------------------------------------
# Each breaks the mirror after the client resolved (and cached) chat@production; each
# returns the error class the client raises, what it names, and the cached version.

Broken = tuple[type[Exception], str, int]


def unreachable(m: Mirror, reg: llmreg.Client) -> Broken:
    m.path.rename(m.tmp / "gone")
    return RegistryUnavailableError, "cannot read the mirror", 1


def tampered(m: Mirror, reg: llmreg.Client) -> Broken:
    next_version_in_production(m)
    digest = m.svc.versions.slot("chat", "production").digest.removeprefix("sha256:")
    blob = m.file(f"blobs/sha256/{digest}")
    blob.write_bytes(blob.read_bytes().replace(b"variant 2", b"variant X"))
    return MirrorVerificationError, "tampered content", 1


def replayed(m: Mirror, reg: llmreg.Client) -> Broken:
    old = (m.path / "metadata" / "timestamp.json").read_bytes()
    next_version_in_production(m)
    assert reg.resolve("chat", env="production").version == 2
    (m.path / "metadata" / "timestamp.json").write_bytes(old)
    return MirrorVerificationError, "rollback", 2


def frozen(m: Mirror, reg: llmreg.Client) -> Broken:
    register(m.svc, 2)
    m.publish(timestamp_expiry=timedelta(seconds=-1))  # signed already expired
    return MirrorVerificationError, "frozen metadata", 1


def untrusted(m: Mirror, reg: llmreg.Client) -> Broken:
    evil = RegistryService.open_home(m.tmp / "evil")
    to_production(evil, register(evil, 666))
    publish(evil, m.path, keygen(m.tmp / "evil-keys"))
    evil.close()
    return MirrorVerificationError, "signature not made by a trusted key", 1


def mixed(m: Mirror, reg: llmreg.Client) -> Broken:
    shutil.copy(m.path / "metadata" / "1.targets.json", m.tmp / "t1")
    next_version_in_production(m)
    shutil.copy(m.tmp / "t1", m.path / "metadata" / "2.targets.json")
    return MirrorVerificationError, "mix-and-match", 1


def signed_pointer(m: Mirror, monkeypatch: pytest.MonkeyPatch, pointer: bytes,
                   manifests: dict[str, str] | None = None) -> None:
    """Publish with the real keys a production pointer the registry would never write
    (a publisher compromised, or a bug in one): signed, so TUF accepts it."""
    from llmreg.service.mirror import publisher

    small, paths = publisher._Publisher._small_files, publisher._Publisher._manifest_paths
    with monkeypatch.context() as patch:
        patch.setattr(publisher._Publisher, "_small_files",
                      lambda self: {**small(self), "pointers/chat/production.json": pointer})
        patch.setattr(publisher._Publisher, "_manifest_paths",
                      lambda self: {**paths(self), **(manifests or {})})
        m.publish()


def other_name(m: Mirror, reg: llmreg.Client, monkeypatch: pytest.MonkeyPatch) -> Broken:
    digest = m.svc.versions.slot("chat", "production").digest
    signed_pointer(m, monkeypatch, pointer_bytes("support", "production", 1, digest))
    return MirrorVerificationError, "pointer for chat@production names 'support'", 1


def unlisted(m: Mirror, reg: llmreg.Client, monkeypatch: pytest.MonkeyPatch) -> Broken:
    signed_pointer(m, monkeypatch, pointer_bytes("chat", "production", 9, FAKE))
    return MirrorVerificationError, "which its signed metadata does not list", 1


def misfiled(m: Mirror, reg: llmreg.Client, monkeypatch: pytest.MonkeyPatch) -> Broken:
    # The manifests role lists FAKE's path, holding (and hashed as) chat@1's manifest.
    real = m.svc.versions.slot("chat", "production").digest
    signed_pointer(m, monkeypatch, pointer_bytes("chat", "production", 9, FAKE),
                   {f"blobs/sha256/{FAKE.removeprefix('sha256:')}": real})
    return MirrorVerificationError, "does not hash to its digest", 1


FAKE = "sha256:" + "ab" * 32
FAILURES = [unreachable, tampered, replayed, frozen, untrusted, mixed, other_name, unlisted,
            misfiled]


@pytest.mark.parametrize("break_mirror", FAILURES, ids=[f.__name__ for f in FAILURES])
def test_every_failure_serves_the_cache_only_within_max_stale(
        mirror: Mirror, break_mirror: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    reg = cached_then(mirror)
    args = (monkeypatch,) if "monkeypatch" in break_mirror.__code__.co_varnames else ()
    kind, why, version = break_mirror(mirror, reg, *args)
    time.sleep(0.05)
    with caplog.at_level(logging.WARNING, logger="llmreg"):
        for max_stale in (None, 3600):
            served = reg.resolve("chat", env="production", max_stale=max_stale)
            assert (served.served_from_cache, served.version) == (True, version)
            assert served.cache_age is not None and 0.05 <= served.cache_age < 3600
    assert why in caplog.text
    with pytest.raises(kind, match=rf"{why}.*the cached answer for chat@production is \d+s "
                                   r"old, over max_stale=0.01s"):
        reg.resolve("chat", env="production", max_stale=0.01)
    with pytest.raises(kind, match=rf"{why}.*strict=True, so the cached answer"):
        reg.resolve("chat", env="production", strict=True, max_stale=3600)
    reg.close()


def test_a_mirror_served_over_http(mirror: Mirror) -> None:
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(mirror.path))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        reg = llmreg.connect(url, trusted_root=mirror.keys / "root.json",
                             settings=Settings(cache=mirror.tmp / "http-cache"))
        assert reg.resolve("chat", env="production").version == 1
        next_version_in_production(mirror)
        assert reg.resolve("chat", env="prod").version == 2
        httpd.shutdown()
    reg.close()
    with pytest.raises(RegistryUnavailableError, match="cannot read the mirror"):
        reg.resolve("chat", env="production", strict=True)  # the server is gone


def test_every_other_primitive_refuses(mirror: Mirror) -> None:
    from llmreg.client.mirror_reader import MirrorBackend

    backend = MirrorBackend(f"file://{mirror.path}", trusted_root=mirror.keys / "root.json",
                            settings=Settings(cache=mirror.tmp / "c"))
    from llmreg.contract.operations import OPERATIONS

    # Every operation of the table, refused by its declaration, except those declared
    # to be dropped (heartbeats: a mirror counts no traffic).
    assert [n for n, op in OPERATIONS.items() if op.on_mirror == "drop"] == ["heartbeats"]
    for name, op in OPERATIONS.items():
        if op.on_mirror == "drop":
            assert backend.call(name, beats=[object()]) is None
            continue
        with pytest.raises(ReadOnlyError, match=rf"read-only mirror: {name} \({op.method} "):
            backend.call(name)
    for primitive, args in {"put_file": (Path("x"), None), "put_bytes": (b"x",),
                            "blob_chunks": ("sha256:00", 0)}.items():
        with pytest.raises(ReadOnlyError, match="read-only mirror"):
            getattr(backend, primitive)(*args)


def test_a_damaged_cache_is_refetched_or_refused(mirror: Mirror) -> None:
    reg = cached_then(mirror)
    digest = mirror.svc.versions.slot("chat", "production").digest.removeprefix("sha256:")
    cached = next((mirror.tmp / "cache").rglob(digest))
    cached.chmod(0o644)
    cached.write_bytes(b"damaged")
    assert reg.resolve("chat", env="production").version == 1  # fetched again, verified
    assert cached.read_bytes() != b"damaged"
    cached.write_bytes(b"damaged")
    mirror.path.rename(mirror.tmp / "gone")
    with pytest.raises(RegistryUnavailableError, match="cached manifest .* cannot be used"):
        reg.resolve("chat", env="production")
    with pytest.raises(RegistryUnavailableError, match="cannot read the mirror"):
        reg.get("chat@1")


def test_get_refuses_what_does_not_verify(mirror: Mirror) -> None:
    reg = mirror.client()
    evil = RegistryService.open_home(mirror.tmp / "evil")
    register(evil, 666)
    publish(evil, mirror.path, keygen(mirror.tmp / "evil-keys"))
    with pytest.raises(MirrorVerificationError, match="signature not made by a trusted key"):
        reg.get("chat@1")
    evil.close()


def test_explain_names_other_verification_failures() -> None:
    from tuf.api.exceptions import RepositoryError

    from llmreg.client.mirror_reader import explain

    assert explain(RepositoryError("odd")) == \
        "metadata that does not verify (RepositoryError): odd"


def test_the_mirror_settings() -> None:
    s = Settings.from_env({"LLMREG_URL": "s3://bucket/m", "LLMREG_TRUSTED_ROOT": "root.json",
                           "LLMREG_PUBLISH": "s3://bucket/m", "LLMREG_MIRROR_KEYS": "keys"})
    assert (s.url, s.trusted_root, s.publish, s.mirror_keys) == (
        "s3://bucket/m", Path("root.json"), "s3://bucket/m", Path("keys"))
    with pytest.raises(ConfigError, match="is not an http"):
        Settings.from_env({"LLMREG_URL": "ftp://x", "LLMREG_TRUSTED_ROOT": "root.json"})


# -- the exact words of each refusal ---------------------------------------------------

def backend_of(m: Mirror, url: str | None = None, cache: str = "cache",
               deadline: float = 30.0) -> MirrorBackend:
    """A mirror backend on ``url`` (the file:// mirror by default)."""
    return MirrorBackend(url or f"file://{m.path}", trusted_root=m.keys / "root.json",
                         settings=Settings(cache=m.tmp / cache, read_deadline=deadline))


def test_each_refusal_names_what_needs_the_registry(mirror: Mirror) -> None:
    backend = backend_of(mirror)
    tail = " needs the registry itself (LLMREG_URL=http(s)://… of a server, or LLMREG_HOME)"
    head = f"file://{mirror.path} is a read-only mirror: "
    refusals = [("whoami", backend.actor),
                ("uploading a blob", lambda: backend.put_file(Path("x"), None)),
                ("uploading a blob", lambda: backend.put_bytes(b"x")),
                ("downloading an artifact", lambda: backend.blob_chunks("sha256:00", 0)),
                ("the policy", lambda: backend.policy),
                ("promote (POST /v1/promotions)", lambda: backend.call("promote"))]
    for what, refused in refusals:
        with pytest.raises(ReadOnlyError) as exc:
            refused()
        assert str(exc.value) == head + what + tail


def test_a_dropped_heartbeat_is_logged_with_what_it_carried(
        mirror: Mirror, caplog: pytest.LogCaptureFixture) -> None:
    backend = backend_of(mirror)
    with caplog.at_level(logging.DEBUG, logger="llmreg"):
        assert backend.call("heartbeats", beats=[1], other=(2, 3), note="x") is None
        assert backend.call("heartbeats") is None
    assert [r.getMessage() for r in caplog.records] == [
        f"llmreg: heartbeats dropped: the mirror file://{mirror.path} takes none "
        "(1 beats, 2 other)",
        f"llmreg: heartbeats dropped: the mirror file://{mirror.path} takes none (no items)"]


def test_an_unreadable_root_and_an_empty_slot_are_named(mirror: Mirror) -> None:
    with pytest.raises(ConfigError) as exc:
        MirrorBackend(f"file://{mirror.path}", trusted_root=Path("nope.json"))
    assert str(exc.value) == ("trusted_root='nope.json' cannot be read (No such file or "
                              "directory); give the mirror's root.json (docs/mirror.md)")
    with pytest.raises(EmptySlotError) as empty:
        backend_of(mirror).resolve_slot("chat", "shadow", strict=True, max_stale=None)
    assert str(empty.value) == (f"the mirror file://{mirror.path} has no chat@shadow: nothing "
                                "runs there, or it was not published yet (`llmreg publish`)")


@pytest.mark.parametrize(("kind", "said"), [
    ("UnsignedMetadataError", "signature not made by a trusted key: m"),
    ("BadVersionNumberError", "rollback or mix-and-match (metadata of another version than "
                              "the one trusted or signed for): m"),
    ("ExpiredMetadataError", "frozen metadata: m"),
    ("LengthOrHashMismatchError", "tampered content (length or hash differs from the signed "
                                  "metadata): m"),
    ("RepositoryError", "metadata that does not verify (RepositoryError): m")])
def test_explain_names_each_attack(kind: str, said: str) -> None:
    from tuf.api import exceptions

    assert explain(getattr(exceptions, kind)("m")) == said


# -- the fetcher: HTTP, file://, s3:// --------------------------------------------------

class Served:
    """A mirror folder served over HTTP on 127.0.0.1 (the standard library, in a thread):
    it logs each path asked, and answers ``status[path]`` instead where one is set."""

    def __init__(self, folder: Path) -> None:
        import functools
        import threading
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[str] = []
        self.status: dict[str, int] = {}
        served = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                served.requests.append(self.path)
                if self.path in served.status:
                    self.send_error(served.status[self.path])
                    return
                super().do_GET()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                         functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


@pytest.fixture
def served(mirror: Mirror) -> Iterator[Served]:
    s = Served(mirror.path)
    yield s
    s.stop()


def test_over_http_only_what_changed_is_fetched(mirror: Mirror, served: Served,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from llmreg.client import mirror_reader
    from llmreg.client.transport import StdlibHTTP

    made: list[tuple[str, dict[str, str], float]] = []

    class Recorded(StdlibHTTP):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append((args[0], args[1], self._timeout))  # the timeout it got

    monkeypatch.setattr(mirror_reader, "StdlibHTTP", Recorded)
    backend = backend_of(mirror, served.url)
    assert backend.resolve_slot("chat", "production", strict=True, max_stale=None).version == 1
    assert [re.sub("[0-9a-f]{64}", "H", r) for r in served.requests] == [
        "/metadata/2.root.json", "/metadata/timestamp.json", "/metadata/1.snapshot.json",
        "/metadata/1.targets.json", "/targets/pointers/chat/H.production.json",
        "/metadata/1.manifests.json", "/targets/blobs/sha256/H.H"]
    served.requests.clear()  # nothing changed: the timestamp says so, the rest is kept
    assert backend.resolve_slot("chat", "production", strict=True, max_stale=None).version == 1
    assert served.requests == ["/metadata/2.root.json", "/metadata/timestamp.json"]
    assert made == [(served.url, {}, 5.0)]  # one connection, no headers, a 5 s timeout
    backend.close()


def test_a_manifest_cached_from_one_address_is_not_fetched_from_another(
        mirror: Mirror, served: Served) -> None:
    assert mirror.client().resolve("chat", env="production").version == 1  # over file://
    over_http = backend_of(mirror, served.url)  # the same cache: TUF's own state is per URL
    assert over_http.resolve_slot("chat", "production", strict=True, max_stale=None
                                  ).version == 1
    assert over_http.get("chat@1").version == 1
    assert not [r for r in served.requests if r.startswith("/targets/blobs/")]
    over_http.close()


def test_what_the_http_fetcher_says_when_it_fails(mirror: Mirror, served: Served) -> None:
    def fails(url: str) -> str:
        backend = backend_of(mirror, url, cache="fresh")
        try:
            with pytest.raises(RegistryUnavailableError) as exc:
                backend.resolve_slot("chat", "production", strict=True, max_stale=None)
        finally:
            backend.close()
        return str(exc.value).removesuffix(
            "; strict=True, so the cached answer for chat@production is not used")

    url = served.url
    served.status["/metadata/2.root.json"] = 500
    assert fails(url) == (f"cannot read the mirror {url} ({url}/metadata/2.root.json "
                          "answered 500)")
    served.status = {"/metadata/timestamp.json": 404}  # 2.root.json: 404, no newer root
    assert fails(url) == (f"cannot read the mirror {url} ({url}/metadata/timestamp.json "
                          "answered 404)")
    from tests.conftest import free_port

    nobody = f"http://127.0.0.1:{free_port()}"
    assert fails(nobody) == (f"cannot read the mirror {nobody} ({nobody}/metadata/2.root.json"
                             ": [Errno 111] Connection refused)")
    gone = mirror.tmp / "gone"
    assert fails(f"file://{gone}") == (f"cannot read the mirror file://{gone} (file://{gone}"
                                       "/metadata/timestamp.json not found)")


def test_the_fetcher_reads_nothing_outside_its_mirror(mirror: Mirror) -> None:
    from tuf import ngclient
    from tuf.api.exceptions import DownloadHTTPError

    from llmreg.client.mirror_reader import make_fetcher

    for base in (f"file://{mirror.path}", "http://127.0.0.1:9", "s3://bucket/m"):
        fetcher = make_fetcher(base, ngclient)
        with pytest.raises(DownloadHTTPError) as exc:
            fetcher.download_bytes(f"{base}-next/metadata/root.json", 1000)
        assert (str(exc.value), exc.value.status_code) == (
            f"{base}-next/metadata/root.json is outside the mirror {base}", 404)
        fetcher.close()
    fetcher = make_fetcher(f"file://{mirror.path}", ngclient)
    assert fetcher.download_bytes(f"file://{mirror.path}/metadata/1.root.json", 10**6
                                  ) == (mirror.path / "metadata" / "1.root.json").read_bytes()
    for missing in ("metadata/9.root.json", "metadata"):  # a file that is not, a folder
        with pytest.raises(DownloadHTTPError) as exc:
            fetcher.download_bytes(f"file://{mirror.path}/{missing}", 10**6)
        assert (str(exc.value), exc.value.status_code) == (
            f"file://{mirror.path}/{missing} not found", 404)


def test_the_s3_fetcher_maps_keys_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's own Stubber on a real client: the requests it is asked to make, and
    botocore's real error classes back (no server, no network)."""
    import io

    from botocore.response import StreamingBody
    from botocore.stub import Stubber
    from tuf import ngclient
    from tuf.api.exceptions import DownloadError, DownloadHTTPError

    from llmreg.client import mirror_reader
    from llmreg.settings import s3_client

    client = s3_client(region_name="us-east-1", aws_access_key_id="k",
                       aws_secret_access_key="s")
    made: list[int] = []

    def counted() -> object:
        made.append(1)
        return client

    def no_http(*args: object, **kwargs: object) -> None:
        raise AssertionError("an s3:// mirror is not read over HTTP")

    monkeypatch.setattr(mirror_reader, "_s3_client", counted)
    monkeypatch.setattr(mirror_reader, "StdlibHTTP", no_http)
    stub = Stubber(client)

    def body(data: bytes) -> dict[str, object]:
        return {"Body": StreamingBody(io.BytesIO(data), len(data))}

    for base, key in [("s3://bkt/a/b", "a/b/metadata/x.json"),
                      ("s3://bkt/a/b/", "a/b/metadata/x.json"),
                      ("s3://bkt", "metadata/x.json"), ("s3://bkt/", "metadata/x.json"),
                      ("s3://bkt/X", "X/metadata/x.json"), ("s3://bkt//a", "a/metadata/x.json")]:
        stub.add_response("get_object", body(base.encode()), {"Bucket": "bkt", "Key": key})
        with stub:
            fetcher = mirror_reader.make_fetcher(base.rstrip("/"), ngclient)
            assert fetcher.download_bytes(f"{base.rstrip('/')}/metadata/x.json", 100
                                          ) == base.encode()
    made.clear()
    fetcher = mirror_reader.make_fetcher("s3://bkt/m", ngclient)
    url = "s3://bkt/m/metadata/x.json"
    errors: list[tuple[str, str, int]] = [("NoSuchKey", "", 404),
                                          ("AccessDenied", "denied", 403),
                                          ("403", "Forbidden", 403),
                                          ("InternalError", "down", 500)]
    for code, message, status in errors:
        stub.add_client_error("get_object", service_error_code=code, service_message=message,
                              http_status_code=status)
    said = "An error occurred ({}) when calling the GetObject operation: {}"
    with stub:
        for kind, text, status in [
                (DownloadHTTPError, f"{url} not found", 404),
                (DownloadHTTPError, f"{url}: {said.format('AccessDenied', 'denied')}", 403),
                (DownloadHTTPError, f"{url}: {said.format('403', 'Forbidden')}", 403),
                (DownloadError, f"{url}: {said.format('InternalError', 'down')}", 0)]:
            with pytest.raises(DownloadError) as exc:
                fetcher.download_bytes(url, 100)
            assert type(exc.value) is kind and str(exc.value) == text
            assert getattr(exc.value, "status_code", 0) == status
    assert made == [1]  # one client, made on the first read
    stub.assert_no_pending_responses()


def test_an_s3_mirror_without_boto3_says_how_to_get_it(
        mirror: Mirror, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmreg.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "boto3", None)  # "not installed"
    backend = backend_of(mirror, "s3://bucket/m")
    with pytest.raises(MissingDependencyError) as exc:
        backend.resolve_slot("chat", "production", strict=False, max_stale=None)
    assert str(exc.value) == ("an s3:// mirror needs boto3: pip install 'llmreg[s3]'; or "
                              "read it over https://")


# -- python-tuf, imported on the first resolve -----------------------------------------

SDKS = ("boto3", "google.cloud", "azure", "hvac", "PyKCS11", "sigstore")


@dataclass
class TufImport:
    """What ``sys.modules`` held of the SDKs each time ``tuf.ngclient`` was looked for;
    ``during``, when set, runs then (another thread meddling with ``sys.modules``)."""

    seen: list[dict[str, object]]
    during: Any = None


@pytest.fixture
def tuf_unimported(monkeypatch: pytest.MonkeyPatch) -> Iterator[TufImport]:
    """python-tuf (and securesystemslib) as if never imported, and none of the signer SDKs
    loaded; everything is put back afterwards."""
    from importlib.abc import MetaPathFinder

    def ours(name: str) -> bool:
        return name.split(".")[0] in ("tuf", "securesystemslib")

    saved = {k: v for k, v in sys.modules.items() if ours(k)}
    for key in saved:
        del sys.modules[key]
    for sdk in SDKS:
        monkeypatch.delitem(sys.modules, sdk, raising=False)
    state = TufImport([])

    class Watch(MetaPathFinder):
        def find_spec(self, name: str, path: object, target: object = None) -> None:
            if name == "tuf.ngclient":
                state.seen.append({m: sys.modules.get(m, "absent") for m in SDKS})
                if state.during:
                    state.during()

    watch = Watch()
    sys.meta_path.insert(0, watch)
    try:
        yield state
    finally:
        sys.meta_path.remove(watch)
        for key in [k for k in sys.modules if ours(k)]:
            del sys.modules[key]
        sys.modules.update(saved)


def test_tuf_is_imported_with_the_signer_sdks_hidden_then_shown_again(
        tuf_unimported: TufImport) -> None:
    import types

    from llmreg.client.mirror_reader import _import_tuf

    app_loaded = types.ModuleType("hvac")  # the application imported this one itself
    sys.modules["hvac"] = app_loaded
    try:
        ngclient = _import_tuf()
        assert ngclient is sys.modules["tuf.ngclient"] and ngclient.Updater
        assert tuf_unimported.seen == [{**dict.fromkeys(SDKS), "hvac": app_loaded}]
        assert {m: sys.modules.get(m, "absent") for m in SDKS} == {
            **dict.fromkeys(SDKS, "absent"), "hvac": app_loaded}
        assert _import_tuf() is ngclient and len(tuf_unimported.seen) == 1  # once
    finally:
        del sys.modules["hvac"]


def test_only_the_hiding_marks_are_taken_back(tuf_unimported: TufImport) -> None:
    """Something else (another thread, a test double) sets or drops an SDK's entry while
    tuf imports: its change stays."""
    import types

    from llmreg.client.mirror_reader import _import_tuf

    double = types.ModuleType("azure")

    def meddle() -> None:
        sys.modules["azure"] = double
        del sys.modules["PyKCS11"]

    tuf_unimported.during = meddle
    try:
        _import_tuf()
        assert sys.modules.get("azure") is double and "PyKCS11" not in sys.modules
    finally:
        sys.modules.pop("azure", None)


def test_without_tuf_a_mirror_says_how_to_get_it(tuf_unimported: TufImport) -> None:
    from llmreg.client.mirror_reader import _import_tuf
    from llmreg.errors import MissingDependencyError

    sys.modules["tuf"] = None  # type: ignore[assignment]  # "not installed"
    with pytest.raises(MissingDependencyError) as exc:
        _import_tuf()
    assert str(exc.value) == ("a signed mirror needs python-tuf: pip install "
                              "'llmreg[mirror]'")
    assert not [m for m in SDKS if m in sys.modules]  # shown again after the failure


# -- the client's state on disk, get and resolve by ref --------------------------------

def test_the_client_keeps_tuf_state_per_mirror_and_root_in_its_cache(
        mirror: Mirror) -> None:
    import hashlib

    from llmreg.client.mirror_reader import MirrorClient

    copy = mirror.tmp / "mirrorX"  # a trailing slash is dropped, nothing more
    shutil.copytree(mirror.path, copy)
    reg = MirrorClient(f"file://{copy}/", trusted_root=mirror.keys / "root.json",
                       settings=Settings(cache=mirror.tmp / "unused"), cache=mirror.tmp / "c")
    reg.close()  # nothing opened yet: nothing to close
    assert reg.url == f"file://{copy}"
    assert reg.resolve("chat", env="production").version == 1
    root = (mirror.keys / "root.json").read_bytes()
    tag = hashlib.sha256(f"file://{copy}".encode() + b"\0" + root).hexdigest()[:16]
    assert sorted(p.name for p in (mirror.tmp / "c" / "mirror").iterdir()) == [tag]
    state = mirror.tmp / "c" / "mirror" / tag
    assert sorted(p.name for p in (state / "metadata").iterdir()) == [
        "manifests.json", "root.json", "root_history", "snapshot.json", "targets.json",
        "timestamp.json"]
    digest = mirror.svc.versions.slot("chat", "production").digest
    pointer = pointer_bytes("chat", "production", 1, digest)
    assert sorted((state / "targets").iterdir()) == sorted(
        state / "targets" / hashlib.sha256(path.encode()).hexdigest()
        for path in ("pointers/chat/production.json", f"blobs/sha256/{digest[7:]}"))
    assert (state / "targets" / hashlib.sha256(b"pointers/chat/production.json").hexdigest()
            ).read_bytes() == pointer
    assert not (mirror.tmp / "unused").exists() and not Path("None").exists()
    reg.close()


def test_get_by_label_version_prefix_and_ref(mirror: Mirror) -> None:
    next_version_in_production(mirror)  # production and staging: v2
    register(mirror.svc, 3)  # the latest, in no environment
    mirror.publish()
    reg = mirror.client()
    assert [reg.get(ref).version for ref in ("chat", "chat@latest", "chat@staging",
                                             "chat@prod", "chat@production", "chat@1")
            ] == [3, 3, 2, 2, 2, 1]
    assert reg.resolve("chat@2").version == 2 and reg.resolve("chat@2").env is None
    with pytest.raises(RefNotFoundError) as exc:
        reg.get("chat@sha256:0000000")
    assert str(exc.value) == (f"the mirror file://{mirror.path} has no chat@sha256:0000000; "
                              "see `llmreg history chat` on the registry")
    with pytest.raises(RefNotFoundError) as exc:
        reg.get("nope")
    assert str(exc.value) == f"the mirror file://{mirror.path} has no bundle named 'nope'"
    mirror.path.rename(mirror.tmp / "gone")  # by label, as resolve: the cache serves
    assert reg.get("chat@production").version == 2
    reg.close()


def test_an_alias_served_from_the_cache_keeps_its_environment(
        mirror: Mirror, caplog: pytest.LogCaptureFixture) -> None:
    reg = mirror.client()
    assert reg.resolve("chat", env="prod").env == "production"
    mirror.path.rename(mirror.tmp / "gone")
    with caplog.at_level(logging.WARNING, logger="llmreg"):
        served = reg.resolve("chat", env="prod")
    assert (served.served_from_cache, served.env, served.version) == (True, "production", 1)


def test_get_refuses_an_index_the_registry_would_never_sign(
        mirror: Mirror, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compromised publisher signs a names index naming FAKE for v9 (its blob holds
    chat@1's manifest), then one with no versions at all."""
    from llmreg.service.mirror import publisher

    real = mirror.svc.versions.slot("chat", "production").digest
    small, paths = publisher._Publisher._small_files, publisher._Publisher._manifest_paths
    for index in ({"name": "chat", "versions": {"9": FAKE}}, {"name": "chat", "versions": {}}):
        with monkeypatch.context() as patch:
            patch.setattr(publisher._Publisher, "_small_files", lambda self, i=index: {
                **small(self), "names/chat.json": json.dumps(i).encode()})
            patch.setattr(publisher._Publisher, "_manifest_paths", lambda self: {
                **paths(self), f"blobs/sha256/{FAKE.removeprefix('sha256:')}": real})
            mirror.publish()
        reg = mirror.client(f"c{len(index['versions'])}")
        with pytest.raises((MirrorVerificationError, RefNotFoundError)) as exc:
            reg.get("chat")
        assert str(exc.value) == (
            "the mirror's manifest abababababab does not hash to its digest"
            if index["versions"] else
            f"the mirror file://{mirror.path} has no chat; see `llmreg history chat` on "
            "the registry")
        assert type(exc.value) is (MirrorVerificationError if index["versions"]
                                   else RefNotFoundError)
        reg.close()


def test_old_keys_do_not_sign_for_a_client_that_saw_them_rotated(
        mirror: Mirror, caplog: pytest.LogCaptureFixture) -> None:
    """The timestamp key is rotated (root 2) after it leaked; the attacker serves what
    the old key signed, without root 2. The client trusts the newest root it verified,
    not the one it was pinned to."""
    from llmreg.service.mirror.keys import rotate

    shutil.copytree(mirror.path, mirror.tmp / "signed-with-the-old-key")
    reg = cached_then(mirror)
    rotate(mirror.keys, "timestamp")
    next_version_in_production(mirror)
    assert reg.resolve("chat", env="production").version == 2  # walked to root 2
    shutil.rmtree(mirror.path)
    shutil.copytree(mirror.tmp / "signed-with-the-old-key", mirror.path)
    assert_falls_back(reg, caplog, "signature not made by a trusted key", version=2)
    reg.close()


# -- bounded reads: a cap per file, one deadline per resolve -----------------------------
# A hostile server (tests/client/hostile.py) in front of the real mirror folder answers
# chosen files with a play; everything else is the genuine published file.

@pytest.fixture
def hostile(mirror: Mirror) -> Iterator[Hostile]:
    h = Hostile(mirror.path)
    yield h
    h.stop()


def cached_over(m: Mirror, url: str, deadline: float = 30.0) -> MirrorBackend:
    """A backend on ``url`` that resolved chat@production once (v1 is cached)."""
    backend = backend_of(m, url, deadline=deadline)
    assert backend.resolve_slot("chat", "production", strict=True, max_stale=None).version == 1
    return backend


def serves_cache(backend: MirrorBackend, kind: type[Exception], said: str,
                 caplog: pytest.LogCaptureFixture) -> None:
    """The cached v1 served with a warning saying ``said``; ``kind`` when strict."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="llmreg"):
        served = backend.resolve_slot("chat", "production", strict=False, max_stale=None)
    assert (served.served_from_cache, served.version) == (True, 1)
    assert said in caplog.text, caplog.text
    with pytest.raises(kind) as exc:
        backend.resolve_slot("chat", "production", strict=True, max_stale=None)
    assert type(exc.value) is kind and said in str(exc.value)


ENDLESS = [endless(b" "), endless(b"\x00"), endless(b'{"signed":')]


@pytest.mark.parametrize("play", ENDLESS, ids=["spaces", "nul", "json"])
def test_an_endless_timestamp_is_cut_at_its_cap_and_refused_as_an_attack(
        mirror: Mirror, hostile: Hostile, play: Any, caplog: pytest.LogCaptureFixture) -> None:
    backend = cached_over(mirror, hostile.url)
    hostile.plays["/metadata/timestamp.json"] = play
    hostile.sent = 0
    started = time.monotonic()
    serves_cache(backend, MirrorVerificationError,
                 f"oversized file (longer than signed or allowed; reading stopped there): "
                 f"{hostile.url}/metadata/timestamp.json is longer than 16384 bytes, the most "
                 "llmreg reads of timestamp metadata", caplog)
    assert time.monotonic() - started < 5
    assert hostile.sent < 8 * 1024 * 1024  # the client hung up; socket buffers at most
    backend.close()


@pytest.mark.parametrize(("suffix", "what"), [
    (".root.json", "the most llmreg reads of root metadata"),
    (".snapshot.json", "the length the mirror's signed metadata lists for it"),
    (".production.json", "the length the mirror's signed metadata lists for it")],
    ids=["root", "snapshot", "pointer"])
def test_every_kind_of_file_is_cut_at_its_own_cap(
        mirror: Mirror, hostile: Hostile, suffix: str, what: str) -> None:
    next_version_in_production(mirror)  # a new snapshot and pointer to read, v3 of root
    hostile.plays[suffix] = endless()
    backend = backend_of(mirror, hostile.url, cache="fresh")
    with pytest.raises(MirrorVerificationError) as exc:
        backend.resolve_slot("chat", "production", strict=False, max_stale=None)
    assert re.search(r"is longer than (\d+) bytes, " + re.escape(what), str(exc.value))
    limit = int(re.findall(r"longer than (\d+) bytes", str(exc.value))[0])
    assert limit == 512 * 1024 if suffix == ".root.json" else limit < 16384
    backend.close()


def test_the_cap_is_exact_a_listed_length_and_a_maximum_alike(mirror: Mirror) -> None:
    """One byte over is refused, the exact length is read: a padded timestamp still
    verifies (its signature covers the signed part), so up to 16384 bytes it is used."""
    stamp = mirror.path / "metadata" / "timestamp.json"
    genuine = stamp.read_bytes()
    stamp.write_bytes(genuine + b" " * (16384 - len(genuine)))
    assert backend_of(mirror, cache="a").resolve_slot(
        "chat", "production", strict=True, max_stale=None).version == 1
    stamp.write_bytes(genuine + b" " * (16385 - len(genuine)))
    with pytest.raises(MirrorVerificationError, match="longer than 16384 bytes, the most"):
        backend_of(mirror, cache="b").resolve_slot("chat", "production", strict=True,
                                                   max_stale=None)
    stamp.write_bytes(genuine)
    pointer = mirror.pointer("production")
    data = pointer.read_bytes()
    pointer.write_bytes(data + b" ")
    with pytest.raises(MirrorVerificationError,
                       match=rf"longer than {len(data)} bytes, the length the mirror's"):
        backend_of(mirror, cache="c").resolve_slot("chat", "production", strict=True,
                                                   max_stale=None)


EDITS = [("longer", lambda b: b + b"\n"), ("shorter", lambda b: b[:-1]),
         ("wrong hash", lambda b: b.replace(b"variant 2", b"variant 3")),
         ("much longer", lambda b: b + b"x" * 100_000)]


@pytest.mark.parametrize(("label", "change"), EDITS, ids=[e[0] for e in EDITS])
def test_a_manifest_of_another_length_or_hash_is_an_attack_never_an_outage(
        mirror: Mirror, hostile: Hostile, label: str, change: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    backend = cached_over(mirror, hostile.url)
    next_version_in_production(mirror)
    digest = mirror.svc.versions.slot("chat", "production").digest.removeprefix("sha256:")
    hostile.plays = {f"{digest}.{digest}": edited(change)}
    said = ("oversized file" if label.endswith("longer") else "tampered content")
    serves_cache(backend, MirrorVerificationError, said, caplog)
    backend.close()


DRIPS = [("drip", drip(0.3)), ("drip without a length", drip(0.3, declared=False)),
         ("headers that never end", slow_headers(0.2)), ("silence", late(10.0))]


@pytest.mark.parametrize(("label", "play"), DRIPS, ids=[d[0] for d in DRIPS])
def test_a_slow_answer_ends_at_the_deadline_as_an_outage(
        mirror: Mirror, hostile: Hostile, label: str, play: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    backend = cached_over(mirror, hostile.url, deadline=1.0)
    hostile.plays["/metadata/timestamp.json"] = play
    for strict in (False, True):
        started = time.monotonic()
        try:
            with caplog.at_level(logging.WARNING, logger="llmreg"):
                served = backend.resolve_slot("chat", "production", strict=strict,
                                              max_stale=None)
            assert not strict and served.served_from_cache and served.version == 1
        except RegistryUnavailableError as exc:
            assert strict and type(exc) is RegistryUnavailableError
            assert "no whole answer within the 1s deadline (LLMREG_READ_DEADLINE)" in str(exc)
        # well under the 20 s the answer would take; loose enough for a loaded machine
        assert 0.9 < time.monotonic() - started < 6.0
    assert "no whole answer within the 1s deadline" in caplog.text
    hostile.plays.clear()  # the next resolve has a deadline of its own
    assert not backend.resolve_slot("chat", "production", strict=True,
                                    max_stale=None).served_from_cache
    backend.close()


def test_the_deadline_covers_the_whole_resolve_not_each_file(
        mirror: Mirror, hostile: Hostile) -> None:
    """Each file comes in 0.3 s, under the deadline; the seven of a first resolve do not."""
    hostile.plays[".json"] = late(0.3)
    backend = backend_of(mirror, hostile.url, cache="fresh", deadline=1.0)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError, match="within the 1s deadline"):
        backend.resolve_slot("chat", "production", strict=False, max_stale=None)
    assert time.monotonic() - started < 1.6
    backend.close()


def test_a_spent_deadline_is_an_outage_on_a_file_mirror_too(mirror: Mirror) -> None:
    backend = backend_of(mirror, deadline=1e-9)
    with pytest.raises(RegistryUnavailableError, match="within the 1e-09s deadline"):
        backend.resolve_slot("chat", "production", strict=False, max_stale=None)


def test_the_fetchers_own_interface_reads_capped_too(mirror: Mirror) -> None:
    from tuf import ngclient

    from llmreg.client.mirror_reader import make_fetcher

    fetcher = make_fetcher(f"file://{mirror.path}", ngclient)
    url = f"file://{mirror.path}/metadata/1.root.json"
    assert b"".join(fetcher.fetch(url)) == (mirror.path / "metadata" / "1.root.json"
                                            ).read_bytes()


def test_an_s3_object_longer_than_its_cap_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from botocore.response import StreamingBody
    from botocore.stub import Stubber
    from tuf import ngclient

    from llmreg.client import mirror_reader
    from llmreg.settings import s3_client

    client = s3_client(region_name="us-east-1", aws_access_key_id="k",
                       aws_secret_access_key="s")
    monkeypatch.setattr(mirror_reader, "_s3_client", lambda: client)
    stub = Stubber(client)
    for size in (100, 101):
        stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(b"x" * size), size)},
                          {"Bucket": "bkt", "Key": "m/metadata/x.json"})
    fetcher = mirror_reader.make_fetcher("s3://bkt/m", ngclient)
    with stub:
        assert fetcher.download_bytes("s3://bkt/m/metadata/x.json", 100) == b"x" * 100
        with pytest.raises(mirror_reader.oversized_error(),
                           match=r"x.json is longer than 100 bytes"):
            fetcher.download_bytes("s3://bkt/m/metadata/x.json", 100)


# -- a damaged trusted root on this machine ----------------------------------------------

DAMAGES = [("garbage", b"not json"), ("empty", b""), ("truncated", None),
           ("edited, not re-signed", "edited")]


def damage(data: bytes, how: bytes | str | None, m: Mirror) -> bytes:
    if how is None:
        return data[: len(data) // 2]
    if how == "edited":
        edited = re.sub(rb'"expires": ?"(\d{4})', rb'"expires": "2999', data)
        assert edited != data
        return edited
    assert isinstance(how, bytes)
    return how


@pytest.mark.parametrize(("label", "how"), DAMAGES, ids=[d[0] for d in DAMAGES])
def test_a_damaged_kept_root_is_named_with_its_fix_not_blamed_on_the_mirror(
        mirror: Mirror, label: str, how: bytes | str | None) -> None:
    backend = cached_over(mirror, f"file://{mirror.path}")
    kept = backend._dir / "metadata" / "root.json"
    kept.resolve().write_bytes(damage(kept.read_bytes(), how, mirror))
    for strict in (False, True):  # a cached answer exists, and is not served either
        with pytest.raises(ConfigError) as exc:
            backend.resolve_slot("chat", "production", strict=strict, max_stale=None)
        assert str(exc.value).startswith(
            f"the trusted root kept on this machine, {kept}, is damaged (")
        assert str(exc.value).endswith(f"); delete the folder {backend._dir} to start again "
                                       "from the pinned root (docs/mirror.md)")
        assert "mirror file://" not in str(exc.value)
    with pytest.raises(ConfigError, match="the trusted root kept on this machine"):
        backend.get("chat@1")
    shutil.rmtree(backend._dir)  # the fix it gives
    assert backend.resolve_slot("chat", "production", strict=True, max_stale=None).version == 1


def test_a_kept_root_that_cannot_be_read_is_named(mirror: Mirror) -> None:
    backend = cached_over(mirror, f"file://{mirror.path}")
    kept = (backend._dir / "metadata" / "root.json").resolve()
    kept.unlink()
    kept.mkdir()  # an OSError, not a parse error
    with pytest.raises(ConfigError, match=r"kept on this machine, .*, is damaged "
                                          r"\(IsADirectoryError: "):
        backend.resolve_slot("chat", "production", strict=False, max_stale=None)


@pytest.mark.parametrize(("label", "how"), DAMAGES, ids=[d[0] for d in DAMAGES])
def test_a_damaged_pinned_root_is_named_with_its_fix(
        mirror: Mirror, label: str, how: bytes | str | None) -> None:
    pinned = mirror.tmp / "pinned-root.json"
    pinned.write_bytes(damage((mirror.keys / "root.json").read_bytes(), how, mirror))
    backend = MirrorBackend(f"file://{mirror.path}", trusted_root=pinned,
                            settings=Settings(cache=mirror.tmp / "c"))
    with pytest.raises(ConfigError) as exc:
        backend.resolve_slot("chat", "production", strict=False, max_stale=None)
    assert str(exc.value).startswith(f"the pinned trusted root {str(pinned)!r} is damaged (")
    assert str(exc.value).endswith("); give the mirror's root.json again (docs/mirror.md)")
