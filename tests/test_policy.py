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
        "staging -> shadow: 1 approval (role approver) by distinct people, not the author",
        "staging -> production: eval 'regression' with accuracy >= 0.9; 2 approvals (role "
        "approver) by distinct people, not the author",
        "shadow -> production: eval 'regression' with accuracy >= 0.9; shadow metrics with "
        "error_rate <= 0.01; 2 approvals (role approver) by distinct people, not the author",
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
    assert parse_policy(reformatted, source="x").digest == Policy.default().digest
    stricter = DEFAULT_POLICY_YAML.replace("min: 0.9", "min: 0.95")
    assert parse_policy(stricter, source="x").digest != Policy.default().digest


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
        "people, not the author")
