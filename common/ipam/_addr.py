"""Strict parsing of the address texts found in network objects and Pod annotations.

`ipaddress` alone is too forgiving for a wire format: it accepts a bare address as a /32 or /128
network and a dotted netmask instead of a prefix length. DANM's Go code used `net.ParseCIDR`,
which needs `address/decimal-prefix`; these helpers insist on the same shape.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def split_cidr(text: str) -> tuple[IPAddress, int] | None:
    """`address/prefix` as (address, prefix length), or None if `text` is not of that shape.

    The prefix must be plain ASCII decimal and fit the address family; host bits may be set.
    """
    address_text, slash, prefix_text = text.partition("/")
    if not slash or not prefix_text.isascii() or not prefix_text.isdecimal():
        return None
    if len(prefix_text) > 3:
        return None
    address = parse_address(address_text)
    if address is None:
        return None
    prefix = int(prefix_text)
    if prefix > address.max_prefixlen:
        return None
    return address, prefix


def parse_address(text: str) -> IPAddress | None:
    """A plain IPv4 or IPv6 address (no prefix, no zone), or None."""
    if not text or "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_address_maybe_cidr(text: str) -> IPAddress | None:
    """An address written either plain or in CIDR form (as stored in DanmEps and lastIp)."""
    parsed = split_cidr(text)
    if parsed is not None:
        return parsed[0]
    return parse_address(text)
