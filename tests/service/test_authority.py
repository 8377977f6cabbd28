"""Teams' authority in the service: a new name is claimed by its team, acting on a name
needs the role in the team that owns it (inside the write's transaction: a refusal
changes nothing), approvals count per the policy's groups, the policy's ``by`` narrows
who moves, owner changes are guarded, heartbeats come from the owning team's tokens."""

from __future__ import annotations

import pytest

from llmreg.bundle.schema import Bundle
from llmreg.errors import InvalidRefError, PermissionDeniedError
from llmreg.policy import Policy, parse_policy
from llmreg.service import RegistryService
from llmreg.types import Actor
from tests.conftest import minimal
from tests.service.conftest import on_each_database

svc = pytest.fixture(on_each_database, name="svc")

ADMIN = Actor("ada", teams={"*": "admin"})
SEARCH_CI = Actor("search-ci", teams={"*": "reader", "search": "publisher"})
SUPPORT_CI = Actor("support-ci", teams={"*": "reader", "support": "publisher"})
BOTH_CI = Actor("both-ci", teams={"*": "reader", "search": "publisher",
                                  "support": "publisher"})
SEARCH_LEAD = Actor("sam", teams={"*": "reader", "search": "approver"})
SEARCH_LEAD2 = Actor("sue", teams={"*": "reader", "search": "approver"})
SUPPORT_LEAD = Actor("bo", teams={"*": "reader", "support": "approver"})
SRE = Actor("sri", teams={"*": "reader", "sre": "approver"})
UNSCOPED = Actor("old-ci", teams={"*": "publisher"})


def bundle(i: int) -> Bundle:
    return Bundle.from_dict(minimal(template={"source": f"v{i} {{{{ q }}}}",
                                              "variables": ["q"]}))


def register(svc: RegistryService, actor: Actor, i: int = 1, *, name: str = "chat",
             team: str | None = None) -> str:
    r = svc.versions.register(bundle(i), name=name, message=f"v{i}", author=actor.name,
                              actor=actor, team=team)
    return r.version.ref


def audit_size(svc: RegistryService) -> int:
    return len(svc.audit.entries())


# --- claiming a new name ------------------------------------------------------------------

def test_a_new_name_is_claimed_by_the_registering_tokens_team(svc: RegistryService) -> None:
    register(svc, SEARCH_CI)
    owner = svc.owners.get("chat")
    assert owner is not None and (owner.team, owner.contacts) == ("search", [])
    [entry] = [e for e in svc.audit.entries() if e.action == "owner"]
    assert entry.detail["from"] is None and entry.detail["to"] == {"team": "search",
                                                                    "contacts": []}


def test_a_token_in_several_teams_names_the_team_and_is_refused_without(
        svc: RegistryService) -> None:
    before = audit_size(svc)
    with pytest.raises(InvalidRefError, match=r"^both-ci is publisher in teams search, support; "
                                              r"say which one owns the new name chat with "
                                              r"--team \(e\.g\. --team search\)$"):
        register(svc, BOTH_CI)
    assert audit_size(svc) == before and svc.versions.names_page().items == []
    register(svc, BOTH_CI, team="support")
    assert svc.owners.get("chat").team == "support"  # type: ignore[union-attr]


def test_a_team_the_token_does_not_publish_for_cannot_claim(svc: RegistryService) -> None:
    with pytest.raises(PermissionDeniedError, match=r"^search-ci may not claim chat for team "
                                                    r"support: it is publisher in team search "
                                                    r"and reader elsewhere"):
        register(svc, SEARCH_CI, team="support")
    assert svc.versions.names_page().items == []


@pytest.mark.parametrize("actor", [ADMIN, UNSCOPED, Actor("ana")])
def test_registry_wide_publishers_leave_a_new_name_unowned_or_name_any_team(
        svc: RegistryService, actor: Actor) -> None:
    register(svc, actor, name="open")
    assert svc.owners.get("open") is None
    register(svc, actor, name="given", team="billing")
    assert svc.owners.get("given").team == "billing"  # type: ignore[union-attr]


def test_team_on_an_existing_name_is_refused(svc: RegistryService) -> None:
    register(svc, SEARCH_CI)
    with pytest.raises(InvalidRefError, match=r"^--team 'billing': chat is already owned by "
                                              r"team search; --team claims only a new name"):
        register(svc, SEARCH_CI, 2, team="billing")


# --- acting on an owned name --------------------------------------------------------------

def refused(actor: Actor, need: str = "publisher") -> str:
    return (rf"^chat is owned by team search; {actor.name} is .*, and this needs {need} in "
            r"team search \(or an admin\)")


def test_another_teams_publisher_cannot_register_attach_deprecate_or_archive(
        svc: RegistryService) -> None:
    one = register(svc, SEARCH_CI)
    two = register(svc, SEARCH_CI, 2)
    before = audit_size(svc)
    for act in (lambda: register(svc, SUPPORT_CI, 3),
                lambda: svc.evidence.attach(one, type="eval", suite="regression",
                                            metrics={"accuracy": 0.99}, actor=SUPPORT_CI),
                lambda: svc.lifecycle.deprecate(two, actor=SUPPORT_CI, reason="x"),
                lambda: svc.lifecycle.archive(two, actor=SUPPORT_CI, reason="x"),
                lambda: svc.lifecycle.promote(one, "staging", actor=SUPPORT_CI, reason="x")):
        with pytest.raises(PermissionDeniedError, match=refused(SUPPORT_CI)):
            act()
    assert audit_size(svc) == before  # nothing written, not even the policy note
    assert [v.version for v in svc.versions.history("chat")] == [1, 2]
    assert svc.evidence.of_digest(svc.versions.resolve(one).digest) == []
    # the owning team, a registry-wide publisher and an admin may
    svc.evidence.attach(one, type="eval", suite="regression", metrics={"accuracy": 0.99},
                        actor=SEARCH_CI)
    svc.lifecycle.promote(one, "staging", actor=UNSCOPED, reason="ok")
    svc.lifecycle.deprecate(two, actor=ADMIN, reason="superseded")


def test_an_unowned_name_is_open_to_any_publisher(svc: RegistryService) -> None:
    register(svc, UNSCOPED)
    assert svc.owners.get("chat") is None
    assert register(svc, SUPPORT_CI, 2) == "chat@2"  # no owner: as before teams
    with pytest.raises(PermissionDeniedError, match=r"^chat has no owner, and rae is reader "
                                                    r"in team search and reader elsewhere; "
                                                    r"this needs publisher in some team$"):
        svc.lifecycle.deprecate("chat@1", actor=Actor(
            "rae", teams={"*": "reader", "search": "reader"}), reason="x")


def test_rollback_needs_the_policys_rollback_role_in_the_owning_team(
        svc: RegistryService) -> None:
    one, two = register(svc, SEARCH_CI), register(svc, SEARCH_CI, 2)
    svc.lifecycle.promote(one, "staging", actor=SEARCH_CI, reason="first")
    svc.lifecycle.promote(two, "staging", actor=SEARCH_CI, reason="second")
    with pytest.raises(PermissionDeniedError, match=refused(SUPPORT_LEAD) +
                       r" \(the policy's rollback\.role\)$"):
        svc.lifecycle.rollback("chat", "staging", actor=SUPPORT_LEAD, reason="x")
    assert svc.slots.status("chat", "staging")[0].version == 2
    event = svc.lifecycle.rollback("chat", "staging", actor=SEARCH_CI, reason="bad answers")
    assert event.to_version == 1


# --- whose approvals count ----------------------------------------------------------------

def ready(svc: RegistryService, policy_yaml: str | None = None) -> str:
    """chat@1 by search-ci, in staging, with a passing eval: only approvals are missing."""
    if policy_yaml is not None:
        svc.policy = parse_policy(policy_yaml, source="test")
        for part in (svc.lifecycle, svc.approvals, svc.evidence):
            part.policy = svc.policy
    one = register(svc, SEARCH_CI)
    svc.lifecycle.promote(one, "staging", actor=SEARCH_CI, reason="try")
    svc.evidence.attach(one, type="eval", suite="regression", metrics={"accuracy": 0.95},
                        actor=SEARCH_CI)
    return one


def approvals_gate(svc: RegistryService, ref: str) -> tuple[bool, str]:
    [gate] = [r for r in svc.lifecycle.check_gates(ref, "production").results
              if r.gate == "approvals"]
    return gate.passed, gate.detail


def test_by_default_only_the_owning_teams_approvals_count(svc: RegistryService) -> None:
    one = ready(svc)
    svc.approvals.approve(one, "production", actor=SUPPORT_LEAD)  # recorded, not counted
    svc.approvals.approve(one, "production", actor=SEARCH_LEAD)
    passed, detail = approvals_gate(svc, one)
    assert not passed
    assert detail.startswith("1 of 2 approvals for production (sam); not counted: bo (in "
                             "team support; production needs approvals from team search)")
    with pytest.raises(Exception, match="1 of 2 approvals"):
        svc.lifecycle.promote(one, "production", actor=SEARCH_CI, reason="go")
    svc.approvals.approve(one, "production", actor=ADMIN)  # registry-wide: counts
    assert approvals_gate(svc, one)[0]
    svc.lifecycle.promote(one, "production", actor=SEARCH_CI, reason="go")




def policy_with(production_gate: dict[str, object], by: list[str] | None = None) -> str:
    import yaml

    data = Policy.written_by_init().canonical_dict()
    for t in data["transitions"]:
        if t["to"] == "production":
            t["gates"]["approvals"] = production_gate
            if by is not None:
                t["by"] = by
    return yaml.safe_dump(data)


def test_from_asks_for_shares_from_named_groups(svc: RegistryService) -> None:
    one = ready(svc, policy_with({"count": 3, "from": {"owner": 2, "sre": 1}}))
    for who in (SEARCH_LEAD, SEARCH_LEAD2, SUPPORT_LEAD):
        svc.approvals.approve(one, "production", actor=who)
    passed, detail = approvals_gate(svc, one)
    assert not passed
    assert detail.startswith("2 of 3 approvals for production (sam, sue); needs 1 more from "
                             "team sre; not counted: bo (in team support; production needs "
                             "approvals from team sre or team search)")
    svc.approvals.approve(one, "production", actor=SRE)
    assert approvals_gate(svc, one) == (True, "3 of 3 approvals (sam, sri, sue); not counted: "
                                              "bo (in team support; production needs "
                                              "approvals from team sre or team search)")


def test_a_member_of_two_groups_fills_only_one_share(svc: RegistryService) -> None:
    one = ready(svc, policy_with({"count": 2, "from": {"owner": 1, "sre": 1}}))
    both = Actor("max", teams={"*": "reader", "search": "approver", "sre": "approver"})
    svc.approvals.approve(one, "production", actor=both)
    passed, detail = approvals_gate(svc, one)
    assert not passed and "needs 1 more from team search" in detail


def test_by_lets_only_the_named_team_move(svc: RegistryService) -> None:
    one = ready(svc, policy_with({"count": 1}, by=["release"]))
    svc.approvals.approve(one, "production", actor=SEARCH_LEAD)
    before = audit_size(svc)
    with pytest.raises(PermissionDeniedError, match=r"^the policy lets only team release move "
                                                    r"chat staging -> production; search-ci is "
                                                    r"publisher in team search and reader "
                                                    r"elsewhere$"):
        svc.lifecycle.promote(one, "production", actor=SEARCH_CI, reason="go")
    with pytest.raises(PermissionDeniedError):
        svc.lifecycle.promote(one, "production", actor=UNSCOPED, reason="go")
    assert audit_size(svc) == before
    release = Actor("rae", teams={"*": "reader", "release": "publisher"})
    svc.lifecycle.promote(one, "production", actor=release, reason="release train")
    assert svc.slots.status("chat", "production")[0].version == 1


def test_policy_check_describes_who_moves_and_whose_approvals_count() -> None:
    policy = parse_policy(policy_with({"count": 3, "from": {"owner": 2, "sre": 1}},
                                      by=["release", "owner"]), source="t")
    line = [x for x in policy.describe() if x.startswith("staging -> production")][0]
    assert line.endswith("3 approvals (role approver) by distinct people, not the author, "
                         "1 from team sre, 2 from the owning team; moved only by team "
                         "release, the owning team")


@pytest.mark.parametrize(("gate", "message"), [
    ({"count": 2, "from": {"owner": 2, "sre": 1}},
     "asks for 3 approvals from its groups, more than count (2)"),
    ({"count": 2, "from": {"bad:team": 1}}, "'bad:team' is not 'owner' or a team's name"),
    ({"count": 2, "from": {"sre": 0}}, "0 approvals from sre; give 1 to 20"),
])
def test_a_bad_from_is_refused_naming_the_field(gate: dict[str, object], message: str) -> None:
    from llmreg.errors import PolicyError

    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_policy(policy_with(gate), source="t")


# --- owner changes ------------------------------------------------------------------------

def test_only_the_owning_team_or_an_admin_changes_the_owner(svc: RegistryService) -> None:
    register(svc, SEARCH_CI)
    before = audit_size(svc)
    with pytest.raises(PermissionDeniedError, match=refused(SUPPORT_CI)):
        svc.owners.set("chat", team="support", contacts=["s@example.com"], actor=SUPPORT_CI)
    assert svc.owners.get("chat").team == "search" and audit_size(svc) == before  # type: ignore[union-attr]
    svc.owners.set("chat", team="search", contacts=["search@example.com"], actor=SEARCH_CI)
    svc.owners.set("chat", team="support", contacts=["s@example.com"], actor=ADMIN)
    entry = svc.audit.entries()[-1]
    assert (entry.action, entry.detail["from"], entry.detail["to"]) == (
        "owner", {"team": "search", "contacts": ["search@example.com"]},
        {"team": "support", "contacts": ["s@example.com"]})
    with pytest.raises(PermissionDeniedError):  # search no longer owns it
        register(svc, SEARCH_CI, 2)


def test_an_unowned_name_is_claimed_only_for_a_team_of_the_caller(
        svc: RegistryService) -> None:
    register(svc, UNSCOPED)
    with pytest.raises(PermissionDeniedError, match=r"^support-ci may not claim chat for team "
                                                    r"search"):
        svc.owners.set("chat", team="search", contacts=["x@example.com"], actor=SUPPORT_CI)
    svc.owners.set("chat", team="support", contacts=["x@example.com"], actor=SUPPORT_CI)


# --- heartbeats ---------------------------------------------------------------------------

def test_a_teams_token_reports_traffic_only_for_its_teams_names(svc: RegistryService) -> None:
    one = register(svc, SEARCH_CI)
    digest = svc.versions.resolve(one).digest
    beat = {"name": "chat", "env": "production", "digest": digest, "count": 3}
    support_app = Actor("support-app", token_id="0123456789ab",
                        teams={"*": "reader", "support": "reader"})
    with pytest.raises(PermissionDeniedError, match=r"^beats\[0\]: chat is owned by team "
                                                    r"search; token 0123456789ab \(support-app"
                                                    r"\) serves the names of team support "
                                                    r"only; .*; nothing was recorded$"):
        svc.access.record_heartbeats([beat], actor=support_app)
    assert svc.access.heartbeats("chat") == []
    search_app = Actor("search-app", token_id="0123456789ac",
                       teams={"*": "reader", "search": "reader"})
    assert svc.access.record_heartbeats([beat], actor=search_app) == 1
    assert svc.access.record_heartbeats([beat], actor=Actor("anonymous", teams={"*": "reader"})
                                        ) == 1  # unscoped and open reads: as before


def test_a_policy_change_that_widens_authority_is_audited_as_such(
        svc: RegistryService) -> None:
    one = ready(svc, policy_with({"count": 3, "from": {"owner": 2, "sre": 1}},
                                 by=["release"]))
    ready_policy = svc.policy
    wider = parse_policy(policy_with({"count": 1}), source="t")
    for part in (svc.lifecycle, svc.approvals, svc.evidence):
        part.policy = wider
    svc.policy = wider
    svc.approvals.approve(one, "production", actor=SEARCH_LEAD)  # notes the new policy
    entry = [e for e in svc.audit.entries() if e.action == "policy"][-1]
    assert (entry.detail["from"], entry.detail["to"]) == (ready_policy.digest, wider.digest)
    assert entry.detail["widens"] == [
        "staging -> production: approvals 3 -> 1",
        "staging -> production: approvals from owner 2 -> 0",
        "staging -> production: approvals from sre 1 -> 0",
        "staging -> production: approvals from any member of the owning team",
        "staging -> production: any publisher of the owning team may move it (was release)",
        "shadow -> production: approvals 3 -> 1",
        "shadow -> production: approvals from owner 2 -> 0",
        "shadow -> production: approvals from sre 1 -> 0",
        "shadow -> production: approvals from any member of the owning team",
        "shadow -> production: any publisher of the owning team may move it (was release)"]
    assert entry.summary().startswith("widens authority: staging -> production: approvals "
                                      "3 -> 1; ")
