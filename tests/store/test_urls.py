"""Store URLs: one parser (``llmreg.settings.parse_store_url``) behind ``LLMREG_STORE``,
``LLMREG_PUBLISH`` and a mirror's ``DEST``; one S3 client configuration behind every S3
client llmreg makes."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

import llmreg
from llmreg.errors import ConfigError
from llmreg.service import RegistryService
from llmreg.service.mirror import destinations
from llmreg.service.mirror.destinations import FolderDestination, S3Destination, open_destination
from llmreg.settings import S3_CONFIG, Settings, StoreScheme, s3_client
from llmreg.store import OPENERS, LocalStore, open_store
from llmreg.store.s3 import S3Store

FORMS = "a folder, file://PATH or s3://BUCKET/PREFIX"
UNKNOWN = ["s4://x", "gs://bucket/reg", "https://blobs.example/reg", "memory://", "ftp://h/p",
           "S3://bucket"]


@pytest.fixture(autouse=True)
def no_aws_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3 builds clients offline; keep the machine's own AWS files out of it."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_every_scheme_has_an_opener_for_stores_and_for_mirrors() -> None:
    assert set(OPENERS) == set(destinations.OPENERS) == set(get_args(StoreScheme)) \
        == {"file", "s3"}


# -- LLMREG_STORE, through Settings.from_env and the store it opens ---------------------

@pytest.mark.parametrize(("value", "folder"), [
    ("/srv/blobs", "/srv/blobs"),
    ("file:///srv/blobs", "/srv/blobs"),
    ("blobs", "blobs"),  # a relative folder stays relative
    ("./a://b", "./a://b"),  # "://" after a path is still a path
])
def test_a_path_or_file_url_is_the_local_store(value: str, folder: str,
                                                tmp_path: Path) -> None:
    settings = Settings.from_env({"LLMREG_STORE": value})
    assert settings.store == folder
    store = open_store(settings.store, tmp_path / "home")
    assert isinstance(store, LocalStore) and store.dir == Path(folder) / "blobs" / "sha256"


def test_no_store_is_the_home_folder(tmp_path: Path) -> None:
    settings = Settings.from_env({})
    assert settings.store is None
    store = open_store(settings.store, tmp_path / "home")
    assert isinstance(store, LocalStore) and store.dir == tmp_path / "home/blobs/sha256"


@pytest.mark.parametrize(("value", "bucket", "prefix", "normal"), [
    ("s3://llmreg-prod/registry", "llmreg-prod", "registry", "s3://llmreg-prod/registry"),
    ("s3://llmreg-prod/a/b/", "llmreg-prod", "a/b", "s3://llmreg-prod/a/b"),
    ("s3://llmreg-prod", "llmreg-prod", "", "s3://llmreg-prod"),
])
def test_s3_is_the_s3_store(value: str, bucket: str, prefix: str, normal: str,
                            tmp_path: Path) -> None:
    settings = Settings.from_env({"LLMREG_STORE": value})
    assert settings.store == normal
    store = open_store(settings.store, tmp_path / "home")
    assert isinstance(store, S3Store) and (store.bucket, store.prefix) == (bucket, prefix)


@pytest.mark.parametrize("value", UNKNOWN)
def test_an_unknown_store_scheme_is_refused_in_one_line(value: str, tmp_path: Path) -> None:
    scheme = value.split("://")[0]
    message = f"LLMREG_STORE={value!r} is not {FORMS} (scheme {scheme!r} is not supported)"
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"LLMREG_STORE": value})
    assert str(caught.value) == message and "\n" not in message
    with pytest.raises(ConfigError) as caught:  # settings built by hand: refused at open
        open_store(value, tmp_path / "home")
    assert str(caught.value) == message
    assert list(tmp_path.iterdir()) == []  # no folder named after the scheme


@pytest.mark.parametrize(("value", "message"), [
    ("s3:///prefix", "LLMREG_STORE='s3:///prefix' names no bucket; use s3://BUCKET/PREFIX"),
    ("s3://", "LLMREG_STORE='s3://' names no bucket; use s3://BUCKET/PREFIX"),
    ("file://", "LLMREG_STORE='file://' names no folder; use a path or file://PATH"),
])
def test_an_incomplete_store_url_is_refused(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"LLMREG_STORE": value})
    assert str(caught.value) == message


def test_the_embedded_client_opens_the_store_llmreg_store_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREG_STORE", f"file://{tmp_path / 'blobs'}")
    with llmreg.connect(tmp_path / "reg" / ".llmreg", create=True) as reg:
        reg.log_bundle(llmreg.Bundle.from_dict(_bundle()), name="chat", message="v1")
    assert list((tmp_path / "blobs" / "blobs" / "sha256").iterdir())
    assert not (tmp_path / "reg" / ".llmreg" / "blobs").exists()


def test_connect_refuses_an_unknown_scheme_instead_of_making_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^connect\('s4://x'\): scheme 's4' is not supported"):
        llmreg.connect("s4://x", create=True)
    assert not (tmp_path / "s4:").exists()


# -- LLMREG_PUBLISH and a mirror's DEST -------------------------------------------------

@pytest.mark.parametrize("value", ["mirror", "file:///srv/mirror", "s3://bucket/prod"])
def test_llmreg_publish_is_read_by_the_same_parser(value: str) -> None:
    assert Settings.from_env({"LLMREG_PUBLISH": value}).publish == value


@pytest.mark.parametrize("value", UNKNOWN)
def test_an_unknown_publish_scheme_is_refused(value: str) -> None:
    scheme = value.split("://")[0]
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"LLMREG_PUBLISH": value})
    assert str(caught.value) == (f"LLMREG_PUBLISH={value!r} is not {FORMS} "
                                 f"(scheme {scheme!r} is not supported)")


def test_a_destination_folder_or_file_url(tmp_path: Path) -> None:
    for value in (str(tmp_path / "m"), f"file://{tmp_path / 'm'}"):
        dest = open_destination(value)
        assert isinstance(dest, FolderDestination) and dest.root == tmp_path / "m"
    assert isinstance(open_destination(tmp_path / "m"), FolderDestination)  # a Path too


def test_a_destination_in_s3() -> None:
    dest = open_destination("s3://bucket/prod/")
    assert isinstance(dest, S3Destination)
    assert (dest.bucket, dest.prefix, dest.url) == ("bucket", "prod", "s3://bucket/prod")


@pytest.mark.parametrize("value", UNKNOWN)
def test_an_unknown_destination_scheme_is_refused(value: str, tmp_path: Path) -> None:
    scheme = value.split("://")[0]
    with pytest.raises(ConfigError) as caught:
        open_destination(value)
    assert str(caught.value) == (f"DEST={value!r} is not {FORMS} "
                                 f"(scheme {scheme!r} is not supported)")
    with pytest.raises(ConfigError, match=r"^LLMREG_PUBLISH="):
        open_destination(value, field="LLMREG_PUBLISH")
    assert list(tmp_path.iterdir()) == []


def test_a_destination_bucket_is_required() -> None:
    with pytest.raises(ConfigError) as caught:
        open_destination("s3:///prod")
    assert str(caught.value) == "DEST='s3:///prod' names no bucket; use s3://BUCKET/PREFIX"


# -- one S3 client configuration ---------------------------------------------------------

def _policy(client: object) -> tuple[object, ...]:
    config = client.meta.config  # type: ignore[attr-defined]
    return (config.retries, config.connect_timeout, config.read_timeout,
            config.request_checksum_calculation, config.response_checksum_validation)


def test_every_s3_client_has_the_one_configuration() -> None:
    from llmreg.client.mirror_reader import _s3_client

    expected = (S3_CONFIG["retries"], 5, 60, "when_required", "when_required")
    assert S3_CONFIG["retries"] == {"mode": "standard", "total_max_attempts": 6}
    assert _policy(s3_client()) == expected
    assert _policy(S3Store("bucket").client) == expected  # the blob store
    assert _policy(S3Destination("bucket", "prod").client) == expected  # the publisher
    assert _policy(_s3_client()) == expected  # the mirror reader
    endpoint = s3_client(endpoint_url="http://127.0.0.1:9")  # arguments pass through
    assert endpoint.meta.endpoint_url == "http://127.0.0.1:9"


@pytest.mark.s3
def test_an_s3_store_from_llmreg_store_writes_to_the_bucket(
        weed: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.s3 import BUCKET, Weed, aws_env, new_prefix

    assert isinstance(weed, Weed)
    aws_env(weed, monkeypatch)
    prefix = new_prefix()
    settings = Settings.from_env({"LLMREG_STORE": f"s3://{BUCKET}/{prefix}/"})
    svc = RegistryService.open_home(tmp_path / "home", store=settings.store)
    try:
        digest = svc.blobs.put_bytes(b"hello").digest
    finally:
        svc.close()
    listed = weed.client().list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")  # type: ignore[attr-defined]
    assert [o["Key"] for o in listed["Contents"]] == [
        f"{prefix}/blobs/sha256/{digest.removeprefix('sha256:')}"]


def _bundle() -> dict[str, object]:
    from tests.conftest import minimal

    return minimal()
