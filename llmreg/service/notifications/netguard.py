"""The SSRF guard of webhook delivery: which addresses a webhook may reach.

A webhook URL is chosen by a registry admin but fetched by the server, from inside the
server's network, so a URL such as ``http://169.254.169.254/…`` or ``http://10.0.0.5/``
would make the registry a proxy into that network. The guard decides from the
*resolved* addresses, before any connection is opened:

- every address the host resolves to must be globally routable: loopback, private,
  link-local, shared (CGNAT), multicast, unspecified, the cloud metadata addresses and
  every range of IANA's special-purpose registries that is not globally reachable
  (:data:`SPECIAL`: IETF protocol assignments, benchmarking, documentation, reserved,
  site-local, unique local, …) are refused, in IPv4 and IPv6 alike, including IPv4
  addresses carried inside IPv6 (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, NAT64: judged
  by the IPv4 address; Teredo: always refused). The table is ours, not the standard
  library's ``is_global``, whose answer changes between Python versions; an IPv6
  address outside global unicast ``2000::/3`` is refused whatever the table says;
- unless the policy's ``webhooks.allow_hosts`` names the host exactly as written in the
  URL (a hostname or an address literal), for a receiver on your own network. Even
  then, an address in the metadata range (:func:`is_metadata`: link-local, and the
  cloud metadata addresses) is refused: no entry lets a name that now resolves there
  through;
- an IPv6 zone (``fe80::1%eth0``) names an interface, not another address: addresses are
  judged and compared without it, whoever answered them, and a URL whose literal carries
  one (``http://[fe80::1%25eth0]/``) is refused outright, since a zone only serves
  link-local addresses, which webhooks never reach.

The decision is made at ``webhook add`` and again at every delivery, and the delivery
connects to the very address that was checked (:attr:`Target.pinned_url`, with the
``Host`` header and TLS SNI set to the real host name), so a DNS answer that changes
between the check and the connection (DNS rebinding) cannot redirect it.

Example:
    >>> refusal(ipaddress.ip_address("10.1.2.3"))
    'a private address'
    >>> refusal(ipaddress.ip_address("::ffff:127.0.0.1"))
    'a loopback address'
    >>> refusal(ipaddress.ip_address("93.184.215.14")) is None
    True
    >>> check_url("http://10.0.0.7/hook", allow_hosts=()).host
    Traceback (most recent call last):
    ...
    llmreg.errors.InvalidWebhookError: url 'http://10.0.0.7/hook': host 10.0.0.7 is a ...
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from llmreg.errors import InvalidWebhookError, shown

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
MAX_URL = 2048

# Addresses that answer cloud instance-metadata requests, beyond the ranges the
# standard library already calls non-global (169.254.169.254 is link-local anyway).
METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean …
    "169.254.170.2",  # AWS ECS task metadata
    "fd00:ec2::254",  # AWS IMDS over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "168.63.129.16",  # Azure wire server (a public address)
    "192.0.0.192",  # Oracle Cloud (legacy)
    "fd00:ec2::23",  # AWS time sync over IPv6
    "fd00:ec2::253",  # AWS DNS over IPv6
))
# Where instance metadata lives besides those: IPv4 and IPv6 link-local.
METADATA_RANGES = tuple(ipaddress.ip_network(n) for n in ("169.254.0.0/16", "fe80::/10"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
# An authority that writes its host in brackets: "[" inside "]", then at most a ":port"
# (the port itself is judged by urlsplit's ``.port``).
_BRACKETED = re.compile(r"\[([^\[\]]*)\](?::.*)?")

# IANA's IPv4 and IPv6 special-purpose address registries (and the multicast ones): the
# ranges that are not globally reachable, each with what it is. The standard library is
# not asked: its tables differ between Python versions (3.11 calls fec0::1 and 192.0.0.8
# global). Ranges that carry an IPv4 address (::ffff:0:0/96, 64:ff9b::/96,
# 2002::/16, Teredo) are judged by that address first.
SPECIAL: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(net), kind) for net, kind in (
        ("0.0.0.0/32", "an unspecified"),
        ("0.0.0.0/8", "a this-network"),
        ("10.0.0.0/8", "a private"),
        ("100.64.0.0/10", "a shared (CGNAT)"),
        ("127.0.0.0/8", "a loopback"),
        ("169.254.0.0/16", "a link-local"),
        ("172.16.0.0/12", "a private"),
        ("192.0.0.0/24", "an IETF protocol assignment"),
        ("192.0.2.0/24", "a documentation"),
        ("192.88.99.0/24", "a 6to4 relay anycast"),
        ("192.168.0.0/16", "a private"),
        ("198.18.0.0/15", "a benchmarking"),
        ("198.51.100.0/24", "a documentation"),
        ("203.0.113.0/24", "a documentation"),
        ("224.0.0.0/4", "a multicast"),
        ("255.255.255.255/32", "a broadcast"),
        ("240.0.0.0/4", "a reserved"),
        ("::/128", "an unspecified"),
        ("::1/128", "a loopback"),
        ("64:ff9b:1::/48", "a local-use translation"),
        ("100::/64", "a discard-only"),
        ("100:0:0:1::/64", "a dummy"),
        ("2001::/23", "an IETF protocol assignment"),
        ("2001:db8::/32", "a documentation"),
        ("3fff::/20", "a documentation"),
        ("5f00::/16", "a segment routing"),
        ("fc00::/7", "a private (unique local)"),
        ("fe80::/10", "a link-local"),
        ("fec0::/10", "a site-local"),
        ("ff00::/8", "a multicast"),
    ))


def refusal(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be a webhook's address, or None when it may.

    Example:
        >>> refusal(ipaddress.ip_address("169.254.169.254"))
        'a cloud metadata address'
        >>> refusal(ipaddress.ip_address("fd12::1"))
        'a private (unique local) address'
        >>> refusal(ipaddress.ip_address("2002:c000:8::1"))  # 6to4 of 192.0.0.8
        'an IETF protocol assignment address'
        >>> refusal(ipaddress.ip_address("fd00:ec2::254%eth0"))  # judged without its zone
        'a cloud metadata address'
    """
    ip = unzoned(ip)
    if ip in METADATA:
        return "a cloud metadata address"
    embedded, tunnel = _embedded(ip)
    if embedded is not None:
        why = refusal(embedded)
        if why is not None or not tunnel:
            return why  # a mapped, NAT64 or 6to4 address is judged by what it carries
    for net, kind in SPECIAL:
        if ip in net:
            return f"{kind} address"
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST:
        return "a reserved address"
    return None


def is_metadata(ip: IPAddress) -> bool:
    """Whether ``ip`` (or the IPv4 address it carries) is in the metadata range: a cloud
    metadata address or link-local. No ``allow_hosts`` entry lets a webhook reach it.

    Example:
        >>> is_metadata(ipaddress.ip_address("::ffff:169.254.169.254"))
        True
        >>> is_metadata(ipaddress.ip_address("10.0.0.1"))
        False
        >>> is_metadata(ipaddress.ip_address("fd00:ec2::254%eth0"))
        True
    """
    ip = unzoned(ip)
    embedded, _ = _embedded(ip)
    if embedded is not None:
        return is_metadata(embedded)
    return ip in METADATA or any(ip in net for net in METADATA_RANGES)


def unzoned(ip: IPAddress) -> IPAddress:
    """``ip`` without its IPv6 zone, if it has one. A zone (``%eth0``) picks the interface
    to reach an address by, it does not change the address, yet ``ipaddress`` counts it in
    equality and hashing: ``fd00:ec2::254%eth0`` is not in :data:`METADATA`. The guard
    therefore classifies and compares every address through this.

    Example:
        >>> unzoned(ipaddress.ip_address("fe80::1%eth0"))
        IPv6Address('fe80::1')
        >>> unzoned(ipaddress.ip_address("10.0.0.1"))
        IPv4Address('10.0.0.1')
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        return ipaddress.IPv6Address(int(ip))
    return ip


def _embedded(ip: IPAddress) -> tuple[ipaddress.IPv4Address | None, bool]:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64, Teredo), if any,
    and whether it is a Teredo tunnel (2001::/32, refused whatever its client: traffic
    goes through third-party relays, and no receiver needs it)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None, False
    if ip.teredo is not None:
        return ip.teredo[1], True
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, False
    if ip.sixtofour is not None:
        return ip.sixtofour, False
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), False
    return None, False


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: where to connect (a checked address) and what to call it.

    Example:
        >>> t = check_url("https://hooks.example.com:8443/x?y=1", allow_hosts=(),
        ...               resolver=lambda host, port: ["93.184.215.14"])
        >>> t.pinned_url, t.host_header, t.sni
        ('https://93.184.215.14:8443/x?y=1', 'hooks.example.com:8443', 'hooks.example.com')
    """

    url: str
    scheme: str
    host: str
    port: int
    path: str  # path and query, at least "/"
    address: str  # the checked address the connection goes to

    @property
    def pinned_url(self) -> str:
        """The URL with the host replaced by the checked address."""
        ip = ipaddress.ip_address(self.address)
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        default = {"http": 80, "https": 443}[self.scheme]
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{literal}{port}{self.path}"

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the host as the URL names it."""
        default = {"http": 80, "https": 443}[self.scheme]
        literal = f"[{self.host}]" if ":" in self.host else self.host
        return literal if self.port == default else f"{literal}:{self.port}"

    @property
    def sni(self) -> str | None:
        """The TLS server name (for https to a host name; None for an address literal)."""
        if self.scheme != "https" or _literal(self.host) is not None:
            return None
        return self.host


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver), in its order.

    Example:
        >>> system_resolver("127.0.0.1", 80)
        ['127.0.0.1']
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    out: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone index
        if address not in out:
            out.append(address)
    return out


def check_url(url: str, *, allow_hosts: Iterable[str],
              resolver: Resolver = system_resolver) -> Target:
    """Parse and check a webhook URL; return the :class:`Target` to connect to.

    Raises :class:`InvalidWebhookError` naming the field, the value and the fix when the
    URL is malformed (:func:`parse_url`), its host does not resolve, or any address it
    resolves to is refused by :func:`refusal` and the host is not in ``allow_hosts``.
    A resolver's answer is judged, and connected to, without its IPv6 zone.

    Example:
        >>> check_url("http://127.0.0.1:9000/hook", allow_hosts=["127.0.0.1"]).address
        '127.0.0.1'
        >>> check_url("ftp://example.com/", allow_hosts=())
        Traceback (most recent call last):
        ...
        llmreg.errors.InvalidWebhookError: url 'ftp://example.com/' is not an http(s) URL; ...
    """
    scheme, host, port, path = parse_url(url)
    allowed = host in {h.strip().lower().strip("[]") for h in allow_hosts}
    literal = _literal(host)
    addresses = [str(literal)] if literal is not None else list(resolver(host, port))
    if not addresses:
        raise InvalidWebhookError(f"url {shown(url)}: host {host!r} does not resolve; check "
                                  "the host name")
    checked: list[str] = []
    for raw in addresses:
        try:
            ip = unzoned(ipaddress.ip_address(raw))
        except ValueError:
            continue
        why = refusal(ip)
        if allowed and is_metadata(ip):
            raise InvalidWebhookError(
                f"url {shown(url)}: host {host} is {why} ({ip}), in the metadata range; "
                "webhooks never reach it, even for a host in webhooks.allow_hosts: point "
                "the host at the receiver's own address")
        if why is not None and not allowed:
            raise InvalidWebhookError(
                f"url {shown(url)}: host {host} is {why} ({ip}); webhooks may not reach it "
                f"unless the policy's webhooks.allow_hosts lists {host!r}")
        checked.append(str(ip))
    if not checked:
        raise InvalidWebhookError(f"url {shown(url)}: host {host!r} has no usable address")
    return Target(url=url, scheme=scheme, host=host, port=port, path=path, address=checked[0])


def parse_url(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of an http(s) URL, host lowercased and unbracketed.

    Raises :class:`InvalidWebhookError` (never a bare ``ValueError``) for a URL that is not
    http(s), carries credentials or a fragment, has an invalid port, or a malformed host:
    brackets must hold an IPv6 address, without a zone, and nothing but a port after.

    Example:
        >>> parse_url("HTTPS://Hooks.Example.com/a?b=1")
        ('https', 'hooks.example.com', 443, '/a?b=1')
        >>> parse_url("http://[FD00::1]:8080/x")
        ('http', 'fd00::1', 8080, '/x')
        >>> parse_url("http://[::1/")
        Traceback (most recent call last):
        ...
        llmreg.errors.InvalidWebhookError: url 'http://[::1/' has a malformed host; ...
    """
    if not isinstance(url, str) or len(url) > MAX_URL or any(c.isspace() for c in url):
        raise InvalidWebhookError(f"url {shown(str(url))} must be an http(s) URL of at most "
                                  f"{MAX_URL} characters, without spaces")
    malformed = InvalidWebhookError(
        f"url {shown(url)} has a malformed host; write a host name, an IPv4 address, or an "
        "IPv6 address in brackets such as https://[2001:db8::1]:8443/hook")
    try:  # unbalanced brackets, a bad bracketed host, an NFKC-hidden separator
        parts = urlsplit(url)
    except ValueError:
        raise malformed from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise InvalidWebhookError(f"url {shown(url)} is not an http(s) URL; give one such as "
                                  "https://hooks.example.com/llmreg")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookError(f"url {shown(url)} carries a user name or password; put "
                                  "credentials in the URL's path or query, or rely on the "
                                  "signature")
    if parts.fragment:
        raise InvalidWebhookError(f"url {shown(url)} has a #fragment; remove it")
    _check_brackets(url, parts.netloc, malformed)
    try:
        given = parts.port
    except ValueError:  # not a number, or out of range
        given = 0
    if given == 0:  # 0 is no port to connect to, not the default one
        raise InvalidWebhookError(f"url {shown(url)} has an invalid port; give one from 1 "
                                  "to 65535, or none for the scheme's default")
    port = given or (443 if scheme == "https" else 80)
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidWebhookError(f"url {shown(url)} has no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, path


def _check_brackets(url: str, netloc: str, malformed: InvalidWebhookError) -> None:
    """Refuse a bracketed host that is not a plain IPv6 address. urlsplit's own check
    differs between Python versions (older ones pass ``[not-ip]``; 3.11 still passes
    ``[::1]x``, ``[::1]]`` and IPvFuture ``[v1.x]``, whose host would then be resolved
    as a name); this one does not."""
    if "[" not in netloc and "]" not in netloc:
        return
    match = _BRACKETED.fullmatch(netloc)
    if match is None:
        raise malformed
    address, percent, zone = match.group(1).partition("%")
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        raise malformed from None
    if percent and not zone:
        raise malformed
    if percent:
        raise InvalidWebhookError(
            f"url {shown(url)} has an IPv6 zone (the % in its brackets); remove it: a zone "
            "only serves link-local addresses, which webhooks never reach")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


