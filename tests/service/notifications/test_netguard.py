"""The SSRF guard decides from literal addresses and a fake resolver: these tests never
open a connection (nothing here sends a packet anywhere)."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from llmreg.errors import InvalidWebhookError
from llmreg.service.notifications.netguard import check_url, parse_url, refusal, system_resolver

REFUSED = {
    "127.0.0.1": "loopback", "127.8.9.10": "loopback", "10.0.0.1": "private",
    "172.16.5.4": "private", "192.168.1.1": "private", "169.254.169.254": "cloud metadata",
    "169.254.10.10": "link-local", "0.0.0.0": "unspecified", "100.64.0.1": "shared (CGNAT)",
    "100.100.100.200": "cloud metadata", "168.63.129.16": "cloud metadata",
    "224.0.0.1": "multicast", "240.0.0.1": "private", "255.255.255.255": "private",
    "192.0.2.1": "private", "198.18.0.1": "private",
    "::1": "loopback", "::": "unspecified", "fe80::1": "link-local", "fd00::1": "private",
    "fc00::1": "private", "fd00:ec2::254": "cloud metadata", "ff02::1": "multicast",
    "ff0e::1": "multicast", "2001:db8::1": "private", "4000::1": "reserved",
    "::ffff:127.0.0.1": "loopback", "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "cloud metadata", "2002:a00:1::": "private",  # 6to4 of 10.0.0.1
    "64:ff9b::7f00:1": "loopback",  # NAT64 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe": "private",  # Teredo, client 10.0.0.1
}


@pytest.mark.parametrize(("address", "kind"), sorted(REFUSED.items()))
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == f"a {kind} address"


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111",
                                     "::ffff:93.184.215.14", "64:ff9b::5db8:d70e"])
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


def test_public_name_is_pinned_to_the_checked_address() -> None:
    t = check_url("https://Hooks.Example.com/a/b?c=1", allow_hosts=[],
                  resolver=fake("2606:4700:4700::1111", "93.184.215.14"))
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
    with pytest.raises(InvalidWebhookError, match="does not resolve"):
        check_url("https://nowhere.example/", allow_hosts=[], resolver=fake())
    with pytest.raises(InvalidWebhookError, match="no usable address"):
        check_url("https://odd.example/", allow_hosts=[], resolver=fake("not-an-ip"))


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://example.com/", "not an http(s) URL"),
    ("example.com/hook", "not an http(s) URL"),
    ("https://user:pw@example.com/", "user name or password"),
    ("https://example.com/#frag", "#fragment"),
    ("https://example.com:99999/", "invalid port"),
    ("https:///nohost", "not an http(s) URL"),
    ("https://exa mple.com/", "without spaces"),
    ("https://example.com/" + "a" * 2100, "at most 2048"),
])
def test_malformed_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(InvalidWebhookError, match="^url ") as info:
        check_url(url, allow_hosts=[], resolver=fake("93.184.215.14"))
    assert why in str(info.value)


def test_parse_defaults() -> None:
    assert parse_url("http://a.example") == ("http", "a.example", 80, "/")
    assert parse_url("https://a.example:8443/p?q") == ("https", "a.example", 8443, "/p?q")


def test_system_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    assert system_resolver("127.0.0.1", 80) == ["127.0.0.1"]
    answers = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1%eth0", 80, 0, 2)),
               (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1%eth0", 80, 0, 2)),
               (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 80))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: answers)
    assert system_resolver("x.example", 80) == ["fe80::1", "10.0.0.1"]

    def fail(*a: object, **k: object) -> None:
        raise socket.gaierror("no such host")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    assert system_resolver("x.example", 80) == []
