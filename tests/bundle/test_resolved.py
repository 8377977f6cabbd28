"""ResolvedBundle: identity by digest, post-processing, and the lazily built Bundle."""

from __future__ import annotations

import copy
import pickle

import pytest

from llmreg.bundle.resolved import ResolvedBundle
from llmreg.bundle.schema import Bundle
from llmreg.errors import PostprocessError
from tests.conftest import minimal

STEPS = [{"type": "strip"},
         {"type": "regex_extract", "pattern": r"```json\s*(.*?)```", "group": 1,
          "flags": ["DOTALL"]},
         {"type": "json_parse"},
         {"type": "json_schema_validate",
          "json_schema": {"type": "object", "required": ["label"]}}]


def resolved(bundle: Bundle, **kw: object) -> ResolvedBundle:
    args: dict[str, object] = {"name": "chat", "version": 3, "env": "production"}
    args.update(kw)
    return ResolvedBundle(bundle.canonical_bytes(), **args)  # type: ignore[arg-type]


def test_equality_and_hash_follow_the_digest() -> None:
    one = Bundle.from_dict(minimal())
    other = Bundle.from_dict(minimal(system_prompt="different"))
    a, b = resolved(one), resolved(one, name="elsewhere", version=9, env="staging")
    assert a == b and hash(a) == hash(b)  # same content, wherever it was resolved from
    assert a != resolved(other) and hash(a) != hash(resolved(other))
    assert a == one and a != other  # a Bundle with the same digest is the same content
    assert a != "not a bundle" and a != None  # noqa: E711 -- __eq__ must not raise
    assert {a, b, resolved(other)} == {a, resolved(other)}
    assert {a: "x"}[b] == "x"
    assert a.digest == one.digest == ResolvedBundle.from_bundle(one).digest


def test_postprocess_runs_the_declared_steps() -> None:
    rb = resolved(Bundle.from_dict(minimal(postprocess=STEPS)))
    answer = '  Sure!\n```json\n{"label": "billing"}\n```\n'
    assert rb.postprocess(answer) == {"label": "billing"}
    with pytest.raises(PostprocessError, match="label"):
        rb.postprocess('```json\n{"other": 1}\n```')
    assert resolved(Bundle.from_dict(minimal())).postprocess("  as is ") == "  as is "


def test_the_manifest_is_the_verified_bytes() -> None:
    bundle = Bundle.from_dict(minimal(system_prompt="Be brief."))
    rb = resolved(bundle)
    assert rb.canonical == bundle.canonical_bytes()
    assert rb.manifest["system_prompt"] == "Be brief."
    assert rb.short_digest == bundle.digest[7:19]
    assert rb.render(q="hi").to_openai() == bundle.render(q="hi").to_openai()
    mismatch = ResolvedBundle(b"{}", name=None, version=None, env=None)
    assert mismatch.digest.startswith("sha256:")  # computed from the bytes when not given


def test_the_full_bundle_is_built_once_with_its_slot() -> None:
    rb = resolved(Bundle.from_dict(minimal()))
    full = rb.bundle
    assert full is rb.bundle  # built on first use, then kept
    assert (full.name, full.version) == ("chat", 3)
    assert rb.model.id == "gpt-4o-2024-08-06"  # other attributes come from the Bundle
    anonymous = ResolvedBundle(Bundle.from_dict(minimal()).canonical_bytes(), name=None,
                               version=None, env=None)
    assert anonymous.bundle.name is None
    with pytest.raises(AttributeError):
        rb.__no_such_dunder__  # noqa: B018 -- dunders never reach the Bundle
    with pytest.raises(AttributeError):
        rb.no_such_field  # noqa: B018
    assert copy.copy(rb) == rb and pickle.loads(pickle.dumps(rb)) == rb


def test_cache_state_and_repr() -> None:
    bundle = Bundle.from_dict(minimal())
    live = resolved(bundle)
    assert live.served_from_cache is False and live.stale_seconds is None
    assert repr(live) == f"<ResolvedBundle chat@3 in production {bundle.digest[7:19]}>"
    cached = resolved(bundle, cache_age=42.4)
    assert cached.served_from_cache is True and cached.stale_seconds == 42.4
    assert repr(cached) == (f"<ResolvedBundle chat@3 in production {bundle.digest[7:19]}, "
                            "cached 42s>")
    loose = ResolvedBundle(bundle.canonical_bytes(), name=None, version=None, env=None)
    assert repr(loose) == f"<ResolvedBundle bundle {bundle.digest[7:19]}>"


def test_the_full_bundle_says_it_came_from_the_cache() -> None:
    from llmreg.bundle.resolved import ResolvedBundle

    body = (b'{"kind":"llm","model":{"id":"gpt-4o-2024-08-06","provider":"openai"},'
            b'"schema":"llmreg.bundle/v1","template":{"source":"Hi"}}')
    cached = ResolvedBundle(body, name="chat", version=3, env="production", cache_age=42.0)
    assert (cached.bundle.served_from_cache, cached.bundle.stale_seconds) == (True, 42.0)
    live = ResolvedBundle(body, name="chat", version=3, env="production")
    assert (live.bundle.served_from_cache, live.bundle.stale_seconds) == (False, None)
