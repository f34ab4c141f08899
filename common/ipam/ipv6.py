"""Tracked IPv6 address management over `net6`, `alloc6`, `routes6` and `allocation_pool_v6`.

The seed derived a "dynamic" IPv6 address from a random MAC (EUI-64) and recorded it nowhere, so
two Pods could get the same address, and it added instead of masked the host bits of `net6`
(danm-behaviour §13.12). This module tracks every IPv6 reservation the way the later original
(v4.2.0) does, and stays wire compatible with it:

* `allocation_pool_v6.cidr` is the part of `net6` whose addresses are tracked; `alloc6` is a
  `BitArray` over it (bit i = `cidr` network + i), laid out exactly like the IPv4 `alloc`, with
  its first and last bit reserved. Its prefix must be /105 or longer (at most 2^23 bits, about
  1 MiB in the object) and not /128.
* `allocation_pool_v6.start`/`.end` bound dynamic allocation (default: cidr first+1 .. last-1) and
  `allocation_pool_v6.lastIp` is the next-fit cursor, as for IPv4.
* Addresses are reported with net6's prefix length, e.g. `2001:db8::5/64`.

Defaulting when `net6` is set but `allocation_pool_v6.cidr` is empty: the pool cidr starts at
net6's network address and gets the longest of net6's own prefix, /112 (`DEFAULT_POOL_PREFIXLEN`)
and the prefix that keeps the IPv4 and IPv6 bit arrays together under 2^24 bits
(`smallest_pool_prefixlen`). So `2001:db8::/64` with no `cidr` gets `2001:db8::/112` (65,536
tracked addresses, an 8 KiB bitmask), and a /120 net6 is tracked whole. The untracked EUI-64
scheme is never used.

NB: the later original defaulted to the largest pool allowed (/105). That makes every dual-stack
network object about 1.4 MB of base64, close to etcd's 1.5 MiB request limit, and turns every
Pod ADD and DEL into a 1.4 MB read-modify-write. Objects it wrote keep their /105 pools and work
as they are; admins who need more than 65,536 tracked addresses set `allocation_pool_v6.cidr`
explicitly (up to a /105).

Static requests (`"ip6": "2001:db8::10/64"`, CIDR form; like the seed, the prefix length written
is not compared and the result carries net6's) must lie inside net6 and must not be net6's
Subnet-Router anycast (all-zero host) address. Decision for a static address inside net6 but
outside `allocation_pool_v6.cidr`: it is REFUSED. The object has no record of such addresses, so
accepting one (as the later original does) could hand the same address to two Pods; refusing keeps
the "never twice" guarantee with nothing but the data in the object. Admins who need static
addresses elsewhere in net6 widen or move `allocation_pool_v6.cidr`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from common.ipam import ipv4
from common.ipam._addr import parse_address_maybe_cidr, split_cidr
from common.ipam._pool import (
    fresh_alloc,
    gateway_offsets,
    of_network,
    pool_bounds,
    released_alloc,
    take_next_free,
)
from common.ipam.bitarray import BitArray
from common.ipam.errors import (
    AddressInUse,
    InvalidAddressRequest,
    InvalidNetworkConfig,
)

NONE_REQUEST = "none"
DYNAMIC_REQUEST = "dynamic"

# NB: later original's limits: bitarray.MaxSupportedAllocLength = 24 caps IPv4 + IPv6 tracking
# together at 2^24 bits, and datastructs.MaxV6PrefixLength = 105 caps alloc6 alone at 2^23 bits.
MAX_TRACKED_BITS = 2**24
MIN_POOL_PREFIXLEN = 105
# NB: the default pool size: see the module docstring for why it is not the maximum.
DEFAULT_POOL_PREFIXLEN = 112


@dataclass(frozen=True, slots=True)
class Ipv6Pool:
    """The IPv6 IPAM fields of one network object, exactly as stored (strings, "" = absent).

    `net6` is `spec.Options.net6`, `alloc6` is `spec.Options.alloc6`, `cidr`/`start`/`end`/
    `last_ip` are `spec.Options.allocation_pool_v6.{cidr,start,end,lastIp}` and `gateways` are the
    values of `spec.Options.routes6`.
    """

    net6: str = ""
    alloc6: str = ""
    cidr: str = ""
    start: str = ""
    end: str = ""
    last_ip: str = ""
    gateways: tuple[str, ...] = ()


def _parse_v6(text: str, field: str, network: str) -> ipaddress.IPv6Network:
    parsed = split_cidr(text)
    if parsed is None:
        raise InvalidNetworkConfig(
            f"{field} {text!r}{of_network(network)} is not an IPv6 CIDR such as 2001:db8::/64"
        )
    address, prefix = parsed
    if address.version != 6:
        raise InvalidNetworkConfig(
            f"{field} {text!r}{of_network(network)} is an IPv4 CIDR; IPv4 belongs in cidr"
        )
    # NB: strict=False masks host bits; the seed added them to every address instead (§13.12).
    return ipaddress.IPv6Network((address, prefix), strict=False)


def parse_net6(net6: str, *, network: str = "") -> ipaddress.IPv6Network:
    """`net6` as a network with its host bits masked, or InvalidNetworkConfig."""
    return _parse_v6(net6, "net6", network)


def smallest_pool_prefixlen(cidr4: str = "", *, network: str = "") -> int:
    """The shortest allowed `allocation_pool_v6.cidr` prefix given the network's IPv4 `cidr`.

    IPv4 and IPv6 tracking together stay under 2^24 bits, and alloc6 alone under 2^23 (/105).
    Returns 128 when the IPv4 alloc leaves no room at all (a pool cannot then be used).
    """
    if not cidr4:
        return MIN_POOL_PREFIXLEN
    remaining = MAX_TRACKED_BITS - ipv4.parse_cidr(cidr4, network=network).num_addresses
    for prefix in range(MIN_POOL_PREFIXLEN, 129):
        if 2 ** (128 - prefix) < remaining:
            return prefix
    return 128


def default_pool_cidr(net6: str, *, cidr4: str = "", network: str = "") -> str:
    """The `allocation_pool_v6.cidr` a network gets when none is given (see module docstring)."""
    net = parse_net6(net6, network=network)
    smallest = smallest_pool_prefixlen(cidr4, network=network)
    if smallest == 128 and net.prefixlen < 128:
        raise InvalidNetworkConfig(
            f"cidr {cidr4}{of_network(network)} already uses DANM's whole budget of 2^24 tracked "
            "addresses, so no IPv6 addresses can be tracked beside it; use a smaller cidr or "
            "set allocation_pool_v6.cidr explicitly"
        )
    prefix = max(smallest, net.prefixlen, DEFAULT_POOL_PREFIXLEN)
    return str(ipaddress.IPv6Network((net.network_address, prefix)))


def _check_pool_size(pool_net: ipaddress.IPv6Network, network: str) -> None:
    if pool_net.prefixlen < MIN_POOL_PREFIXLEN:
        raise InvalidNetworkConfig(
            f"allocation_pool_v6.cidr {pool_net}{of_network(network)} is too large: DANM tracks at "
            f"most a /{MIN_POOL_PREFIXLEN} (2^{128 - MIN_POOL_PREFIXLEN} IPv6 addresses)"
        )
    if pool_net.prefixlen == 128:
        raise InvalidNetworkConfig(
            f"allocation_pool_v6.cidr {pool_net}{of_network(network)} is a single address; use a "
            f"prefix between /{MIN_POOL_PREFIXLEN} and /127"
        )


def _check_pool_cidr(
    net: ipaddress.IPv6Network, pool_net: ipaddress.IPv6Network, network: str
) -> None:
    _check_pool_size(pool_net, network)
    if not pool_net.subnet_of(net):
        raise InvalidNetworkConfig(
            f"allocation_pool_v6.cidr {pool_net}{of_network(network)} is outside its net6 {net}"
        )


def init_alloc(pool_cidr: str, route_gateways: Iterable[str] = (), *, network: str = "") -> str:
    """A fresh `alloc6` over `pool_cidr`: first, last and in-range gateway addresses reserved."""
    pool_net = _parse_v6(pool_cidr, "allocation_pool_v6.cidr", network)
    _check_pool_size(pool_net, network)
    return fresh_alloc(pool_net, route_gateways)


@dataclass(frozen=True, slots=True)
class _Layout:
    net: ipaddress.IPv6Network
    pool_net: ipaddress.IPv6Network
    bits: BitArray
    gateways: set[int]


def init_pool(pool: Ipv6Pool, *, cidr4: str = "", network: str = "") -> Ipv6Pool:
    """`pool` with every empty tracking field defaulted: cidr, start, end and alloc6.

    The webhook can call this to fill in `allocation_pool_v6`/`alloc6` on admission; `reserve`
    does the same on the fly for networks that never went through it. Raises
    InvalidNetworkConfig for an unusable net6 or pool, CorruptAllocation for a bad alloc6.
    """
    if not pool.net6:
        if pool.cidr or pool.start or pool.end or pool.alloc6:
            raise InvalidNetworkConfig(
                f"allocation_pool_v6 and alloc6{of_network(network)} need a net6 to belong to"
            )
        return pool
    layout = _layout(pool, cidr4, network)
    first, last = _pool_bounds(layout, pool, network)
    return dataclasses.replace(
        pool,
        cidr=pool.cidr or str(layout.pool_net),
        start=pool.start or str(layout.pool_net[first]),
        end=pool.end or str(layout.pool_net[last]),
        alloc6=pool.alloc6 or layout.bits.to_base64(),
    )


def _layout(pool: Ipv6Pool, cidr4: str, network: str) -> _Layout:
    net = parse_net6(pool.net6, network=network)
    pool_cidr = pool.cidr or default_pool_cidr(pool.net6, cidr4=cidr4, network=network)
    pool_net = _parse_v6(pool_cidr, "allocation_pool_v6.cidr", network)
    _check_pool_cidr(net, pool_net, network)
    if pool.alloc6:
        bits = BitArray.from_base64(
            pool.alloc6, length=pool_net.num_addresses, what=_alloc6_what(network)
        )
    else:
        bits = BitArray.from_base64(init_alloc(str(pool_net), pool.gateways, network=network))
    return _Layout(net, pool_net, bits, gateway_offsets(pool_net, pool.gateways))


def _alloc6_what(network: str) -> str:
    return f"alloc6{of_network(network)}"


def _pool_bounds(layout: _Layout, pool: Ipv6Pool, network: str) -> tuple[int, int]:
    # NB: unlike IPv4 there is no separate "no default pool" case: the pool cidr is never /128,
    # and a /127 is reported as an empty pool.
    return pool_bounds(
        layout.pool_net,
        pool.start,
        pool.end,
        field="allocation_pool_v6",
        container="allocation_pool_v6.cidr",
        network=network,
    )


def reserve(pool: Ipv6Pool, request: str, *, network: str, cidr4: str = "") -> tuple[Ipv6Pool, str]:
    """Reserve an IPv6 address for `request`; returns (updated pool, `"addr/net6-prefix"` or "").

    `cidr4` is the network's IPv4 `cidr`, needed only to default `allocation_pool_v6.cidr`.
    The returned pool has the tracking fields the reservation relied on filled in (defaulted
    cidr and alloc6; for dynamic requests also start and end) plus the new alloc6/last_ip, so
    writing it back makes the object self-describing. `""`/`"none"` return `pool` unchanged.
    """
    if request in ("", NONE_REQUEST):
        return pool, ""
    if not pool.net6:
        raise InvalidAddressRequest(
            f"IPv6 address {request!r} cannot be allocated in network {network}: it has no "
            'net6 (no IPv6 prefix); ask for "none" or add net6 to the network'
        )
    layout = _layout(pool, cidr4, network)
    filled = dataclasses.replace(pool, cidr=pool.cidr or str(layout.pool_net))
    if request == DYNAMIC_REQUEST:
        return _reserve_dynamic(layout, filled, network)
    return _reserve_static(layout, filled, request, network)


def _reserve_dynamic(layout: _Layout, pool: Ipv6Pool, network: str) -> tuple[Ipv6Pool, str]:
    pool_net = layout.pool_net
    first, last = _pool_bounds(layout, pool, network)
    offset = take_next_free(
        pool_net,
        layout.bits,
        first,
        last,
        last_ip=pool.last_ip,
        gateways=layout.gateways,
        network=network,
    )
    address = f"{pool_net[offset]}/{layout.net.prefixlen}"
    updated = dataclasses.replace(
        pool,
        alloc6=layout.bits.to_base64(),
        start=pool.start or str(pool_net[first]),
        end=pool.end or str(pool_net[last]),
        last_ip=address,
    )
    return updated, address


def _reserve_static(
    layout: _Layout, pool: Ipv6Pool, request: str, network: str
) -> tuple[Ipv6Pool, str]:
    net, pool_net = layout.net, layout.pool_net
    parsed = split_cidr(request)
    if parsed is None or parsed[0].version != 6:
        raise InvalidAddressRequest(
            f"invalid IPv6 address request {request!r} for network {network}: expected "
            f'"dynamic", "none" or an IPv6 address in CIDR form, e.g. '
            f"'{pool_net[1]}/{net.prefixlen}'"
        )
    address = parsed[0]
    result = f"{address}/{net.prefixlen}"
    if address not in net:
        raise InvalidAddressRequest(
            f"static IPv6 address {request} is outside the net6 {net} of network {network}"
        )
    if address == net.network_address:
        raise InvalidAddressRequest(
            f"static IPv6 address {request} is the Subnet-Router anycast address of net6 {net} "
            f"of network {network} and cannot be given to a Pod"
        )
    if address not in pool_net:
        raise InvalidAddressRequest(
            f"static IPv6 address {request} is outside allocation_pool_v6.cidr {pool_net} of "
            f"network {network}: only addresses inside it are tracked, so DANM cannot make "
            "sure it is not already in use; pick an address in that range or widen it"
        )
    offset = int(address) - int(pool_net.network_address)
    if offset in (0, pool_net.num_addresses - 1):
        raise InvalidAddressRequest(
            f"static IPv6 address {request} is the first or last address of "
            f"allocation_pool_v6.cidr {pool_net} of network {network}, which stay reserved"
        )
    if offset in layout.gateways:
        raise InvalidAddressRequest(
            f"static IPv6 address {request} is the gateway of a route of network {network} "
            "and cannot be given to a Pod"
        )
    if layout.bits.get(offset):
        raise AddressInUse(f"address {result} is already in use in network {network}")
    layout.bits.set(offset)
    return dataclasses.replace(pool, alloc6=layout.bits.to_base64()), result


def release(pool: Ipv6Pool, address: str, *, network: str = "") -> Ipv6Pool:
    """Give `address` (plain or CIDR form) back; returns the updated pool.

    A no-op when nothing is tracked for it: empty/`"none"`, no net6, alloc6 or pool cidr, not an
    IPv6 address, outside `allocation_pool_v6.cidr`, or one of the permanently reserved first,
    last and gateway addresses. A corrupt alloc6 or pool cidr raises.
    """
    if address in ("", NONE_REQUEST) or not pool.alloc6 or not pool.cidr:
        return pool
    parsed = parse_address_maybe_cidr(address)
    if not isinstance(parsed, ipaddress.IPv6Address):
        return pool
    pool_net = _parse_v6(pool.cidr, "allocation_pool_v6.cidr", network)
    alloc6 = released_alloc(
        pool_net, parsed, pool.alloc6, pool.gateways, what=_alloc6_what(network)
    )
    return pool if alloc6 is None else dataclasses.replace(pool, alloc6=alloc6)
