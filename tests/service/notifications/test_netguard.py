"""The SSRF guard decides from literal addresses and a fake resolver: these tests never
open a connection (nothing here sends a packet anywhere)."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from llmreg.errors import InvalidWebhookError, shown
from llmreg.service.notifications.netguard import (
    MAX_URL,
    METADATA,
    SPECIAL,
    check_url,
    is_metadata,
    parse_url,
    refusal,
    system_resolver,
)

REFUSED = {
    "127.0.0.1": "loopback", "127.8.9.10": "loopback", "10.0.0.1": "private",
    "172.16.5.4": "private", "192.168.1.1": "private", "169.254.169.254": "cloud metadata",
    "169.254.10.10": "link-local", "0.0.0.0": "unspecified", "100.64.0.1": "shared (CGNAT)",
    "100.100.100.200": "cloud metadata", "168.63.129.16": "cloud metadata",
    "224.0.0.1": "multicast", "240.0.0.1": "reserved", "255.255.255.255": "broadcast",
    "192.0.2.1": "documentation", "198.18.0.1": "benchmarking",
    "::1": "loopback", "::": "unspecified", "fe80::1": "link-local",
    "fd00::1": "private (unique local)", "fc00::1": "private (unique local)",
    "fd00:ec2::254": "cloud metadata", "ff02::1": "multicast", "ff0e::1": "multicast",
    "2001:db8::1": "documentation", "4000::1": "reserved",
    "::ffff:127.0.0.1": "loopback", "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "cloud metadata", "2002:a00:1::": "private",  # 6to4 of 10.0.0.1
    "64:ff9b::7f00:1": "loopback",  # NAT64 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe": "private",  # Teredo, client 10.0.0.1
    # IETF-reserved and special-purpose ranges, each at its edges, in v4 and v6 forms.
    "0.0.0.1": "this-network", "0.255.255.255": "this-network",
    "100.127.255.254": "shared (CGNAT)", "100.63.255.255": None, "100.128.0.0": None,
    "192.0.0.0": "IETF protocol assignment", "192.0.0.8": "IETF protocol assignment",
    "192.0.0.9": "IETF protocol assignment", "192.0.0.170": "IETF protocol assignment",
    "192.0.0.255": "IETF protocol assignment", "192.0.1.0": None, "191.255.255.255": None,
    "192.0.0.192": "cloud metadata", "192.0.2.255": "documentation",
    "198.51.100.7": "documentation", "203.0.113.200": "documentation",
    "192.88.99.1": "6to4 relay anycast", "198.17.255.255": None,
    "198.19.255.255": "benchmarking", "198.20.0.0": None, "239.255.255.255": "multicast",
    "240.0.0.0": "reserved", "255.255.255.254": "reserved", "223.255.255.255": None,
    "172.31.255.255": "private", "172.32.0.0": None, "172.15.255.255": None,
    "fec0::1": "site-local", "feff:ffff::1": "site-local", "febf::1": "link-local",
    "fbff::1": "reserved", "fe00::1": "reserved",
    "2001:100::": "IETF protocol assignment", "2001:1ff:ffff::1": "IETF protocol assignment",
    "2001:200::1": None, "2001:4:112::1": "IETF protocol assignment",
    "2001:0:4136:e378:8000:63bf:a3d3:cba1": "IETF protocol assignment",  # Teredo, public
    "2001:db8:ffff::1": "documentation", "3fff:fff::1": "documentation", "3fff:1000::1": None,
    "5f00::1": "segment routing", "100::1": "discard-only", "100:0:0:1::1": "dummy",
    "64:ff9b:1::a00:1": "local-use translation", "1fff:ffff::1": "reserved",
    "64:ff9b::c000:8": "IETF protocol assignment",  # NAT64 of 192.0.0.8
    "64:ff9b::c612:1": "benchmarking", "64:ff9b::f000:1": "reserved",
    "64:ff9b::6440:1": "shared (CGNAT)", "64:ff9b::a9fe:a9fe": "cloud metadata",
    "2002:c000:8::1": "IETF protocol assignment",  # 6to4 of 192.0.0.8
    "2002:c0a8:101::": "private", "2002:c612:1::": "benchmarking",
    "2002:f000:1::": "reserved", "2002:a9fe:a9fe::": "cloud metadata",
    "2002:c000:2ff::": "documentation", "::ffff:192.0.0.8": "IETF protocol assignment",
    "::ffff:240.1.2.3": "reserved", "::ffff:0.0.0.0": "unspecified",
    "::a00:1": "reserved", "::808:808": "reserved",  # IPv4-compatible (deprecated)
    "fd00:ec2::23": "cloud metadata", "fd00:ec2::253": "cloud metadata",
}


@pytest.mark.parametrize(("address", "kind"), sorted(REFUSED.items()))
def test_non_public_addresses_are_refused(address: str, kind: str | None) -> None:
    """Each range at and just past its edges: a range missing, or one bit too wide or too
    narrow, fails here (None: the first public address past an edge)."""
    article = "an" if kind and kind[0] in "aeiouIU" else "a"
    expected = None if kind is None else f"{article} {kind} address"
    assert refusal(ipaddress.ip_address(address)) == expected


@pytest.mark.parametrize(("network", "kind"), SPECIAL, ids=[str(n) for n, _ in SPECIAL])
def test_every_special_range_is_refused_from_its_first_to_its_last_address(
        network: ipaddress.IPv4Network | ipaddress.IPv6Network, kind: str) -> None:
    for ip in (network.network_address, network.broadcast_address):
        why = refusal(ip)
        assert why is not None, f"{ip} of {network} passed"
    inner = refusal(network.network_address + 1) if network.num_addresses > 2 else kind
    assert inner is not None


def test_what_this_python_calls_non_global_is_refused_too() -> None:
    """The table is ours, but never more lenient than the standard library in use: every
    edge of every range this Python's ``ipaddress`` calls private or reserved is refused
    (IPv4 inside IPv6 is judged by the IPv4 address, as :func:`refusal` says)."""
    tables = [ipaddress.IPv4Address._constants._private_networks,  # type: ignore[attr-defined]
              ipaddress.IPv6Address._constants._private_networks,  # type: ignore[attr-defined]
              ipaddress.IPv6Address._constants._reserved_networks]  # type: ignore[attr-defined]
    carriers = [ipaddress.ip_network(n) for n in ("::ffff:0:0/96", "64:ff9b::/96",
                                                   "2002::/16")]
    for table in tables:
        for network in table:
            if any(network.subnet_of(c) for c in carriers if c.version == network.version):
                continue  # judged by the IPv4 address it carries
            for ip in (network.network_address, network.broadcast_address):
                assert refusal(ip) is not None, f"{ip} ({network}) passed"


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111",
                                     "::ffff:93.184.215.14", "64:ff9b::5db8:d70e",
                                     "2002:5db8:d70e::1", "192.31.196.1", "2620:4f:8000::1",
                                     "2000::1", "3fff:1000::1", "2a00:1450:4001::1"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def fake(*answers: str):  # type: ignore[no-untyped-def]
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return list(answers)

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    resolver = fake("93.184.215.14", "10.0.0.9")
    with pytest.raises(InvalidWebhookError) as info:
        check_url("https://hooks.example.com/x", allow_hosts=[], resolver=resolver)
    message = str(info.value)
    assert message.startswith("url 'https://hooks.example.com/x': host hooks.example.com is "
                              "a private address (10.0.0.9)")
    assert "webhooks.allow_hosts" in message and "\n" not in message
    assert resolver.asked == [("hooks.example.com", 443)]  # type: ignore[attr-defined]


def test_rebinding_to_metadata_is_refused() -> None:
    with pytest.raises(InvalidWebhookError, match="cloud metadata address"):
        check_url("http://rebind.example.com/", allow_hosts=[], resolver=fake("169.254.169.254"))


@pytest.mark.parametrize("answer", [
    "169.254.169.254", "169.254.170.2", "169.254.0.1", "169.254.255.255", "fe80::1",
    "febf:ffff::1", "fd00:ec2::254", "100.100.100.200", "168.63.129.16", "192.0.0.192",
    "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1",
    "::ffff:100.100.100.200", "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo of 169.254.x
])
def test_an_allowed_name_never_resolves_into_the_metadata_range(answer: str) -> None:
    """``allow_hosts`` lets a name reach private addresses, but a DNS change that points
    it at instance metadata (in any form) is refused at add and at every delivery."""
    with pytest.raises(InvalidWebhookError, match="in the metadata range") as info:
        check_url("http://relay.internal/hook", allow_hosts=["relay.internal"],
                  resolver=fake("10.1.2.3", answer))
    assert str(info.value).startswith("url 'http://relay.internal/hook': host relay.internal "
                                      "is ")
    assert "even for a host in webhooks.allow_hosts" in str(info.value)
    assert "\n" not in str(info.value)
    # The same name, resolving to its private address only, is still allowed.
    t = check_url("http://relay.internal/hook", allow_hosts=["relay.internal"],
                  resolver=fake("10.1.2.3"))
    assert t.address == "10.1.2.3"


@pytest.mark.parametrize("literal", ["169.254.169.254", "[fe80::1]", "[fd00:ec2::254]",
                                     "100.100.100.200", "[::ffff:a9fe:a9fe]"])
def test_an_allowed_metadata_literal_is_still_refused(literal: str) -> None:
    with pytest.raises(InvalidWebhookError, match="in the metadata range"):
        check_url(f"http://{literal}/x", allow_hosts=[literal.strip("[]")],
                  resolver=fake())


@pytest.mark.parametrize("literal", ["fd00:ec2::254", "fe80::1", "::ffff:169.254.169.254",
                                     "fd00::1", "2606:4700:4700::1111"])
@pytest.mark.parametrize("zone", ["%25eth0", "%251", "%eth0"])
def test_a_literal_with_an_ipv6_zone_is_refused_even_when_allowed(literal: str,
                                                                  zone: str) -> None:
    """A zone (``%25eth0``, RFC 6874) only picks a link-local interface, so a URL literal
    with one is refused before anything else: it once carried the metadata address past
    :func:`is_metadata` (``fd00:ec2::254%eth0`` compared unequal to ``fd00:ec2::254``)."""
    url = f"http://[{literal}{zone}]/latest"
    for allow in ([], [f"{literal}{zone}"], [f"[{literal}{zone}]"], [literal]):
        with pytest.raises(InvalidWebhookError) as info:
            check_url(url, allow_hosts=allow, resolver=fake("93.184.215.14"))
        message = str(info.value)
        assert message.startswith(f"url {shown(url)} has an IPv6 zone"), message
        assert "remove it" in message and "\n" not in message
    with pytest.raises(InvalidWebhookError, match="has an IPv6 zone"):
        parse_url(url)


@pytest.mark.parametrize("address", ["fd00:ec2::254", "fd00:ec2::23", "fe80::1",
                                     "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
                                     "2002:a9fe:a9fe::1", "fd00::1", "::1", "2001:db8::1"])
def test_an_address_is_classified_without_its_zone(address: str) -> None:
    """The zone of an address (as a resolver may answer it) changes nothing: metadata,
    special ranges and embedded IPv4 are judged as for the plain address."""
    plain = ipaddress.ip_address(address)
    for zone in ("eth0", "1", "25eth0"):
        zoned = ipaddress.ip_address(f"{address}%{zone}")
        assert refusal(zoned) == refusal(plain), zoned
        assert is_metadata(zoned) == is_metadata(plain), zoned


@pytest.mark.parametrize("answer", ["fd00:ec2::254%eth0", "fe80::1%eth0", "fd00:ec2::23%1",
                                    "::ffff:169.254.169.254%eth0"])
def test_an_allowed_name_resolving_to_a_zoned_metadata_address_is_refused(
        answer: str) -> None:
    with pytest.raises(InvalidWebhookError, match="in the metadata range") as info:
        check_url("http://relay.internal/hook", allow_hosts=["relay.internal"],
                  resolver=fake("10.1.2.3", answer))
    assert "%" not in str(info.value)  # the address is named without its zone


def test_a_zoned_answer_is_pinned_without_its_zone() -> None:
    """A resolver's zone is dropped, as :func:`system_resolver` drops it: the pinned URL
    holds the plain address (a raw ``%`` would not even be a valid URL)."""
    t = check_url("https://hooks.example.com/x", allow_hosts=[],
                  resolver=fake("2606:4700:4700::1111%eth0"))
    assert t.address == "2606:4700:4700::1111"
    assert t.pinned_url == "https://[2606:4700:4700::1111]/x"
    t = check_url("http://relay.internal/", allow_hosts=["relay.internal"],
                  resolver=fake("fd00::7%2"))
    assert t.address == "fd00::7"


def test_the_metadata_range() -> None:
    assert all(is_metadata(ip) for ip in METADATA)
    for inside in ("169.254.0.0", "169.254.255.255", "fe80::", "febf:ffff::1",
                   "::ffff:169.254.1.1", "64:ff9b::a9fe:1", "2002:a9fe:1::"):
        assert is_metadata(ipaddress.ip_address(inside)), inside
    for outside in ("169.253.255.255", "169.255.0.0", "fe7f::1", "fec0::1", "10.0.0.1",
                    "fd00:ec2::255", "::ffff:10.0.0.1", "93.184.215.14", "2606:4700::1"):
        assert not is_metadata(ipaddress.ip_address(outside)), outside


def test_public_name_is_pinned_to_the_checked_address() -> None:
    t = check_url("https://Hooks.Example.com/a/b?c=1", allow_hosts=[],
                  resolver=fake("2606:4700:4700::1111", "93.184.215.14"))
    assert t.url == "https://Hooks.Example.com/a/b?c=1"  # as given, for the delivery log
    assert t.address == "2606:4700:4700::1111"
    assert t.pinned_url == "https://[2606:4700:4700::1111]/a/b?c=1"
    assert t.host_header == "hooks.example.com"
    assert t.sni == "hooks.example.com"


def test_literal_addresses_are_not_resolved() -> None:
    resolver = fake("93.184.215.14")
    with pytest.raises(InvalidWebhookError, match="loopback"):
        check_url("http://[::1]:8080/x", allow_hosts=[], resolver=resolver)
    assert resolver.asked == []  # type: ignore[attr-defined]
    t = check_url("http://[::1]:8080/x", allow_hosts=["::1"], resolver=resolver)
    assert (t.pinned_url, t.host_header, t.sni) == ("http://[::1]:8080/x", "[::1]:8080", None)


def test_allow_hosts_names_the_host_as_written() -> None:
    resolver = fake("10.1.2.3")
    t = check_url("http://relay.internal:8080/hook", allow_hosts=["Relay.Internal"],
                  resolver=resolver)
    assert t.address == "10.1.2.3" and t.pinned_url == "http://10.1.2.3:8080/hook"
    with pytest.raises(InvalidWebhookError, match="lists 'other.internal'"):
        check_url("http://other.internal/", allow_hosts=["relay.internal"], resolver=resolver)
    # Allowing an address does not allow a name that resolves to it.
    with pytest.raises(InvalidWebhookError, match="private"):
        check_url("http://relay.internal/", allow_hosts=["10.1.2.3"], resolver=resolver)


@pytest.mark.parametrize(("entry", "url", "address"), [
    ("[fd00::1]", "http://[fd00::1]:8080/x", "fd00::1"),  # as a URL writes an IPv6 literal
    ("fd00::1", "http://[fd00::1]:8080/x", "fd00::1"),
    (" [FD00::1] ", "http://[fd00::1]:8080/x", "fd00::1"),
    ("  Relay.Internal\t", "http://relay.internal/", "10.1.2.3"),
])
def test_allow_hosts_entries_are_read_without_brackets_case_or_spaces(
        entry: str, url: str, address: str) -> None:
    with pytest.raises(InvalidWebhookError, match="private"):
        check_url(url, allow_hosts=[], resolver=fake("10.1.2.3"))
    t = check_url(url, allow_hosts=[entry], resolver=fake("10.1.2.3"))
    assert t.address == address


@pytest.mark.parametrize(("allowed", "url"), [
    ("relay.internal", "http://relay.internal.evil.example/"),  # allowed + suffix
    ("relay.internal", "http://evil-relay.internal/"),  # prefix + allowed
    ("relay.internal", "http://x.relay.internal/"),  # a subdomain
    ("relay.internal", "http://relay.interna/"),  # a prefix of it
    ("relay.internal", "http://relay/"),
    ("relay.internal.example", "http://relay.internal/"),  # a part of the allowed name
    ("127.0.0.10", "http://127.0.0.1/"),
    ("127.0.0.1", "http://127.0.0.10/"),
    ("127.0.0.1", "http://127.0.0.1.evil.example/"),
    ("10.1.2.3", "http://10.1.2.30/"),
    ("10.1.2.3", "http://110.1.2.3.evil.example/"),
    ("fd00::1", "http://[fd00::10]/"),
    ("fd00::10", "http://[fd00::1]/"),
])
def test_allow_hosts_matches_the_whole_host_never_a_part(allowed: str, url: str) -> None:
    host = parse_url(url)[1]
    with pytest.raises(InvalidWebhookError, match=f"unless the policy's webhooks.allow_hosts "
                                                  f"lists '{host}'"):
        check_url(url, allow_hosts=["other.internal", allowed], resolver=fake("10.1.2.3"))


def test_unresolvable_and_unusable_hosts_are_refused() -> None:
    with pytest.raises(InvalidWebhookError) as info:
        check_url("https://nowhere.example/", allow_hosts=[], resolver=fake())
    assert str(info.value) == ("url 'https://nowhere.example/': host 'nowhere.example' does "
                               "not resolve; check the host name")
    with pytest.raises(InvalidWebhookError) as info:
        check_url("https://odd.example/", allow_hosts=[], resolver=fake("not-an-ip", ""))
    assert str(info.value) == ("url 'https://odd.example/': host 'odd.example' has no usable "
                               "address")


def test_an_answer_that_is_not_an_address_is_skipped_and_the_rest_still_checked() -> None:
    """A resolver answer that is no address is passed over: the addresses after it are
    judged all the same (a refused one refuses the URL), and the first usable one is the
    target."""
    with pytest.raises(InvalidWebhookError, match=r"a private address \(10\.0\.0\.9\)"):
        check_url("https://hooks.example.com/", allow_hosts=[],
                  resolver=fake("93.184.215.14", "not-an-ip", "10.0.0.9"))
    with pytest.raises(InvalidWebhookError, match=r"in the metadata range"):
        check_url("http://relay.internal/", allow_hosts=["relay.internal"],
                  resolver=fake("10.1.2.3", "not-an-ip", "169.254.169.254"))
    t = check_url("https://hooks.example.com/", allow_hosts=[],
                  resolver=fake("not-an-ip", "93.184.215.14", "8.8.8.8"))
    assert t.address == "93.184.215.14"


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://example.com/", "not an http(s) URL"),
    ("example.com/hook", "not an http(s) URL"),
    ("https://user:pw@example.com/", "user name or password"),
    ("https://user@example.com/", "user name or password"),  # a user name alone
    ("https://:pw@example.com/", "user name or password"),  # a password alone
    ("https://@example.com/", "user name or password"),  # an empty user name
    ("http://:80/", "has no host"),  # an authority with a port and no host
    ("https://example.com/#frag", "#fragment"),
    ("https://example.com:99999/", "invalid port"),
    ("https:///nohost", "not an http(s) URL"),
    ("https://exa mple.com/", "without spaces"),
    ("https://example.com/" + "a" * 2100, "at most 2048"),
    ("https://example.com:-1/", "invalid port"),
    ("https://example.com:0/", "invalid port"),  # was taken as the default port
    ("https://example.com:00/", "invalid port"),
    ("https://example.com:65536/", "from 1 to 65535"),
    ("https://example.com:8080x/", "invalid port"),
    ("https://[::1]:99999/", "invalid port"),
    ("https://[::1]:8080x/", "invalid port"),
    # Brackets hold an IPv6 address and nothing else (urlsplit raised a plain ValueError
    # for some of these, and let others through, depending on the Python version).
    ("http://[]/", "malformed host"),
    ("http://[::1/", "malformed host"),
    ("http://::1]/", "malformed host"),
    ("http://[not-ip]/", "malformed host"),
    ("http://[v1.x]/", "malformed host"),  # IPvFuture: no webhook needs it
    ("http://[10.0.0.1]/", "malformed host"),  # IPv4 is written without brackets
    ("http://[[::1]]/", "malformed host"),
    ("http://[::1]]/", "malformed host"),
    ("http://[::1]x/", "malformed host"),
    ("http://x[::1]/", "malformed host"),
    ("http://[::1%]/", "malformed host"),
    ("http://[%25eth0]/", "malformed host"),
    ("http://exa\u2100mple.com/", "malformed host"),  # NFKC: "a/c", a hidden separator
])
def test_malformed_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(InvalidWebhookError) as info:
        check_url(url, allow_hosts=[], resolver=fake("93.184.215.14"))
    assert str(info.value).startswith(f"url {shown(url)} ")  # the URL, quoted, first
    assert why in str(info.value)


def test_a_malformed_host_names_the_fix() -> None:
    with pytest.raises(InvalidWebhookError) as info:
        parse_url("http://[not-ip]/")
    assert str(info.value) == ("url 'http://[not-ip]/' has a malformed host; write a host "
                               "name, an IPv4 address, or an IPv6 address in brackets such "
                               "as https://[2001:db8::1]:8443/hook")


def test_an_ipv6_literal_in_brackets_is_parsed() -> None:
    assert parse_url("http://[FD00::1]:8080/x") == ("http", "fd00::1", 8080, "/x")
    assert parse_url("https://[2606:4700::1]:/") == ("https", "2606:4700::1", 443, "/")
    assert parse_url("https://[::ffff:93.184.215.14]/") == (
        "https", "::ffff:93.184.215.14", 443, "/")


def test_a_url_of_the_maximum_length_is_accepted_one_more_is_not() -> None:
    head = "https://hooks.example.com/"
    longest = head + "a" * (MAX_URL - len(head))
    assert len(longest) == MAX_URL
    t = check_url(longest, allow_hosts=[], resolver=fake("93.184.215.14"))
    assert t.path == "/" + "a" * (MAX_URL - len(head))
    with pytest.raises(InvalidWebhookError, match=f"at most {MAX_URL} characters"):
        check_url(longest + "a", allow_hosts=[], resolver=fake("93.184.215.14"))


def test_parse_defaults() -> None:
    assert parse_url("http://a.example") == ("http", "a.example", 80, "/")
    assert parse_url("https://a.example:8443/p?q") == ("https", "a.example", 8443, "/p?q")
    assert parse_url("https://a.example:1/")[2] == 1  # the ports at the edges
    assert parse_url("https://a.example:65535/")[2] == 65535
    assert parse_url("https://a.example:/")[2] == 443  # an empty port is the default


def test_system_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    assert system_resolver("127.0.0.1", 80) == ["127.0.0.1"]
    answers = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1%eth0", 80, 0, 2)),
               (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1%eth0", 80, 0, 2)),
               (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 80))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: answers)
    assert system_resolver("x.example", 80) == ["fe80::1", "10.0.0.1"]
    # An address never holds a "%": the zone index is all that follows the first one,
    # whatever it holds itself (no zone is left for check_url to see).
    answers = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00:ec2::254%a%b", 80, 0, 2))]
    assert system_resolver("x.example", 80) == ["fd00:ec2::254"]

    def fail(*a: object, **k: object) -> None:
        raise socket.gaierror("no such host")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    assert system_resolver("x.example", 80) == []
