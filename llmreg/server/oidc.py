"""OIDC ID tokens as bearer tokens: CI without a stored secret.

A CI job (GitHub Actions, GitLab CI, …) asks its platform for an ID token with this
registry as the audience and sends it as ``Authorization: Bearer <jwt>``. The server
accepts it only from an issuer named in ``LLMREG_OIDC_ISSUERS``, verified with PyJWT:

- the signature, against the issuer's JWKS (found through its
  ``/.well-known/openid-configuration``), with an asymmetric algorithm only (``none``
  and HMAC, which an attacker could "sign" with the public key, are refused);
- ``iss`` (the configured issuer), ``aud`` (``LLMREG_OIDC_AUDIENCE``), ``exp``, ``iat``
  and, when present, ``nbf`` (30 s of clock skew allowed).

The JWKS is cached per issuer for :data:`JWKS_TTL`; a token with a key id the cache
does not know refetches it at most once per :data:`REFETCH_EVERY`, so unknown key ids
cannot make the server hammer the issuer. Each fetch has a deadline and a size cap.

The policy's ``identities`` map the verified claims to a subject, a registry-wide role
and a role per team (:class:`llmreg.policy.IdentityRule`); a token no rule maps is
refused. The actor carries the workload (issuer, subject, repository, workflow, run),
which the audit log and the registered version's provenance record.

Example:
    >>> looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    True
    >>> looks_like_jwt("llmreg_0123456789ab_secret")
    False
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from llmreg.errors import shown
from llmreg.policy import Policy
from llmreg.types import ROLES, Actor, roles_of

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
              "ES512", "EdDSA")
JWKS_TTL = 600.0  # seconds a fetched JWKS is trusted
REFETCH_EVERY = 60.0  # at most one refetch per issuer this often, for an unknown key id
FETCH_TIMEOUT = 5.0  # seconds for one discovery or JWKS request
MAX_DOCUMENT = 256 * 1024  # bytes of a discovery document or a JWKS
LEEWAY = 30  # seconds of clock skew allowed on exp, iat and nbf
WORKLOAD_CLAIMS = ("repository", "workflow", "job_workflow_ref", "run_id", "ref",
                   "project_path", "pipeline_id")  # GitHub's and GitLab's names
_JWT_RE = re.compile(r"^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*$")

Fetch = Callable[[str], bytes]


def looks_like_jwt(token: str) -> bool:
    """Whether a bearer token has a JWT's shape (three base64url parts)."""
    return len(token) <= 16_384 and _JWT_RE.fullmatch(token) is not None


def fetch_json(url: str) -> bytes:
    """GET ``url`` with :data:`FETCH_TIMEOUT` and at most :data:`MAX_DOCUMENT` bytes."""
    import httpx

    with httpx.Client(timeout=FETCH_TIMEOUT, follow_redirects=False) as http, \
            http.stream("GET", url, headers={"accept": "application/json"}) as answer:
        if answer.status_code != 200:
            raise ValueError(f"{url} answered HTTP {answer.status_code}")
        body = b""
        for chunk in answer.iter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT:
                raise ValueError(f"{url} sent more than {MAX_DOCUMENT} bytes")
        return body


@dataclass
class _Keys:
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> PyJWK
    fetched: float = float("-inf")  # time.monotonic() of the last fetch


class OIDCVerifier:
    """Verify ID tokens of the configured issuers and map them through the policy.

    Example:
        >>> v = OIDCVerifier(("https://token.actions.githubusercontent.com",), "llmreg")
        >>> v.identify("not.a.jwt", Policy.default())[:34]
        'the bearer token is not a JWT this'
    """

    def __init__(self, issuers: tuple[str, ...], audience: str, *,
                 fetch: Fetch = fetch_json) -> None:
        self.issuers = issuers
        self.audience = audience
        self._fetch = fetch
        self._keys: dict[str, _Keys] = {}
        self._lock = threading.Lock()

    def identify(self, token: str, policy: Policy) -> Actor | str:
        """The actor an ID token stands for, or the one-line reason it is refused."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return ("the bearer token is not a JWT this registry can read; send an llmreg "
                    "token or your CI's OIDC ID token")
        issuer = str(unverified.get("iss", "")).rstrip("/")
        if issuer not in self.issuers:
            return (f"ID tokens of issuer {shown(issuer, 120)} are not accepted here; the "
                    "server's LLMREG_OIDC_ISSUERS names "
                    + (", ".join(self.issuers) or "none"))
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            return (f"ID token algorithm {shown(alg)} is refused; only asymmetric "
                    f"signatures are accepted ({', '.join(ALGORITHMS[:3])}, …)")
        try:
            key = self._key(issuer, header.get("kid"))
        except LookupError as exc:
            return str(exc)
        try:
            claims = jwt.decode(token, key=key.key, algorithms=[alg],
                                audience=self.audience, issuer=unverified.get("iss"),
                                leeway=LEEWAY,
                                options={"require": ["exp", "iat", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            return f"the ID token from {issuer} has expired; ask your CI for a fresh one"
        except jwt.InvalidAudienceError:
            return (f"the ID token is for audience {shown(unverified.get('aud'), 80)}, not "
                    f"{self.audience!r}; request it with that audience")
        except jwt.ImmatureSignatureError:
            return "the ID token is not valid yet (nbf/iat in the future)"
        except jwt.PyJWTError as exc:
            return f"the ID token from {issuer} is refused: {exc}"
        return self._map(claims, issuer, policy)

    def _key(self, issuer: str, kid: Any) -> Any:
        """The issuer's key ``kid``: from the cache, else one bounded refetch."""
        import jwt

        now = time.monotonic()
        with self._lock:
            entry = self._keys.setdefault(issuer, _Keys())
            stale = now - entry.fetched > JWKS_TTL
            unknown = kid not in entry.keys and now - entry.fetched > REFETCH_EVERY
            if stale or unknown:
                entry.fetched = now
                try:
                    config = json.loads(self._fetch(
                        f"{issuer}/.well-known/openid-configuration"))
                    jwks = json.loads(self._fetch(str(config["jwks_uri"])))
                    keys: dict[str, Any] = {}
                    for data in jwks.get("keys", [])[:100]:
                        try:
                            keys[str(data.get("kid"))] = jwt.PyJWK(data)
                        except jwt.PyJWTError:
                            continue  # a key of a kind PyJWT cannot use
                    entry.keys = keys
                except (ValueError, KeyError, TypeError, OSError) as exc:
                    if not entry.keys:
                        raise LookupError(f"the keys of issuer {issuer} could not be fetched "
                                          f"({str(exc)[:200]}); try again shortly") from None
            found = entry.keys.get(str(kid))
        if found is None:
            raise LookupError(f"issuer {issuer} has no key {shown(kid, 80)}; the token was "
                              "not signed by it")
        return found

    @staticmethod
    def _map(claims: Mapping[str, Any], issuer: str, policy: Policy) -> Actor | str:
        for rule in policy.identities:
            if rule.issuer.rstrip("/") == issuer and rule.matches(
                    {**claims, "iss": rule.issuer}):
                teams: dict[str, str] = {"*": rule.role, **rule.teams}
                roles = frozenset().union(*(roles_of(r) for r in teams.values() if r in ROLES))
                workload = {"issuer": issuer, "subject": str(claims.get("sub", ""))[:256]}
                workload |= {c: str(claims[c])[:256] for c in WORKLOAD_CLAIMS if c in claims}
                return Actor(rule.subject_of(claims)[:255], roles, teams=teams,
                             expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
                             workload=workload)
        repo = claims.get("repository") or claims.get("project_path") or claims.get("sub")
        return (f"no identity rule of the policy maps this ID token (issuer {issuer}, "
                f"{shown(repo, 120)}); add one under `identities:` (docs/teams.md)")
