"""The policy file: the default flow, validation with line numbers, aliases, digests."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmreg.errors import PolicyError, UnknownEnvironmentError
from llmreg.policy import DEFAULT_POLICY_YAML, Policy, find_policy, load_policy, parse_policy


def test_default_policy_is_the_documented_flow() -> None:
    p = Policy.default()
    assert list(p.environments) == ["staging", "shadow", "production"]
    assert p.describe() == [
        "registered -> staging: no gates",
        "staging -> shadow: 1 approval (role approver) by distinct people, not the author, "
        "from the owning team",
        "staging -> production: eval 'regression' with accuracy >= 0.9; 2 approvals (role "
        "approver) by distinct people, not the author, from the owning team",
        "shadow -> production: eval 'regression' with accuracy >= 0.9; shadow metrics with "
        "error_rate <= 0.01; 2 approvals (role approver) by distinct people, not the author, "
        "from the owning team",
    ]


@pytest.mark.parametrize(("alias", "env"), [("pre-prod", "staging"), ("preprod", "staging"),
                                            ("prod", "production"), ("shadow", "shadow")])
def test_aliases(alias: str, env: str) -> None:
    assert Policy.default().canonical_env(alias) == env


def test_unknown_environment_lists_the_real_ones() -> None:
    with pytest.raises(UnknownEnvironmentError,
                       match=r"'qa' is not in the policy; use one of staging \(pre-prod, preprod\)"
                             r", shadow, production \(prod\)"):
        Policy.default().canonical_env("qa")


def test_digest_ignores_comments_and_layout() -> None:
    reformatted = "\n".join(line for line in DEFAULT_POLICY_YAML.splitlines()
                            if not line.lstrip().startswith("#"))
    assert parse_policy(reformatted, source="x").digest == Policy.written_by_init().digest
    stricter = DEFAULT_POLICY_YAML.replace("min: 0.9", "min: 0.95")
    assert parse_policy(stricter, source="x").digest != Policy.written_by_init().digest
    # Without a policy file, the same policy minus require_owner is in force.
    assert Policy.written_by_init().require_owner and not Policy.default().require_owner


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("accuracy: {min: 0.9}", "accuracy: {mn: 0.9}",
         r"x.yaml line 29: transitions\[2\]\.gates\.evals\[0\]\.metrics\.accuracy\.mn: unknown"),
        ("to: shadow\n", "to: qa\n", r"line 19: transitions\[1\]\.to: 'qa' is not an environment"),
        ("approvals: {count: 1}", "approvals: {count: 0}",
         r"line 21: transitions\[1\]\.gates\.approvals\.count: Input should be greater"),
        ("  shadow: {}", "  shadow: {aliases: [prod]}",
         r"line 11: environments\.production\.aliases: alias 'prod' of 'production' is already"),
        ("version: 1", "version: 2", r"line 3: version: Input should be 1"),
        ("accuracy: {min: 0.9}", "accuracy: {}", r"give min, max or no_regression"),
        ("environments:", "environments: [", r"line \d+: not valid YAML"),
        ("accuracy: {min: 0.9}", "accuracy: {min: 0.9, max: 0.5}",
         r"line 29: transitions\[2\]\.gates\.evals\[0\]\.metrics\.accuracy: min 0\.9 is "
         r"above max 0\.5"),
        ("  shadow: {}", "  registered: {}",
         r"line 9: environments\.registered: environment 'registered' is not allowed"),
        ("  - from: registered\n", "  - from: qa\n",
         r"line 15: transitions\[0\]\.from: 'qa' is not 'registered' or an environment"),
        ("  - from: staging\n    to: shadow\n", "  - from: registered\n    to: staging\n",
         r"line 18: transitions\[1\]: repeats the transition registered -> staging"),
    ],
)
def test_errors_name_line_and_field(old: str, new: str, expected: str) -> None:
    with pytest.raises(PolicyError, match=expected):
        parse_policy(DEFAULT_POLICY_YAML.replace(old, new, 1), source="x.yaml")


def test_find_policy_prefers_explicit_then_beside_then_default(tmp_path: Path) -> None:
    home = tmp_path / ".llmreg"
    assert find_policy(None, home) == Policy.default()
    (tmp_path / "llmreg-policy.yaml").write_text(
        DEFAULT_POLICY_YAML.replace("min: 0.9", "min: 0.8"))
    assert find_policy(None, home).transitions[2].gates.evals[0].metrics["accuracy"].min == 0.8
    other = tmp_path / "other.yaml"
    other.write_text(DEFAULT_POLICY_YAML.replace("min: 0.9", "min: 0.7"))
    assert find_policy(other, home).transitions[2].gates.evals[0].metrics["accuracy"].min == 0.7
    with pytest.raises(PolicyError, match="cannot read policy"):
        load_policy(tmp_path / "missing.yaml")


def test_a_list_is_not_a_policy() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy("- 1\n- 2\n", source="x.yaml")
    assert str(caught.value) == ("x.yaml: the policy must be a mapping with version, "
                                 "environments and transitions")


def test_describe_no_regression_with_tolerance_and_max() -> None:
    new = "accuracy: {no_regression: true, tolerance: 0.01}\n            latency_ms: {max: 250}"
    policy = parse_policy(DEFAULT_POLICY_YAML.replace("accuracy: {min: 0.9}", new, 1),
                          source="x.yaml")
    assert policy.describe()[2] == (
        "staging -> production: eval 'regression' with accuracy no regression vs the target "
        "slot (tolerance 0.01), latency_ms <= 250; 2 approvals (role approver) by distinct "
        "people, not the author, from the owning team")


# --- describing thresholds and gates ---------------------------------------------------


@pytest.mark.parametrize(("spec", "text"), [
    ({"min": 0.9}, "accuracy >= 0.9"),
    ({"max": 0.25}, "accuracy <= 0.25"),
    ({"min": 0.5, "max": 1}, "accuracy >= 0.5 and accuracy <= 1"),
    ({"no_regression": True}, "accuracy no regression vs the target slot"),
    ({"no_regression": True, "tolerance": 0.02},
     "accuracy no regression vs the target slot (tolerance 0.02)"),
    ({"min": 0.5, "no_regression": True, "tolerance": 0.5},
     "accuracy >= 0.5 and accuracy no regression vs the target slot (tolerance 0.5)"),
])
def test_threshold_describe(spec: dict[str, object], text: str) -> None:
    from llmreg.policy import Threshold

    assert Threshold.model_validate(spec).describe("accuracy") == text


def test_describe_lists_every_metric_and_the_approval_rule() -> None:
    from llmreg.policy import Gates, describe_gates

    gates = Gates.model_validate({
        "evals": [{"suite": "regression", "metrics": {"accuracy": {"min": 0.9},
                                                      "f1": {"min": 0.5}}}],
        "shadow_metrics": {"error_rate": {"max": 0.01}, "p95_ms": {"max": 800}},
        "approvals": {"count": 1, "not_author": False, "role": "release"},
    })
    assert describe_gates(gates) == (
        "eval 'regression' with accuracy >= 0.9, f1 >= 0.5; shadow metrics with "
        "error_rate <= 0.01, p95_ms <= 800; 1 approval (role release) by distinct people, "
        "from the owning team")
    assert describe_gates(Gates()) == ""


# --- the digest and the canonical form ------------------------------------------------


def test_the_default_policys_digest_is_pinned() -> None:
    # Every promotion records this digest: a change to the default policy or to the
    # canonical form must be deliberate.
    p = Policy.default()
    assert p.digest == "sha256:711c581eac01d1245b56dda99fe44ce5ca7f44732309b94e6c9d8d38f1235d9d"
    assert p.canonical_dict()["transitions"][1] == {
        "from": "staging", "to": "shadow",
        "gates": {"evals": [], "shadow_metrics": {}, "approvals": {
            "count": 1, "role": "approver", "not_author": True}}}


# --- queries on the flow -------------------------------------------------------------


def test_transitions_and_environments() -> None:
    p = Policy.default()
    assert p.is_environment("prod") and p.is_environment("staging")
    assert not p.is_environment("qa") and not p.is_environment("registered")
    found = p.transition("shadow", "production")
    assert found is not None and (found.from_, found.to) == ("shadow", "production")
    assert found.gates.shadow_metrics
    assert p.transition("registered", "production") is None
    assert p.transition("production", "staging") is None
    assert [t.to for t in p.transitions_from("registered")] == ["staging"]
    assert [t.from_ for t in p.transitions_to("production")] == ["staging", "shadow"]
    assert p.transitions_to("registered") == []


# --- errors: exact lines and messages ----------------------------------------------------


@pytest.mark.parametrize(("old", "new", "message"), [
    ("  - from: registered", "  - from: 5",
     "x.yaml line 15: transitions[0].from: Input should be a valid string"),
    ("  - from: staging\n    to: shadow", "  - from: qa\n    to: shadow",
     "x.yaml line 18: transitions[1].from: 'qa' is not 'registered' or an environment "
     "(staging, shadow, production)"),
    ("version: 1\n", "",
     "x.yaml line 5: version: Field required"),
    ("environments:", "environments: [",
     "x.yaml line 8: not valid YAML, does not parse (expected ',' or ']', but got ':')"),
    ("  shadow: {}", "  shadow: {}\n  registered: {}",
     "x.yaml line 10: environments.registered: environment 'registered' is not allowed; use "
     "lowercase letters, digits, '-' or '_', and none of registered, deprecated, archived"),
    ("  - from: shadow\n    to: production", "  - from: staging\n    to: production",
     "x.yaml line 32: transitions[3]: repeats the transition staging -> production"),
])
def test_error_messages_are_exact(old: str, new: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(DEFAULT_POLICY_YAML.replace(old, new, 1), source="x.yaml")
    assert str(info.value).startswith(message)


def test_a_yaml_error_without_a_position() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy("version: \x07", source="x.yaml")
    assert str(info.value).startswith(
        "x.yaml: not valid YAML, does not parse (unacceptable character #x0007")


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_a_policy_must_be_a_mapping(text: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="x.yaml")
    assert str(info.value) == ("x.yaml: the policy must be a mapping with version, "
                               "environments and transitions")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(PolicyError) as info:
        load_policy(missing)
    assert str(info.value) == f"cannot read policy {str(missing)!r}: No such file or directory"
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT_POLICY_YAML.replace("version: 1", "version: 2"), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(bad)
    assert str(info.value) == f"{bad} line 3: version: Input should be 1"
    good = tmp_path / "good.yaml"
    good.write_text(DEFAULT_POLICY_YAML.replace("shadow: {}", "shadow: {description: 'déjà'}"),
                    encoding="utf-8")
    assert load_policy(good).environments["shadow"].description == "déjà"


# --- the kinds of gate, declared once ---------------------------------------------------

# One transition asking for a gate of every kind (a new kind adds its setting here).
EVERY_KIND = {
    "evals": [{"suite": "regression", "metrics": {"accuracy": {"min": 0.9}}},
              {"suite": "safety", "metrics": {"refusals": {"max": 0.1}}}],
    "shadow_metrics": {"error_rate": {"max": 0.01}},
    "approvals": {"count": 2},
}


def test_every_gates_field_is_a_declared_kind_with_a_name_and_words() -> None:
    from llmreg.policy import GATE_KINDS, Gates

    assert [k.key for k in GATE_KINDS] == list(Gates.model_fields) == list(EVERY_KIND)
    gates = Gates.model_validate(EVERY_KIND)
    for kind in GATE_KINDS:
        settings = kind.of(gates)
        assert settings, f"{kind.key}: a set gate must be found"
        assert kind.of(Gates()) == [], f"{kind.key}: an unset gate must ask for nothing"
        for setting in settings:
            assert kind.label(setting) and kind.describe(setting)
    assert gates.names() == ["eval:regression", "eval:safety", "shadow-metrics", "approvals"]
    assert [k.key for k, _ in gates.each()] == ["evals", "evals", "shadow_metrics",
                                                "approvals"]
    assert Gates().names() == [] and Gates().each() == []


def test_each_kind_bounds_only_the_evidence_it_judges() -> None:
    from llmreg.policy import APPROVALS, EVALS, SHADOW_METRICS, Gates

    gates = Gates.model_validate(EVERY_KIND)
    regression = gates.evals[0]
    assert list(EVALS.bounds(regression, "eval", "regression")) == ["accuracy"]
    assert EVALS.bounds(regression, "eval", "safety") == {}
    assert EVALS.bounds(regression, "shadow-metrics", "regression") == {}
    assert list(SHADOW_METRICS.bounds(gates.shadow_metrics, "shadow-metrics", "live")) == [
        "error_rate"]
    assert SHADOW_METRICS.bounds(gates.shadow_metrics, "eval", "regression") == {}
    assert gates.approvals is not None
    assert APPROVALS.bounds(gates.approvals, "eval", "regression") == {}
