"""Stumbles a newcomer hit in the library (issue 12), each pinned by a test."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmreg
from llmreg.errors import IntegrityError
from tests.conftest import minimal


def test_bundle_repr_shows_name_version_digest_and_model(reg: llmreg.Client,
                                                         examples: Path) -> None:
    bundle = reg.log_bundle(examples / "ticket-classifier", message="first")
    text = repr(bundle)
    assert text.startswith("Bundle(ticket-classifier@1, sha256:")
    assert bundle.digest[:19] in text and "mistral/mistral-small-2409" in text
    assert "unregistered" in repr(llmreg.Bundle.from_dict(minimal()))


def test_corrupt_blob_message_names_expected_and_found_digests(reg: llmreg.Client,
                                                               examples: Path,
                                                               tmp_path: Path) -> None:
    bundle = reg.log_bundle(examples / "ticket-classifier", message="first")
    artifact = bundle.artifacts[0]
    path = reg._backend.service.blobs.store.path(artifact.digest)  # type: ignore[attr-defined]
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF                               # same size, different bytes
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as err:
        reg.pull("ticket-classifier@1", tmp_path / "out")
    message = str(err.value)
    assert f"expected digest {artifact.digest}, found sha256:" in message
    assert "bytes, expected" not in message     # not "(721 bytes, expected 721)"


def test_a_misspelled_name_or_environment_gets_did_you_mean(reg: llmreg.Client,
                                                            examples: Path) -> None:
    from llmreg.errors import RefNotFoundError, UnknownEnvironmentError
    reg.log_bundle(examples / "support-rag", message="first")
    with pytest.raises(RefNotFoundError, match="did you mean 'support-rag'"):
        reg.get("suport-rag@1")
    with pytest.raises(RefNotFoundError, match="did you mean 'support-rag'"):
        reg.history("support-rga")
    with pytest.raises(RefNotFoundError) as far:
        reg.get("billing")
    assert "did you mean" not in str(far.value)
    with pytest.raises(UnknownEnvironmentError, match="did you mean 'production'"):
        reg.promote("support-rag@1", to="prodution", reason="typo")


def test_every_validation_error_at_once_with_file_line_and_did_you_mean(
        examples: Path) -> None:
    from llmreg.errors import InvalidBundleError
    manifest = examples / "ticket-classifier" / "llmreg.yaml"
    text = manifest.read_text()
    manifest.write_text(text.replace("temperature:", "temprature:")
                        .replace("max_tokens:", "max_tokens: -3 #"))
    with pytest.raises(InvalidBundleError) as err:
        llmreg.load_bundle_dir(examples / "ticket-classifier")
    message = str(err.value)
    lines = manifest.read_text().splitlines()
    temp_line = next(i for i, ln in enumerate(lines, 1) if "temprature" in ln)
    max_line = next(i for i, ln in enumerate(lines, 1) if "max_tokens" in ln)
    assert (f"llmreg.yaml line {temp_line}: model.parameters.temprature: unknown field "
            "(did you mean 'temperature'?)") in message
    assert f"llmreg.yaml line {max_line}: model.parameters.max_tokens:" in message
    assert "\n" not in message


def test_yaml_exponent_numbers_are_numbers() -> None:
    from llmreg.bundle.parse import load_yaml
    assert load_yaml("a: 8e2\nb: 1e0\nc: -1.5E-3\nd: '8e2'\n", "x.yaml") == {
        "a": 800.0, "b": 1.0, "c": -0.0015, "d": "8e2"}
