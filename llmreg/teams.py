"""Teams: who may act on a name, from the roles a token holds per team and the team that
owns the name. Pure rules, shared by the service (which reads the owner in its
transaction: :mod:`llmreg.service.authority`), the server's pages and the CLI.

A token belongs to a subject and holds a role in each of its teams, plus a
registry-wide role under the team ``*`` (``reader`` for a scoped token; ``admin`` for a
registry admin). Roles are ordered, reader < publisher < approver < admin, and a role
holds every role below it. An :class:`~llmreg.types.Actor` carries them as ``teams``.

The rules, in full:

- **Acting on an owned name** (register a version, attach evidence, promote, roll back,
  deprecate, archive, set the owner, acknowledge its alerts) needs the role in the team
  that owns it, or registry-wide (team ``*``). An admin acts everywhere.
- **A name with no owner** (registered before teams, or by an unscoped token) is open to
  anyone holding the role in any team, as before teams.
- **A new name is claimed** by the registering token's team: its only team where it is a
  publisher, or the one it names with ``--team`` (a token in several teams must name
  one). A registry-wide publisher or an admin may name any team, or none (the name
  stays unowned until ``llmreg owner set``).
- **Reads** need no team: every token reads every name.
- **The embedded registry** (``Actor.teams`` None) trusts ``LLMREG_USER``: whoever can
  write the registry's files holds every role.
- The policy can narrow a move further: a transition's ``by`` names the teams that may
  perform it, and its approvals gate's ``from`` whose approvals count
  (:func:`counts_for`).

The rules are these few rank comparisons, so they are written here rather than in an
authorization library: casbin or cedarpy would need the tokens' teams and the owners
copied into their own stores on every request, and would not make them shorter.

Example:
    >>> from llmreg.types import Actor
    >>> bo = Actor("bo", teams={"*": "reader", "support": "publisher"})
    >>> refusal(bo, "search-rag", "support", "publisher") is None
    True
    >>> print(refusal(bo, "search-rag", "search", "publisher")[:71])
    search-rag is owned by team search; bo is publisher in team support and
"""

from __future__ import annotations

from collections.abc import Mapping

from llmreg.errors import InvalidRefError, PermissionDeniedError, shown
from llmreg.types import OWNER_GROUP as OWNER
from llmreg.types import ROLES, TEAM_RE, Actor

EVERYWHERE = "*"  # the team of a registry-wide role
TEAM_FIX = "use letters, digits, spaces, '.', '_', '/', '-' (at most 128), e.g. search-platform"
_RANK = {role: i for i, role in enumerate(ROLES)}


def check_team(team: str, field: str = "--team") -> str:
    """``team`` if it is a team name, else a one-line error naming ``field`` and the fix.

    Example:
        >>> check_team("search")
        'search'
        >>> check_team("search:publisher")
        Traceback (most recent call last):
        ...
        llmreg.errors.InvalidRefError: --team 'search:publisher' is not a team name; use ...
    """
    if not isinstance(team, str) or not TEAM_RE.fullmatch(team) or team == OWNER:
        raise InvalidRefError(f"{field} {shown(team, 80)} is not a team name; {TEAM_FIX}"
                              + (f" ({OWNER!r} is reserved)" if team == OWNER else ""))
    return team


def parse_teams(specs: list[str] | Mapping[str, str]) -> dict[str, str]:
    """Team memberships from ``TEAM:ROLE`` strings (or a mapping), checked.

    Example:
        >>> parse_teams(["search:publisher", "sre:approver"])
        {'search': 'publisher', 'sre': 'approver'}
        >>> parse_teams(["search"])
        Traceback (most recent call last):
        ...
        llmreg.errors.InvalidRefError: --team 'search' is not TEAM:ROLE; e.g. ...
    """
    pairs: list[tuple[str, str]] = []
    if isinstance(specs, Mapping):
        pairs = [(str(t), str(r)) for t, r in specs.items()]
    else:
        for spec in specs:
            team, sep, role = str(spec).partition(":")
            if not sep:
                raise InvalidRefError(f"--team {shown(spec, 80)} is not TEAM:ROLE; "
                                      "e.g. --team search:publisher")
            pairs.append((team.strip(), role.strip()))
    if len(pairs) > 32:
        raise InvalidRefError(f"{len(pairs)} teams; a token may be in at most 32")
    out: dict[str, str] = {}
    for team, role in pairs:
        check_team(team)
        if role not in ROLES or role == "admin":
            raise InvalidRefError(
                f"role {shown(role)} in team {team} is not one of reader, publisher, approver "
                "(admin is registry-wide: --role admin)")
        if team in out and out[team] != role:
            raise InvalidRefError(f"team {team} is given twice ({out[team]}, {role}); give "
                                  "one role per team")
        out[team] = role
    return out


def rank(role: str | None) -> int:
    """A role's place in reader < publisher < approver < admin (-1: no role)."""
    return _RANK.get(role or "", -1)


def role_on(actor: Actor, owner: str | None) -> str | None:
    """The highest role ``actor`` holds on a name owned by team ``owner`` (None: no owner).

    Example:
        >>> role_on(Actor("bo", teams={"*": "reader", "search": "approver"}), "search")
        'approver'
        >>> role_on(Actor("ana"), "search")  # embedded: trusted
        'admin'
    """
    if actor.teams is None:
        return "admin"
    held = [actor.teams.get(EVERYWHERE)]
    held += list(actor.teams.values()) if owner is None else [actor.teams.get(owner)]
    best = max(held, key=rank)
    return best if rank(best) >= 0 else None


def holds(actor: Actor, team: str, role: str) -> bool:
    """Whether ``actor`` holds ``role`` in ``team`` itself (a registry-wide role does not
    make one a member of a named team; an admin is one everywhere).

    Example:
        >>> holds(Actor("bo", teams={"*": "reader", "sre": "approver"}), "sre", "approver")
        True
    """
    if actor.teams is None:
        return True
    return (rank(actor.teams.get(team)) >= rank(role)
            or actor.teams.get(EVERYWHERE) == "admin")


def describe(actor: Actor) -> str:
    """``actor``'s memberships in words, for refusals.

    Example:
        >>> describe(Actor("bo", teams={"*": "reader", "support": "publisher"}))
        'publisher in team support and reader elsewhere'
    """
    if actor.teams is None:
        return "trusted (embedded)"
    named = [f"{role} in team {team}" for team, role in sorted(actor.teams.items())
             if team != EVERYWHERE]
    wide = actor.teams.get(EVERYWHERE)
    if wide is not None:
        named.append(f"{wide} {'elsewhere' if named else 'registry-wide'}")
    return " and ".join(named) or "in no team"


def refusal(actor: Actor, name: str, owner: str | None, role: str) -> str | None:
    """Why ``actor`` may not act with ``role`` on ``name`` (owned by ``owner``), or None.

    Example:
        >>> refusal(Actor("ana", teams={"*": "admin"}), "chat", "search", "publisher") is None
        True
    """
    if rank(role_on(actor, owner)) >= rank(role):
        return None
    if owner is None:
        return (f"{name} has no owner, and {actor.name} is {describe(actor)}; this needs "
                f"{role} in some team")
    return (f"{name} is owned by team {owner}; {actor.name} is {describe(actor)}, and this "
            f"needs {role} in team {owner} (or an admin)")


def may_move(actor: Actor, name: str, owner: str | None, by: list[str],
             move: str) -> str | None:
    """Why ``actor`` may not perform ``move`` (``staging -> production``) of ``name``, or
    None. ``by`` is the transition's list of teams whose publishers may (``owner``: the
    owning team, which registry-wide publishers stand in for); empty: whoever publishes
    for the owning team (:func:`refusal`). An admin always may.

    Example:
        >>> rel = Actor("rae", teams={"*": "reader", "release": "publisher"})
        >>> may_move(rel, "chat", "search", ["release"], "staging -> production") is None
        True
        >>> print(may_move(Actor("ci", teams={"*": "reader", "search": "publisher"}),
        ...                "chat", "search", ["release"], "staging -> production")[:66])
        the policy lets only team release move chat staging -> production;
    """
    if not by:
        return refusal(actor, name, owner, "publisher")
    if role_on(actor, owner) == "admin":
        return None
    for team in by:
        if team == OWNER and rank(role_on(actor, owner)) >= rank("publisher"):
            return None
        if team != OWNER and holds(actor, team, "publisher"):
            return None
    teams = ", ".join(f"team {owner or '(no owner)'}" if t == OWNER else f"team {t}" for t in by)
    return (f"the policy lets only {teams} move {name} {move}; {actor.name} is "
            f"{describe(actor)}")


def may_serve(actor: Actor, name: str, owner: str | None) -> str | None:
    """Why ``actor`` may not report traffic (heartbeats) for ``name``, or None. A token in
    teams serves the names its teams own (with any role) and names with no owner; an
    unscoped token, an admin and the embedded registry serve every name.

    Example:
        >>> app = Actor("chat-app", token_id="0123456789ab",
        ...             teams={"*": "reader", "search": "reader"})
        >>> may_serve(app, "search-rag", "search") is None
        True
        >>> may_serve(app, "billing-bot", "billing")[:45]
        'billing-bot is owned by team billing; token 0'
    """
    if actor.teams is None or owner is None or owner in actor.teams:
        return None
    named = sorted(t for t in actor.teams if t != EVERYWHERE)
    if not named or actor.teams.get(EVERYWHERE) == "admin":
        return None
    return (f"{name} is owned by team {owner}; token {actor.token_id} ({actor.name}) serves "
            f"the names of team {', '.join(named)} only; send its heartbeats with a token of "
            f"team {owner}")


def claim(actor: Actor, name: str, team: str | None) -> str | None:
    """The team that claims the new name ``name`` when ``actor`` registers it (``team``:
    the one asked for with ``--team``); None leaves it unowned.

    Example:
        >>> claim(Actor("ci", teams={"*": "reader", "search": "publisher"}), "rag", None)
        'search'
        >>> claim(Actor("ana", teams={"*": "admin"}), "rag", None) is None
        True
    """
    if team is not None:
        check_team(team)
        if rank(role_on(actor, team)) < rank("publisher"):
            raise PermissionDeniedError(
                f"{actor.name} may not claim {name} for team {team}: it is "
                f"{describe(actor)}, and claiming needs publisher in team {team}")
        return team
    if actor.teams is None or rank(actor.teams.get(EVERYWHERE)) >= rank("publisher"):
        return None
    mine = sorted(t for t, r in actor.teams.items()
                  if t != EVERYWHERE and rank(r) >= rank("publisher"))
    if len(mine) == 1:
        return mine[0]
    raise InvalidRefError(
        f"{actor.name} is publisher in teams {', '.join(mine)}; say which one owns the new "
        f"name {name} with --team (e.g. --team {mine[0]})" if mine else
        f"{actor.name} is {describe(actor)}; registering a new name needs publisher in a "
        "team")


def counts_for(actor_teams: Mapping[str, str] | None, group: str, owner: str | None,
               role: str) -> bool:
    """Whether an approval by someone with memberships ``actor_teams`` (as recorded with
    the approval; None: embedded, trusted) counts for ``group`` of a policy's ``from``:
    the word ``owner`` (the owning team, which registry-wide roles stand in for) or a
    team's name (its own members only).

    Example:
        >>> counts_for({"*": "reader", "sre": "approver"}, "sre", "search", "approver")
        True
        >>> counts_for({"*": "reader", "sre": "approver"}, "owner", "search", "approver")
        False
    """
    probe = Actor("approver", teams=dict(actor_teams) if actor_teams is not None else None)
    if group == OWNER:
        return rank(role_on(probe, owner)) >= rank(role)
    return holds(probe, group, role)
