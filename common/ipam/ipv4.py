"""IPv4 address management over a network's `cidr`, `alloc`, `routes` and `allocation_pool`.

Everything here is plain data in, plain data out: `reserve` and `release` take an `Ipv4Pool` (the
IPv4 fields of one network object, as strings) and return a new one, which the caller writes back
with optimistic concurrency. No Kubernetes, no I/O.

Wire format (shared with the original DANM): `alloc` is a `BitArray` of 2^(32 - prefix) bits in
which bit i stands for address `network + i`. It is initialised with the network address (bit 0),
the broadcast address (bit L-1) and every `routes` gateway inside the cidr set; a new object from
`192.168.1.64/26` gets `gAAAAAAAAAE=`.

Request semantics (the Pod's `"ip"`):

* `""` or `"none"`: no address; the pool is returned unchanged.
* `"dynamic"`: next free address of `allocation_pool` (start..end inclusive; the whole usable
  range, network+1..broadcast-1, when start/end are empty). The search starts after
  `allocation_pool.lastIp` and wraps round (later original, v4.2.0); with no lastIp it is
  first-free from start. lastIp is then set to the address handed out, in CIDR form. Route
  gateways are never handed out, even when `routes` changed after `alloc` was made.
* anything else is a static address in CIDR form with the network's exact prefix length, e.g.
  `10.0.0.5/24`. It must lie inside `cidr` (the pool does not matter: static addresses may come
  from outside it) and must not be the network, broadcast or a gateway address, nor be taken.

Fixes over the seed (danm-behaviour §13): a network with `cidr` but no `alloc` (made without the
webhook) gets its alloc initialised on the fly instead of every request failing as "L2"; an alloc
whose size does not match the cidr (cidr changed later) is reported instead of misread; error
texts name the network and the address and say what the static rule really is.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

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

# NB: the seed's webhook rejects IPv4 prefixes shorter than /8 (the later original: /9); the alloc
# of a /8 is already 2 MiB of bits, so anything larger is refused here too rather than allocated.
MIN_PREFIXLEN = 8


@dataclass(frozen=True, slots=True)
class Ipv4Pool:
    """The IPv4 IPAM fields of one network object, exactly as stored (strings, "" = absent).

    `cidr` is `spec.Options.cidr`, `alloc` is `spec.Options.alloc`, `start`/`end`/`last_ip` are
    `spec.Options.allocation_pool.{start,end,lastIp}` and `gateways` are the values of
    `spec.Options.routes`.
    """

    cidr: str = ""
    alloc: str = ""
    start: str = ""
    end: str = ""
    last_ip: str = ""
    gateways: tuple[str, ...] = ()


def parse_cidr(cidr: str, *, network: str = "") -> ipaddress.IPv4Network:
    """`cidr` as a network (host bits masked, as Go's ParseCIDR does), or InvalidNetworkConfig."""
    parsed = split_cidr(cidr)
    if parsed is None:
        raise InvalidNetworkConfig(
            f"cidr {cidr!r}{of_network(network)} is not an IPv4 CIDR such as 10.0.0.0/24"
        )
    address, prefix = parsed
    if address.version != 4:
        raise InvalidNetworkConfig(
            f"cidr {cidr!r}{of_network(network)} is an IPv6 prefix; IPv6 prefixes belong in net6"
        )
    if prefix < MIN_PREFIXLEN:
        raise InvalidNetworkConfig(
            f"cidr {cidr}{of_network(network)} is too large: DANM manages IPv4 networks of at most "
            f"/{MIN_PREFIXLEN} (2^{32 - MIN_PREFIXLEN} addresses)"
        )
    return ipaddress.IPv4Network((address, prefix), strict=False)


def init_alloc(cidr: str, route_gateways: Iterable[str] = (), *, network: str = "") -> str:
    """A fresh `alloc` for `cidr`: network, broadcast and in-cidr gateway addresses reserved.

    Identical to the original, e.g. `10.0.0.0/30` -> `kA==`, `10.0.0.0/29` with gateway
    10.0.0.1 -> `wQ==`.
    """
    return fresh_alloc(parse_cidr(cidr, network=network), route_gateways)


def default_pool(cidr: str, *, network: str = "") -> tuple[str, str]:
    """The default `allocation_pool` (start, end): network+1 .. broadcast-1."""
    net = parse_cidr(cidr, network=network)
    first, last = _default_bounds(net, network)
    return str(net[first]), str(net[last])


def _default_bounds(net: ipaddress.IPv4Network, network: str) -> tuple[int, int]:
    first, last = 1, net.num_addresses - 2
    if first > last:
        raise InvalidNetworkConfig(
            f"cidr {net}{of_network(network)} has no address between its network and broadcast "
            "address, so it has no default allocation_pool; set allocation_pool explicitly"
        )
    return first, last


def _pool_bounds(net: ipaddress.IPv4Network, pool: Ipv4Pool, network: str) -> tuple[int, int]:
    if not pool.start and not pool.end:
        # NB: a /31 or /32 has no default pool at all; say so rather than "start after end".
        return _default_bounds(net, network)
    return pool_bounds(
        net, pool.start, pool.end, field="allocation_pool", container="its cidr", network=network
    )


def _load_bits(net: ipaddress.IPv4Network, pool: Ipv4Pool, network: str) -> BitArray:
    if not pool.alloc:
        # NB: §13.32 — a network created without the webhook has a cidr but no alloc; the seed
        # then refused every request as "L2". Initialising here is what the webhook would do.
        return BitArray.from_base64(init_alloc(pool.cidr, pool.gateways, network=network))
    return BitArray.from_base64(pool.alloc, length=net.num_addresses, what=_alloc_what(network))


def _alloc_what(network: str) -> str:
    return f"alloc{of_network(network)}"


def reserve(pool: Ipv4Pool, request: str, *, network: str) -> tuple[Ipv4Pool, str]:
    """Reserve an IPv4 address for `request`; returns (updated pool, `"a.b.c.d/prefix"` or "").

    `network` is the network object's name, used in error messages. The returned pool differs
    from `pool` only in the fields the reservation changed or relied on: `alloc` (initialised if
    it was empty), `last_ip`, and for dynamic requests a defaulted `start`/`end`.
    """
    if request in ("", NONE_REQUEST):
        return pool, ""
    if not pool.cidr:
        raise InvalidAddressRequest(
            f"IPv4 address {request!r} cannot be allocated in network {network}: it has no "
            'cidr (L2 network); ask for "none" or add a cidr to the network'
        )
    net = parse_cidr(pool.cidr, network=network)
    bits = _load_bits(net, pool, network)
    gateways = gateway_offsets(net, pool.gateways)
    if request == DYNAMIC_REQUEST:
        return _reserve_dynamic(net, bits, gateways, pool, network)
    return _reserve_static(net, bits, gateways, pool, request, network)


def _reserve_dynamic(
    net: ipaddress.IPv4Network,
    bits: BitArray,
    gateways: set[int],
    pool: Ipv4Pool,
    network: str,
) -> tuple[Ipv4Pool, str]:
    first, last = _pool_bounds(net, pool, network)
    offset = take_next_free(
        net, bits, first, last, last_ip=pool.last_ip, gateways=gateways, network=network
    )
    address = f"{net[offset]}/{net.prefixlen}"
    updated = dataclasses.replace(
        pool,
        alloc=bits.to_base64(),
        start=pool.start or str(net[first]),
        end=pool.end or str(net[last]),
        last_ip=address,
    )
    return updated, address


def _reserve_static(
    net: ipaddress.IPv4Network,
    bits: BitArray,
    gateways: set[int],
    pool: Ipv4Pool,
    request: str,
    network: str,
) -> tuple[Ipv4Pool, str]:
    parsed = split_cidr(request)
    if parsed is None or parsed[0].version != 4:
        example = f"{net[1]}/{net.prefixlen}" if net.num_addresses > 2 else str(net)
        raise InvalidAddressRequest(
            f"invalid IPv4 address request {request!r} for network {network}: expected "
            f'"dynamic", "none" or an IPv4 address in CIDR form with the network\'s prefix '
            f"length, e.g. {example!r}"
        )
    address, prefix = parsed
    if address not in net:
        raise InvalidAddressRequest(
            f"static IPv4 address {request} is outside the cidr {net} of network {network}"
        )
    if prefix != net.prefixlen:
        raise InvalidAddressRequest(
            f"static IPv4 address {request} must carry the prefix length /{net.prefixlen} of "
            f"network {network} (cidr {net}), e.g. {address}/{net.prefixlen}"
        )
    offset = int(address) - int(net.network_address)
    if offset == 0:
        role = "network address"
    elif offset == net.num_addresses - 1:
        role = "broadcast address"
    elif offset in gateways:
        role = "gateway of a route"
    else:
        role = ""
    if role:
        raise InvalidAddressRequest(
            f"static IPv4 address {request} is the {role} of network {network} (cidr {net}) "
            "and cannot be given to a Pod"
        )
    if bits.get(offset):
        raise AddressInUse(f"address {address}/{prefix} is already in use in network {network}")
    bits.set(offset)
    return dataclasses.replace(pool, alloc=bits.to_base64()), f"{address}/{prefix}"


def release(pool: Ipv4Pool, address: str, *, network: str = "") -> Ipv4Pool:
    """Give `address` (plain or CIDR form) back to the pool; returns the updated pool.

    A no-op (the same pool is returned) when there is nothing to release: an empty or `"none"`
    address, an L2 network, an address that is not IPv4 or lies outside the cidr, or one of the
    permanently reserved network, broadcast and gateway addresses. Like the original, the prefix
    length of `address` is not compared. A corrupt alloc or cidr still raises: silently keeping
    a leaked reservation would hide the problem.
    """
    if address in ("", NONE_REQUEST) or not pool.cidr or not pool.alloc:
        return pool
    parsed = parse_address_maybe_cidr(address)
    if not isinstance(parsed, ipaddress.IPv4Address):
        return pool
    net = parse_cidr(pool.cidr, network=network)
    alloc = released_alloc(net, parsed, pool.alloc, pool.gateways, what=_alloc_what(network))
    return pool if alloc is None else dataclasses.replace(pool, alloc=alloc)
