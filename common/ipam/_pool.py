"""Offset bookkeeping that is the same for the IPv4 and the IPv6 pool.

Both families keep an `alloc` bit array in which bit i stands for address `network + i` of a
tracked network (the IPv4 `cidr`, the IPv6 `allocation_pool_v6.cidr`), reserve its first and last
bit, bound dynamic allocation by `start`/`end`, continue after `lastIp` and never hand out a route
gateway. Those rules live here once, written over an `ipaddress` network of either family; the
field names for messages are parameters. What differs in meaning between the families (which
static addresses are refused, how the tracked network is parsed and defaulted) stays in
`ipv4`/`ipv6`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from common.ipam._addr import IPAddress, parse_address, parse_address_maybe_cidr
from common.ipam._search import find_free_offset
from common.ipam.bitarray import BitArray
from common.ipam.errors import AddressExhausted, InvalidNetworkConfig

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def of_network(network: str) -> str:
    """` of network NAME` for messages, or "" when the network is not named."""
    return f" of network {network}" if network else ""


def offset_in(net: IPNetwork, address: IPAddress | None) -> int | None:
    """The bit offset of `address` in `net`, or None if it is absent, another family or outside."""
    if address is None or address.version != net.version or address not in net:
        return None
    return int(address) - int(net.network_address)


def gateway_offsets(net: IPNetwork, gateways: Iterable[str]) -> set[int]:
    """The offsets of the route `gateways` that lie in `net`."""
    # NB: the webhook rejects gateways outside the network; anything unparsable, of the other
    # family or outside can hold no bit of this alloc, so it is skipped rather than failing every
    # allocation.
    offsets = set()
    for gateway in gateways:
        offset = offset_in(net, parse_address(gateway))
        if offset is not None:
            offsets.add(offset)
    return offsets


def cursor_offset(net: IPNetwork, last_ip: str) -> int | None:
    """The offset of the `lastIp` cursor (plain or CIDR form) in `net`, or None for "no hint"."""
    # NB: lastIp only says where to continue; a value we cannot place (garbage, another family,
    # outside the network) must not block allocation.
    return offset_in(net, parse_address_maybe_cidr(last_ip)) if last_ip else None


def fresh_alloc(net: IPNetwork, gateways: Iterable[str]) -> str:
    """A new alloc over `net`: first address, last address and in-network gateways reserved."""
    bits = BitArray(net.num_addresses)
    bits.set(net.num_addresses - 1)
    for offset in gateway_offsets(net, gateways):
        bits.set(offset)
    return bits.to_base64()


def pool_offset(
    net: IPNetwork, text: str, *, field: str, bound: str, container: str, network: str
) -> int:
    """The offset in `net` (called `container`) of the pool bound `text`, stored in field.bound."""
    address = parse_address(text)
    if address is None or address.version != net.version:
        raise InvalidNetworkConfig(
            f"{field}.{bound} {text!r}{of_network(network)} is not an IPv{net.version} address"
        )
    if address not in net:
        raise InvalidNetworkConfig(
            f"{field}.{bound} {text}{of_network(network)} is outside {container} {net}"
        )
    return int(address) - int(net.network_address)


def pool_bounds(
    net: IPNetwork, start: str, end: str, *, field: str, container: str, network: str
) -> tuple[int, int]:
    """The inclusive offsets first..last of the pool `field` (`start`/`end`, "" = default).

    A missing bound defaults to the second or the last-but-one address of `net`; `container`
    names `net` in messages.
    """
    first = (
        pool_offset(net, start, field=field, bound="start", container=container, network=network)
        if start
        else 1
    )
    last = (
        pool_offset(net, end, field=field, bound="end", container=container, network=network)
        if end
        else net.num_addresses - 2
    )
    if first > last:
        shown_start = start or f"{net.network_address} + 1 (default)"
        shown_end = end or f"{net.broadcast_address} - 1 (default)"
        raise InvalidNetworkConfig(
            f"{field}{of_network(network)} is empty: start {shown_start} is after end {shown_end}"
        )
    return first, last


def take_next_free(
    net: IPNetwork,
    bits: BitArray,
    first: int,
    last: int,
    *,
    last_ip: str,
    gateways: set[int],
    network: str,
) -> int:
    """Reserve (set in `bits`) and return the next free offset of the pool first..last.

    Raises AddressExhausted naming the pool when every address of it is taken.
    """
    offset = find_free_offset(bits, first, last, after=cursor_offset(net, last_ip), skip=gateways)
    if offset is None:
        raise AddressExhausted(
            f"no free IPv{net.version} address left in network {network}: every address of its "
            f"allocation pool {net[first]}-{net[last]} is reserved"
        )
    bits.set(offset)
    return offset


def released_alloc(
    net: IPNetwork, address: IPAddress, alloc: str, gateways: Iterable[str], *, what: str
) -> str | None:
    """`alloc` (over `net`) with `address` freed, or None when there is nothing to free.

    Nothing is freed for an address outside `net`, for the permanently reserved first, last and
    gateway addresses, or for one whose bit is already clear. A corrupt `alloc` (called `what` in
    the error) raises CorruptAllocation.
    """
    offset = offset_in(net, address)
    if offset is None:
        return None
    if offset in (0, net.num_addresses - 1) or offset in gateway_offsets(net, gateways):
        return None
    bits = BitArray.from_base64(alloc, length=net.num_addresses, what=what)
    if not bits.get(offset):
        return None
    bits.clear(offset)
    return bits.to_base64()
