"""SSRF guard: resolve a host once and refuse every address that is not globally routable, unless allowed.

The caller connects to the addresses `AddressGuard.resolve` returns (never resolving again), so a DNS answer
that changes between the check and the connection (DNS rebinding) cannot reach an internal address.
`NEWSWATCH_ALLOWED_HOSTS` (Settings.allowed_hosts) names hosts or CIDR ranges an operator allows although
they are private, e.g. `127.0.0.1` for a local test server or `10.0.0.0/8` for an intranet feed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

IPAddress = IPv4Address | IPv6Address

#: RFC 6052 well-known NAT64 prefix: the last 32 bits are an IPv4 address a NAT64 gateway connects to.
_NAT64 = IPv6Network("64:ff9b::/96")
#: IPv4 ranges that Python's is_global does not exclude but that no public server lives in.
_EXTRA_IPV4_REFUSED = (IPv4Network("224.0.0.0/4"),)  # multicast
#: Seconds a host name lookup may take when the caller gives no timeout.
DNS_TIMEOUT = 10.0

Resolver = Callable[[str, int], list[tuple[Any, ...]]]


def _system_resolver(host: str, port: int) -> list[tuple[Any, ...]]:
    return list(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


# getaddrinfo has no timeout of its own (a dead DNS server holds it for the resolver's retries, often
# 20-30 s): it runs here, and the caller stops waiting at its timeout. Four threads at most, so that
# stuck lookups cannot pile up threads without bound; a lookup queued behind them times out alike.
_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="newswatch-dns")


class GuardError(Exception):
    """An address the guard will not let a request reach; `reason` says why, in words."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


class BlockedAddress(GuardError):
    """The host is, or resolves only to, addresses that are not globally routable."""


class UnresolvableHost(GuardError):
    """The host name did not resolve."""


def parse_ip(text: str) -> IPAddress | None:
    """The address a literal host names ("10.0.0.1", "[::1]", "::1"), or None for a host name."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if int(address) >> 32 == 0 and int(address) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return IPv4Address(int(address))
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why `address` must not be reached, or None when it is a globally routable unicast address."""
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            problem = _ipv4_problem(inner)
            if problem:
                return f"{problem} (embedded in {address})"
            if address.ipv4_mapped is not None or address in _NAT64 or int(address) >> 32 == 0:
                return None  # only a spelling of the IPv4 address, which is fine
        return _ipv6_problem(address)  # 6to4 and Teredo: the IPv6 address itself must be routable too
    return _ipv4_problem(address)


def _ipv4_problem(address: IPv4Address) -> str | None:
    if address.is_loopback:
        return "loopback address"
    if address.is_link_local:
        return "link-local address (cloud metadata lives here)"
    if address.is_unspecified:
        return "unspecified address"
    if address.is_multicast or any(address in network for network in _EXTRA_IPV4_REFUSED):
        return "multicast address"
    if address.is_reserved:
        return "reserved address"
    if address.is_private:
        return "private address"
    if not address.is_global:
        return "address not globally routable"
    return None


def _ipv6_problem(address: IPv6Address) -> str | None:
    if address.is_loopback:
        return "loopback address"
    if address.is_link_local:
        return "link-local address"
    if address.is_unspecified:
        return "unspecified address"
    if address.is_multicast:
        return "multicast address"
    if address.is_site_local:
        return "site-local address"
    if address in IPv6Network("fc00::/7"):
        return "unique-local address"
    if address.is_reserved:
        return "reserved address"
    if address.is_private or not address.is_global:
        return "address not globally routable"
    return None


class AddressGuard:
    """Decides which addresses outbound requests may reach; resolves host names once."""

    def __init__(self, allowed: Iterable[str] = (), resolver: Resolver = _system_resolver) -> None:
        self.resolver = resolver
        self.allowed_networks: list[IPv4Network | IPv6Network] = []
        self.allowed_names: set[str] = set()
        for entry in allowed:
            entry = entry.strip()
            if not entry:
                continue
            try:
                self.allowed_networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.allowed_names.add(_normal_name(entry))

    def problem(self, host: str, address: IPAddress) -> str | None:
        """Why a request to `host` may not connect to `address`, or None when it may."""
        if _normal_name(host) in self.allowed_names:
            return None
        if any(address.version == net.version and address in net for net in self.allowed_networks):
            return None
        return address_problem(address)

    def resolve(self, host: str, port: int, timeout: float | None = None) -> list[IPAddress]:
        """The addresses of `host` a request may connect to, in the resolver's order.

        Addresses that are refused are left out; when none is left, BlockedAddress names the first reason.
        A lookup that takes longer than `timeout` seconds (default DNS_TIMEOUT) raises UnresolvableHost.
        """
        literal = parse_ip(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            limit = DNS_TIMEOUT if timeout is None else max(0.0, timeout)
            try:
                infos = _lookups.submit(self.resolver, host, port).result(timeout=limit)
            except FutureTimeout:
                raise UnresolvableHost(host, f"DNS lookup timed out after {limit:g} s") from None
            except (socket.gaierror, UnicodeError) as error:
                raise UnresolvableHost(host, f"cannot resolve host ({error})") from None
            addresses = []
            for info in infos:
                address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
                if address not in addresses:
                    addresses.append(address)
            if not addresses:
                raise UnresolvableHost(host, "host resolves to no address")
        usable = [address for address in addresses if self.problem(host, address) is None]
        if not usable:
            reason = self.problem(host, addresses[0])
            raise BlockedAddress(host, f"refused {addresses[0]}: {reason}")
        return usable


def _normal_name(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()
