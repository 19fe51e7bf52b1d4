"""Where webhooks may go: never into the service's own network, unless an operator allows it.

A callback URL is the site admin's to choose, so it could name Redis on loopback, a cloud
metadata address or a private service. The check runs on the socket address the client is about
to connect to, after DNS resolution (aiohttp's ``socket_factory`` hook), so neither an address
spelled oddly (``0x7f000001``, ``[::ffff:127.0.0.1]``) nor a name that resolves differently on
the second lookup (DNS rebinding) gets past it.
"""

import errno
import ipaddress
import socket
from collections.abc import Sequence

from aiohappyeyeballs import AddrInfoType, SocketFactoryType

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

NAMED_RANGES: dict[str, tuple[str, ...]] = {
    "loopback": ("127.0.0.0/8", "::1/128"),
    "private": ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"),
    "link-local": ("169.254.0.0/16", "fe80::/10"),
    "unique-local": ("fc00::/7",),
}
"""Ranges an operator may allow by name (``CIVILITY_CALLBACK_ALLOW=loopback``) or as CIDR."""


class RefusedAddressError(OSError):
    """The address is not a public one and no allowed range holds it."""


def parse_allowed(value: str) -> tuple[Network, ...]:
    """Comma-separated range names or CIDR blocks; ``ValueError`` names the first bad one."""
    networks: list[Network] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if item in NAMED_RANGES:
            networks += [ipaddress.ip_network(block) for block in NAMED_RANGES[item]]
            continue
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError:
            names = ", ".join(NAMED_RANGES)
            raise ValueError(f"{item!r} is neither a range name ({names}) nor a CIDR") from None
    return tuple(networks)


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
"""The well-known NAT64 prefix (RFC 6052): its last 32 bits are the IPv4 address reached."""
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
"""The local-use NAT64 prefix (RFC 8215): the translator is the operator's own."""
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
"""The deprecated IPv4-compatible form (RFC 4291): where Linux's sit tunnel is up, a
connection to ``::127.0.0.1`` reaches 127.0.0.1. ``::`` and ``::1`` are IPv6's own."""
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
"""SIIT's IPv4-translated form (RFC 2765): its last 32 bits are the IPv4 address reached."""


def _ipv4_behind(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches through mapping, translation, NAT64, 6to4 or the
    IPv4-compatible form, if it names one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64 or address in IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address))
    return address.sixtofour


def check(address: Address, allowed: Sequence[Network]) -> None:
    """Raise ``RefusedAddressError`` for a non-public address outside every allowed range."""
    if isinstance(address, ipaddress.IPv6Address):
        # On an IPv6-only host with a translator, these reach the IPv4 address inside them.
        address = _ipv4_behind(address) or address
    public = address.is_global and not address.is_multicast
    if public and not (isinstance(address, ipaddress.IPv6Address) and address in NAT64_LOCAL):
        return
    if any(address.version == network.version and address in network for network in allowed):
        return
    # With an errno, aiohttp's connection error shows the reason instead of "None".
    raise RefusedAddressError(
        errno.EACCES, f"refused to connect to {address}: not a public address"
    )


def guarded_socket_factory(allowed: Sequence[Network]) -> SocketFactoryType:
    """A socket factory for ``aiohttp.TCPConnector`` that refuses non-public addresses."""

    def open_socket(addr_info: AddrInfoType) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        # An IPv6 socket address may carry a zone ("fe80::1%eth0"); ip_address keeps it as the
        # scope id, which neither the range tests nor the ipv4_mapped unwrapping look at.
        check(ipaddress.ip_address(sockaddr[0]), allowed)
        return socket.socket(family=family, type=kind, proto=proto)

    return open_socket
