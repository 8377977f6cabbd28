"""The promotion policy: environments, transitions and their gates.

A policy is ``llmreg-policy.yaml``, kept beside the application's registry
integration and versioned with it; ``llmreg init`` writes :data:`DEFAULT_POLICY_YAML`.
Validation errors name the file, the line and the field. The policy's digest is the
SHA-256 of its canonical JSON (comments and formatting do not count), and every
promotion records the digest of the policy that allowed it.

Example:
    >>> policy = Policy.default()
    >>> policy.canonical_env("pre-prod")
    'staging'
    >>> [t.to for t in policy.transitions_from("staging")]
    ['shadow', 'production']

The kinds of gate a transition can ask for (``evals``, ``shadow_metrics``,
``approvals``) are declared once, in :data:`GATE_KINDS`: the policy's description, the
gates an import records as bypassed and the web page read them from there, and the judge
(:mod:`llmreg.service.lifecycle.gates`) has one function per kind. Adding a kind is a
field of :class:`Gates`, its :class:`GateKind` here, and its judge.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from llmreg.bundle.digest import canonical_json, digest_bytes
from llmreg.errors import LLMRegError, PolicyError, UnknownEnvironmentError, shown
from llmreg.types import OWNER_GROUP, TEAM_RE

POLICY_FILENAME = "llmreg-policy.yaml"
REGISTERED = "registered"
DEPRECATED = "deprecated"
ARCHIVED = "archived"
RESERVED = (REGISTERED, DEPRECATED, ARCHIVED)
_ENV_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

DEFAULT_POLICY_YAML = """\
# llmreg promotion policy. Keep it beside your app's registry integration, in git.
# `llmreg policy check` validates it and prints the flow it defines.
version: 1

# The only environments that exist. Unknown names are rejected, never created.
environments:
  staging:
    aliases: [pre-prod, preprod]
  shadow: {}
  production:
    aliases: [prod]

# Allowed moves. `from` is a version's status: registered, or an environment.
transitions:
  - from: registered
    to: staging

  - from: staging
    to: shadow
    gates:
      approvals: {count: 1}

  - from: staging
    to: production
    gates:
      evals:
        - suite: regression
          metrics:
            accuracy: {min: 0.9}
      approvals: {count: 2, not_author: true}

  - from: shadow
    to: production
    gates:
      evals:
        - suite: regression
          metrics:
            accuracy: {min: 0.9}
      shadow_metrics:
        error_rate: {max: 0.01}
      approvals: {count: 2, not_author: true}

# Floating model ids (gpt-4o, *-latest) are refused unless this is true.
models:
  allow_floating: false

# A name's first version leaves `registered` only once the name has an owner
# (`llmreg owner set NAME --team … --contact …`).
require_owner: true

# `llmreg rollback NAME --env E [--to @N]` returns a slot to a version it held
# before. Who may (the role), and whether that version must meet the gates into
# the environment again (gates: true) or returns on its record (gates: false).
rollback:
  role: publisher
  gates: false

# What `llmreg deprecation run` (and `llmreg serve`, on schedule) does by itself:
# archive versions older than the last `keep_last` that no environment holds, and
# alert the owner when a production slot has served nothing for
# `stale_production_days` (reminded every `remind_every_days`).
# Add `deprecate_after_days: N` to deprecate versions N days after they left
# their last environment (they are then archived only once deprecated).
# Rollback targets are never archived: the last `keep_rollback` versions each
# environment held, and every version that left an environment less than
# `archive_grace_days` ago (or was restored that recently), stay.
deprecation:
  keep_last: 10
  keep_rollback: 2
  archive_grace_days: 14
  stale_production_days: 30
  remind_every_days: 7

# How often the jobs run inside `llmreg serve` and `llmreg jobs run`
# (s, m, h or d; "continuous" runs on every tick of the scheduler).
jobs:
  deprecation: 1h
  alerts: 1h
  deliveries: continuous

# Webhooks (`llmreg webhook add`) may only reach public hosts; name here the hosts on
# your own network (a relay, 127.0.0.1 in a test) that may receive them anyway.
webhooks:
  allow_hosts: []
  max_attempts: 16
"""


class _FieldError(ValueError):
    """A cross-field policy error that knows which field it is about."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Threshold(_P):
    """A metric bound: ``min`` / ``max``, and/or no regression against the target slot."""

    min: float | None = None
    max: float | None = None
    no_regression: bool = False
    tolerance: float = Field(0.0, ge=0)
    higher_is_better: bool = True

    @model_validator(mode="after")
    def _something(self) -> Threshold:
        if self.min is None and self.max is None and not self.no_regression:
            raise ValueError("give min, max or no_regression: true")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def describe(self, metric: str) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"{metric} >= {self.min:g}")
        if self.max is not None:
            parts.append(f"{metric} <= {self.max:g}")
        if self.no_regression:
            tol = f" (tolerance {self.tolerance:g})" if self.tolerance else ""
            parts.append(f"{metric} no regression vs the target slot{tol}")
        return " and ".join(parts)


class EvalGate(_P):
    """A passing eval of ``suite``, attached to the exact digest, meeting ``metrics``."""

    suite: str = Field(min_length=1, max_length=128)
    metrics: dict[str, Threshold] = Field(min_length=1)


class ApprovalGate(_P):
    """``count`` approvals by distinct people with ``role``; the author's never counts.

    Whose approvals count: ``from`` maps a group to how many of the ``count`` must come
    from it, a group being ``owner`` (the team that owns the name) or a team's name
    (``{owner: 2, sre: 1}``). Without ``from``, every approval must come from someone
    holding ``role`` for the owning team (registry-wide approvers and admins included).
    With ``from``, an approval counts if it counts for one of its groups.
    """

    count: int = Field(ge=1, le=20)
    role: str = "approver"
    not_author: bool = True
    from_: dict[str, int] = Field({}, alias="from", max_length=10)

    @model_validator(mode="after")
    def _groups(self) -> ApprovalGate:
        for group, n in self.from_.items():
            if group != OWNER_GROUP and not TEAM_RE.fullmatch(group):
                raise _FieldError(("from", group),
                    f"{shown(group)} is not {OWNER_GROUP!r} or a team's name (letters, "
                    "digits, spaces, '.', '_', '/', '-')")
            if not 1 <= n <= 20:
                raise _FieldError(("from", group), f"{n} approvals from {group}; give 1 to 20")
        if sum(self.from_.values()) > self.count:
            raise _FieldError(("from",),
                f"asks for {sum(self.from_.values())} approvals from its groups, more than "
                f"count ({self.count}); raise count or lower a group's number")
        return self

    def groups(self) -> list[tuple[str, int]]:
        """``from`` as (group, approvals), named teams before ``owner`` (the order they
        are filled in: a member of a named team fills it before the owner's share)."""
        return sorted(self.from_.items(), key=lambda item: item[0] == OWNER_GROUP)


class Gates(_P):
    """What a transition asks for. Every field is a kind declared in :data:`GATE_KINDS`."""

    evals: list[EvalGate] = []
    shadow_metrics: dict[str, Threshold] = {}
    approvals: ApprovalGate | None = None

    def each(self) -> list[tuple[GateKind[Any], Any]]:
        """Every gate asked for, as (its kind, its setting), in the order of
        :data:`GATE_KINDS` (the order gates are judged, described and reported in)."""
        return [(kind, gate) for kind in GATE_KINDS for gate in kind.of(self)]

    def names(self) -> list[str]:
        """The name each gate is reported under, e.g. ``['eval:regression', 'approvals']``."""
        return [kind.label(gate) for kind, gate in self.each()]


G = TypeVar("G")


@dataclass(frozen=True)
class GateKind(Generic[G]):
    """A kind of gate: the key under a transition's ``gates:`` and, for each gate of the
    kind (a setting ``G``), its report name, its words and the metric bounds it sets.

    Its judge is the function registered under :attr:`key` in
    :data:`llmreg.service.lifecycle.gates.JUDGES` (the judge refuses a kind without one).

    Example:
        >>> [k.key for k in GATE_KINDS]
        ['evals', 'shadow_metrics', 'approvals']
        >>> Policy.default().transitions[2].gates.names()
        ['eval:regression', 'approvals']
    """

    key: str
    #: The gates of this kind a transition's :class:`Gates` asks for (none when unset).
    of: Callable[[Gates], list[G]]
    #: The name the gate is reported and recorded under (``GateResult.gate``).
    label: Callable[[G], str]
    #: The gate in words, for ``llmreg policy check`` (:meth:`Policy.describe`).
    describe: Callable[[G], str]
    #: The bounds the gate sets on the metrics of evidence of (type, suite); the web
    #: page shows them beside each metric.
    bounds: Callable[[G, str, str], Mapping[str, Threshold]]


def _bounds_text(metrics: Mapping[str, Threshold]) -> str:
    return ", ".join(th.describe(m) for m, th in metrics.items())


def describe_approvals(a: ApprovalGate, owner: str | None = None) -> str:
    """An approvals gate in words; ``owner``: the owning team's name, where one is known.

    Example:
        >>> describe_approvals(ApprovalGate(count=2, **{"from": {"owner": 1, "sre": 1}}),
        ...                    "search")[-35:]
        '1 from team sre, 1 from team search'
    """
    owning = f"team {owner}" if owner else "the owning team"
    who = " by distinct people" + (", not the author" if a.not_author else "")
    shares = ", ".join(f"{n} from {owning if g == OWNER_GROUP else 'team ' + g}"
                       for g, n in a.groups())
    where = f", {shares}" if shares else f", from {owning}"
    return f"{a.count} approval{'s' if a.count > 1 else ''} (role {a.role}){who}{where}"


EVALS: GateKind[EvalGate] = GateKind(
    key="evals",
    of=lambda gates: list(gates.evals),
    label=lambda ev: f"eval:{ev.suite}",
    describe=lambda ev: f"eval '{ev.suite}' with {_bounds_text(ev.metrics)}",
    bounds=lambda ev, type_, suite: ev.metrics if (type_, suite) == ("eval", ev.suite)
    else {})
SHADOW_METRICS: GateKind[dict[str, Threshold]] = GateKind(
    key="shadow_metrics",
    of=lambda gates: [gates.shadow_metrics] if gates.shadow_metrics else [],
    label=lambda metrics: "shadow-metrics",
    describe=lambda metrics: f"shadow metrics with {_bounds_text(metrics)}",
    bounds=lambda metrics, type_, suite: metrics if type_ == "shadow-metrics" else {})
APPROVALS: GateKind[ApprovalGate] = GateKind(
    key="approvals",
    of=lambda gates: [gates.approvals] if gates.approvals is not None else [],
    label=lambda approvals: "approvals",
    describe=describe_approvals,
    bounds=lambda approvals, type_, suite: {})

#: Every kind of gate, in the order gates are judged, described and reported.
GATE_KINDS: tuple[GateKind[Any], ...] = (EVALS, SHADOW_METRICS, APPROVALS)


class Transition(_P):
    from_: str = Field(alias="from")
    to: str
    gates: Gates = Gates()
    # The teams whose publishers may perform this move (``owner``: the owning team);
    # empty: whoever publishes for the owning team. An admin always may.
    by: list[str] = Field([], max_length=20)

    @field_validator("by")
    @classmethod
    def _teams(cls, by: list[str]) -> list[str]:
        for team in by:
            if team != OWNER_GROUP and not TEAM_RE.fullmatch(team):
                raise ValueError(f"{shown(team)} is not {OWNER_GROUP!r} or a team's name")
        return by


class Environment(_P):
    aliases: list[str] = []
    description: str = ""


class ModelRules(_P):
    allow_floating: bool = False


class Rollback(_P):
    """Who may roll a slot back, and whether the target must meet the gates again."""

    role: Literal["publisher", "approver", "admin"] = "publisher"
    # False: a version the slot held before returns without new evidence (the reason is
    # recorded). True: it must meet, now, the gates of a transition into the environment.
    gates: bool = False


class Deprecation(_P):
    """What the deprecation job does (see docs/policy.md)."""

    keep_last: int = Field(10, ge=1)
    keep_rollback: int = Field(2, ge=0)  # per environment: the versions it held last
    archive_grace_days: int = Field(14, ge=0)  # since a version left an environment
    stale_production_days: int = Field(30, ge=1)
    remind_every_days: int = Field(7, ge=1)
    deprecate_after_days: int | None = Field(None, ge=1)

    @field_validator("keep_last", mode="before")
    @classmethod
    def _keep_at_least_one(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError(f"keep_last {value} must be 1 or more (the newest versions "
                             "are never archived); set it to 1 or above")
        return value


_DURATION_RE = re.compile(r"^(\d{1,6})(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> float:
    """Seconds of a job period: ``"90s"``, ``"15m"``, ``"1h"``, ``"1d"``; ``"continuous"``
    is 0.

    Example:
        >>> duration_seconds("2h"), duration_seconds("continuous")
        (7200.0, 0.0)
    """
    if text == "continuous":
        return 0.0
    match = _DURATION_RE.fullmatch(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"period {shown(text)} is not like 30s, 15m, 1h, 1d or 'continuous'")
    return float(int(match.group(1)) * _UNIT_S[match.group(2)])


class JobPeriods(_P):
    """How often each scheduled job runs (``continuous``: on every scheduler tick)."""

    deprecation: str = "1h"
    alerts: str = "1h"
    deliveries: str = "continuous"

    @field_validator("deprecation", "alerts", "deliveries")
    @classmethod
    def _period(cls, value: str) -> str:
        duration_seconds(value)
        return value

    def seconds(self) -> dict[str, float]:
        """Each job's period in seconds (0 = continuous)."""
        return {job: duration_seconds(getattr(self, job)) for job in type(self).model_fields}


_CLAIM_RE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_PLACEHOLDER_RE = re.compile(r"\{([a-z_][a-z0-9_]{0,63})\}")


class IdentityRule(_P):
    """How an OIDC ID token (a CI job's workload identity) becomes a registry identity:
    tokens of ``issuer`` whose ``claims`` all match (shell patterns, e.g.
    ``repository: acme/search-*``) act as ``subject`` (``{claim}`` placeholders filled
    from the token) with ``role`` registry-wide and a role in each of ``teams``. The
    first rule that matches wins; a token no rule matches is refused."""

    issuer: str = Field(min_length=1, max_length=512)
    claims: dict[str, str] = Field(default_factory=dict, max_length=20)
    subject: str = Field("{sub}", min_length=1, max_length=256)
    role: Literal["reader", "publisher", "approver"] = "reader"
    teams: dict[str, Literal["reader", "publisher", "approver"]] = Field(
        default_factory=dict, max_length=32)

    @model_validator(mode="after")
    def _checked(self) -> IdentityRule:
        for claim, pattern in self.claims.items():
            if not _CLAIM_RE.fullmatch(claim):
                raise _FieldError(("claims", claim), f"{shown(claim)} is not a claim name "
                                  "(lowercase letters, digits and '_')")
            if not 1 <= len(pattern) <= 512:
                raise _FieldError(("claims", claim), "a pattern has 1 to 512 characters")
        for team in self.teams:
            if not TEAM_RE.fullmatch(team) or team == OWNER_GROUP:
                raise _FieldError(("teams", team), f"{shown(team)} is not a team's name")
        for placeholder in _PLACEHOLDER_RE.findall(self.subject):
            if not _CLAIM_RE.fullmatch(placeholder):  # pragma: no cover - the regex says so
                raise _FieldError(("subject",), f"{{{placeholder}}} is not a claim")
        return self

    def matches(self, claims: Mapping[str, Any]) -> bool:
        """Whether an ID token with ``claims`` (already verified) is this rule's.

        Example:
            >>> rule = IdentityRule(issuer="https://token.actions.githubusercontent.com",
            ...                     claims={"repository": "acme/search-*"})
            >>> rule.matches({"iss": "https://token.actions.githubusercontent.com",
            ...               "repository": "acme/search-rag"})
            True
        """
        import fnmatch

        if claims.get("iss") != self.issuer:
            return False
        return all(isinstance(claims.get(c), str) and fnmatch.fnmatchcase(claims[c], p)
                   for c, p in self.claims.items())

    def subject_of(self, claims: Mapping[str, Any]) -> str:
        """``subject`` with each ``{claim}`` replaced by the token's value ('' if absent).

        Example:
            >>> IdentityRule(issuer="x", subject="ci:{repository}").subject_of(
            ...     {"repository": "acme/search-rag"})
            'ci:acme/search-rag'
        """
        return _PLACEHOLDER_RE.sub(lambda m: str(claims.get(m.group(1), ""))[:128],
                                   self.subject)


class Webhooks(_P):
    """Webhook delivery: which hosts may be private, and how many attempts a delivery gets."""

    # Hosts (as written in a webhook URL: a name or an address literal) that may resolve
    # to loopback, private or link-local addresses; every other host must be public.
    allow_hosts: list[str] = Field(default_factory=list, max_length=100)
    max_attempts: int = Field(16, ge=1, le=50)


class Policy(_P):
    """A validated policy. Build it with :func:`load_policy` or :meth:`Policy.default`."""

    version: Literal[1]
    environments: dict[str, Environment] = Field(min_length=1)
    transitions: list[Transition] = Field(min_length=1)
    models: ModelRules = ModelRules()
    require_owner: bool = False
    rollback: Rollback = Rollback()
    deprecation: Deprecation = Deprecation()
    jobs: JobPeriods = JobPeriods()
    webhooks: Webhooks = Webhooks()
    # OIDC workload identities (the issuers themselves are named in the settings:
    # LLMREG_OIDC_ISSUERS): which tokens act as whom (docs/teams.md).
    identities: list[IdentityRule] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        names = list(self.environments)
        for env in names:
            if not _ENV_RE.fullmatch(env) or env in RESERVED:
                raise _FieldError(("environments", env),
                    f"environment {shown(env)} is not allowed; use lowercase letters, digits, '-' "
                    f"or '_', and none of {', '.join(RESERVED)}")
        seen: dict[str, str] = {}
        for env, spec in self.environments.items():
            for alias in spec.aliases:
                if alias in self.environments or alias in RESERVED or alias in seen:
                    raise _FieldError(("environments", env, "aliases"),
                                      f"alias {shown(alias)} of {shown(env)} is already a name")
                seen[alias] = env
        pairs = set()
        for i, t in enumerate(self.transitions):
            if t.from_ not in (REGISTERED, *names):
                raise _FieldError(("transitions", i, "from"),
                    f"{shown(t.from_)} is not {REGISTERED!r} or an environment "
                    f"({', '.join(names)})")
            if t.to not in names:
                raise _FieldError(("transitions", i, "to"),
                    f"{shown(t.to)} is not an environment ({', '.join(names)})")
            if (t.from_, t.to) in pairs:
                raise _FieldError(("transitions", i),
                                  f"repeats the transition {t.from_} -> {t.to}")
            pairs.add((t.from_, t.to))
        return self

    @classmethod
    def default(cls) -> Policy:
        """The policy in force where there is no policy file: the one ``llmreg init``
        writes, except ``require_owner`` (a registry without a policy file is a sandbox;
        :meth:`written_by_init` is the file itself)."""
        return cls.written_by_init().model_copy(update={"require_owner": False})

    @classmethod
    def written_by_init(cls) -> Policy:
        """The policy ``llmreg init`` writes (:data:`DEFAULT_POLICY_YAML`): parsed once
        per process (every registry opened without a policy file needs it), a deep copy
        each call."""
        return _built_in().model_copy(deep=True)

    def canonical_dict(self) -> dict[str, Any]:
        """The policy as canonical JSON hashes it. ``by`` and an approvals gate's
        ``from`` are left out when empty, so a policy written before teams keeps its
        digest."""
        out = self.model_dump(mode="json", by_alias=True)
        if not out["identities"]:
            del out["identities"]
        for t in out["transitions"]:
            if not t["by"]:
                del t["by"]
            if t["gates"]["approvals"] is not None and not t["gates"]["approvals"]["from"]:
                del t["gates"]["approvals"]["from"]
        return out

    @property
    def digest(self) -> str:
        """``sha256:`` of the canonical JSON: comments and layout do not change it."""
        return digest_bytes(canonical_json(self.canonical_dict()))

    def environment_names(self) -> str:
        """``staging (pre-prod, preprod), shadow, production (prod)`` for messages."""
        return ", ".join(
            env + (f" ({', '.join(spec.aliases)})" if spec.aliases else "")
            for env, spec in self.environments.items())

    def canonical_env(self, name: str) -> str:
        """Map an environment name or alias to its canonical name, or raise listing them."""
        if name in self.environments:
            return name
        for env, spec in self.environments.items():
            if name in spec.aliases:
                return env
        import difflib

        known = [*self.environments, *(a for s in self.environments.values() for a in s.aliases)]
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean {shown(close[0])}? " if close else ""
        raise UnknownEnvironmentError(
            f"environment {shown(name)} is not in the policy; {hint}use one of "
            f"{self.environment_names()}")

    def is_environment(self, name: str) -> bool:
        try:
            self.canonical_env(name)
        except UnknownEnvironmentError:
            return False
        return True

    def transition(self, from_status: str, to_env: str) -> Transition | None:
        for t in self.transitions:
            if t.from_ == from_status and t.to == to_env:
                return t
        return None

    def transitions_from(self, status: str) -> list[Transition]:
        return [t for t in self.transitions if t.from_ == status]

    def transitions_to(self, env: str) -> list[Transition]:
        return [t for t in self.transitions if t.to == env]

    def describe(self) -> list[str]:
        """The promotion flow, one line per transition, for ``llmreg policy check``."""
        lines = []
        for t in self.transitions:
            gates = describe_gates(t.gates)
            movers = ", ".join("the owning team" if b == OWNER_GROUP else f"team {b}"
                               for b in t.by)
            by = f"; moved only by {movers}" if t.by else ""
            lines.append(f"{t.from_} -> {t.to}: {gates or 'no gates'}{by}")
        for rule in self.identities:
            claims = ", ".join(f"{c}={p}" for c, p in rule.claims.items()) or "any"
            teams = "; ".join(f"{t}: {r}" for t, r in rule.teams.items())
            grants = f"{teams}; {rule.role} elsewhere" if teams else f"{rule.role} everywhere"
            lines.append(f"identity: ID tokens of {rule.issuer} with {claims} act as "
                         f"{rule.subject} ({grants})")
        return lines


def widens(old: Policy, new: Policy) -> list[str]:
    """How ``new`` gives more authority than ``old``, one line each (empty: it does not):
    a new transition, fewer or looser approvals, more teams that may move, a lower
    rollback role, new or changed identity rules. The audit entry of a policy change
    records them.

    Example:
        >>> new = Policy.default().model_copy(update={"rollback": Rollback(role="publisher")})
        >>> strict = Policy.default().model_copy(update={"rollback": Rollback(role="admin")})
        >>> widens(strict, new)
        ['rollback.role: admin -> publisher']
        >>> widens(new, strict)
        []
    """
    from llmreg.types import ROLES

    out: list[str] = []
    before = {(t.from_, t.to): t for t in old.transitions}
    for t in new.transitions:
        move = f"{t.from_} -> {t.to}"
        was = before.get((t.from_, t.to))
        if was is None:
            out.append(f"{move}: a new transition")
            continue
        a, b = was.gates.approvals, t.gates.approvals
        if a is not None and b is None:
            out.append(f"{move}: approvals are no longer required (were {a.count})")
        elif a is not None and b is not None:
            if b.count < a.count:
                out.append(f"{move}: approvals {a.count} -> {b.count}")
            if a.not_author and not b.not_author:
                out.append(f"{move}: the author's approval now counts")
            if a.role in ROLES and b.role in ROLES and ROLES.index(b.role) < ROLES.index(a.role):
                out.append(f"{move}: approvals by role {a.role} -> {b.role}")
            for group, n in a.from_.items():
                if b.from_.get(group, 0) < n:
                    out.append(f"{move}: approvals from {group} {n} -> {b.from_.get(group, 0)}")
            if a.from_ and not b.from_:
                out.append(f"{move}: approvals from any member of the owning team")
        if was.by and not t.by:
            out.append(f"{move}: any publisher of the owning team may move it (was "
                       f"{', '.join(was.by)})")
        elif was.by:
            added = [x for x in t.by if x not in was.by]
            if added:
                out.append(f"{move}: {', '.join(added)} may now move it")
    if ROLES.index(new.rollback.role) < ROLES.index(old.rollback.role):
        out.append(f"rollback.role: {old.rollback.role} -> {new.rollback.role}")
    if old.rollback.gates and not new.rollback.gates:
        out.append("rollback.gates: true -> false")
    known = [r.model_dump() for r in old.identities]
    for rule in new.identities:
        if rule.model_dump() not in known:
            grants = ", ".join(f"{t}:{r}" for t, r in rule.teams.items()) or rule.role
            out.append(f"identities: {rule.issuer} {rule.claims or 'any token'} -> "
                       f"{rule.subject} ({grants})")
    return out


def describe_gates(gates: Gates) -> str:
    """Every gate of a transition in words, each as its kind describes it."""
    return "; ".join(kind.describe(gate) for kind, gate in gates.each())


def parse_policy(text: str, *, source: str) -> Policy:
    """Validate policy YAML; errors name ``source``, the line and the field."""
    import yaml

    from llmreg.bundle.parse import load_yaml

    data = load_yaml(text, source, error=PolicyError)
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:  # pragma: no cover - load_yaml parsed it already
        raise PolicyError(f"{source}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the policy must be a mapping with version, environments "
                          "and transitions")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        from llmreg.bundle.schema import format_loc

        err = exc.errors()[0]
        original = (err.get("ctx") or {}).get("error")
        loc = original.loc if isinstance(original, _FieldError) else tuple(err["loc"])
        field = format_loc(tuple("from" if p == "from_" else p for p in loc)) or "policy"
        line = _line_of(node, loc)
        msg = str(original) if isinstance(original, LLMRegError) else err["msg"]
        msg = msg.removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling"
        raise PolicyError(f"{source} line {line}: {field}: {msg}") from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file.

    Example:
        >>> load_policy("llmreg-policy.yaml").digest  # doctest: +SKIP
        'sha256:…'
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy {shown(str(p))}: {exc.strerror}") from None
    return parse_policy(text, source=str(p))


def _line_of(node: Any, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest parent)."""
    import yaml

    current = node
    for part in loc:
        nxt = None
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if key.value == part or (part in ("from_", "from") and key.value == "from"):
                    nxt = value if not isinstance(part, str) or value is not None else key
                    break
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(current.value):
            nxt = current.value[part]
        if nxt is None:
            break
        current = nxt
    return int(current.start_mark.line) + 1 if current is not None else 1


def find_policy(explicit: Path | None, home: Path) -> Policy:
    """The policy in force: ``explicit`` (``LLMREG_POLICY``), else ``llmreg-policy.yaml``
    beside the registry folder, else the built-in default (the one ``init`` writes)."""
    if explicit is not None:
        return load_policy(explicit)
    beside = home.parent / POLICY_FILENAME
    if beside.is_file():
        return load_policy(beside)
    return Policy.default()


@functools.cache
def _built_in() -> Policy:
    return parse_policy(DEFAULT_POLICY_YAML, source="(built-in default)")
