"""The SSRF guard: which addresses outbound requests may reach, and what NEWSWATCH_ALLOWED_HOSTS opens."""

from __future__ import annotations

import ipaddress
import threading
import time

import pytest

from newswatch.http.ssrf import AddressGuard, BlockedAddress, UnresolvableHost, address_problem

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("169.254.0.1", "link-local"),
    ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.1", "private"),  # documentation range
    ("198.18.0.1", "private"),  # benchmarking range
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "not globally routable"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.0.0.1", "private"),
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
    ("64:ff9b:1::a00:1", "reserved"),  # local-use NAT64 prefix
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
    ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
    ("::127.0.0.1", "loopback"),  # deprecated IPv4-compatible
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "address"),  # Teredo: refused whatever it embeds
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "2a00:1450:4001:82b::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped form of a public address
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_addresses_that_are_not_globally_routable_are_refused(address: str, reason: str) -> None:
    problem = address_problem(ipaddress.ip_address(address))
    assert problem is not None and reason in problem
    with pytest.raises(BlockedAddress, match=reason):
        AddressGuard().resolve(address, 80)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None
    assert AddressGuard().resolve(address, 443) == [ipaddress.ip_address(address)]


def test_an_allowed_cidr_range_opens_exactly_that_range() -> None:
    guard = AddressGuard(["10.0.0.0/8", "127.0.0.1"])
    assert guard.resolve("10.20.30.40", 80) == [ipaddress.ip_address("10.20.30.40")]
    assert guard.resolve("127.0.0.1", 80) == [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(BlockedAddress, match="loopback"):
        guard.resolve("127.0.0.2", 80)
    with pytest.raises(BlockedAddress, match="link-local"):
        guard.resolve("169.254.169.254", 80)


def test_an_allowed_host_name_may_resolve_to_a_private_address() -> None:
    assert AddressGuard(["LocalHost."]).resolve("localhost", 80)
    with pytest.raises(BlockedAddress, match="loopback"):
        AddressGuard().resolve("localhost", 80)


def test_a_host_name_is_checked_by_the_addresses_it_resolves_to() -> None:
    # "localhost" is a name, but it resolves to loopback: names never bypass the address check.
    with pytest.raises(BlockedAddress) as caught:
        AddressGuard(["192.168.0.0/16"]).resolve("localhost", 80)
    assert caught.value.host == "localhost"


def test_odd_spellings_of_loopback_resolve_to_loopback_and_are_refused() -> None:
    for spelling in ("127.1", "2130706433", "0x7f000001"):
        with pytest.raises(BlockedAddress, match="loopback"):
            AddressGuard().resolve(spelling, 80)


def test_a_name_that_does_not_resolve_is_reported() -> None:
    with pytest.raises(UnresolvableHost, match="cannot resolve"):
        AddressGuard().resolve("no-such-host.invalid", 80)


def test_a_hanging_dns_lookup_fails_at_the_timeout_with_a_clear_reason() -> None:
    """A dead DNS server must not hold a feed poll or a webhook for the resolver's own 20-30 s."""
    release = threading.Event()

    def stuck_resolver(host: str, port: int) -> list[tuple[object, ...]]:
        release.wait(10)
        return []

    guard = AddressGuard(resolver=stuck_resolver)
    started = time.monotonic()
    try:
        with pytest.raises(UnresolvableHost, match=r"DNS lookup timed out after 0\.3 s"):
            guard.resolve("feeds.example.org", 443, timeout=0.3)
    finally:
        release.set()
    assert time.monotonic() - started < 5


def test_an_unknown_host_is_named_as_unresolvable() -> None:
    # .invalid never resolves (RFC 6761); a machine without DNS at all times out instead: both name it.
    with pytest.raises(UnresolvableHost, match=r"cannot resolve host|DNS lookup timed out"):
        AddressGuard().resolve("no-such-host.invalid", 80, timeout=3)
