"""IPv6 IPAM: tracked allocation over allocation_pool_v6, defaulting, static rules, release."""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
from typing import Any

import pytest

from common.ipam import ipv6
from common.ipam.bitarray import BitArray
from common.ipam.errors import (
    AddressExhausted,
    AddressInUse,
    CorruptAllocation,
    InvalidAddressRequest,
    InvalidNetworkConfig,
)
from common.ipam.ipv6 import Ipv6Pool


def b64(hex_bytes: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_bytes)).decode()


@pytest.mark.parametrize(
    ("net6", "cidr4", "expected"),
    [
        # NB: /112 by default, not the /105 maximum: object size (see the module docstring)
        ("2001:db8::/64", "", "2001:db8::/112"),
        ("2001:db8::/64", "10.0.0.0/24", "2001:db8::/112"),
        ("2001:db8::/64", "10.0.0.0/9", "2001:db8::/112"),
        ("2001:db8::/120", "", "2001:db8::/120"),  # small net6 is tracked whole
        ("2001:db8::1234/64", "", "2001:db8::/112"),  # host bits masked (§13.12)
        ("::/64", "", "::/112"),  # leading zero bytes (§13.12)
    ],
)
def test_default_pool_cidr(net6: str, cidr4: str, expected: str) -> None:
    assert ipv6.default_pool_cidr(net6, cidr4=cidr4) == expected


def test_smallest_pool_prefixlen() -> None:
    assert ipv6.smallest_pool_prefixlen() == 105
    # a /9 takes 2^23 of the 2^24 bits, so a /105 no longer fits beside it
    assert ipv6.smallest_pool_prefixlen("10.0.0.0/9") == 106
    assert ipv6.smallest_pool_prefixlen("10.0.0.0/8") == 128  # the v4 alloc fills 2^24 already


def test_no_default_pool_beside_a_slash8() -> None:
    with pytest.raises(InvalidNetworkConfig, match="whole budget of 2\\^24"):
        ipv6.default_pool_cidr("2001:db8::/64", cidr4="10.0.0.0/8", network="blue")


def test_init_alloc_layout_matches_ipv4() -> None:
    # /125: 8 bits; first and last reserved, gateway ::3 too; ::9 lies outside the pool.
    assert ipv6.init_alloc("2001:db8::/125", ["2001:db8::3", "2001:db8::9"]) == b64("91")


def test_init_alloc_of_default_pool_size() -> None:
    alloc = ipv6.init_alloc("2001:db8::/105")
    bits = BitArray.from_base64(alloc)
    assert len(bits) == 2**23
    assert bits.count_set() == 2
    assert bits.get(0)
    assert bits.get(2**23 - 1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"net6": "2001:db8::"}, "not an IPv6 CIDR"),
        ({"net6": "10.0.0.0/24"}, "IPv4 belongs in cidr"),
        ({"net6": "2001:db8::/64", "cidr": "2001:db8::/104"}, "too large"),
        ({"net6": "2001:db8::/64", "cidr": "2001:db8::1/128"}, "single address"),
        ({"net6": "2001:db8::/64", "cidr": "2001:db9::/112"}, "outside its net6"),
        ({"net6": "2001:db8::/64", "cidr": "2001:db8::/112", "start": "2001:db8::1:0"}, "outside"),
        ({"net6": "2001:db8::/64", "cidr": "2001:db8::/112", "end": "10.0.0.1"}, "not an IPv6"),
        (
            {
                "net6": "2001:db8::/64",
                "cidr": "2001:db8::/112",
                "start": "2001:db8::9",
                "end": "2001:db8::8",
            },
            "is empty",
        ),
        ({"net6": "2001:db8::/127"}, "is empty"),
        ({"net6": "2001:db8::/128"}, "single address"),
    ],
)
def test_unusable_ipv6_config(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidNetworkConfig, match=message):
        ipv6.reserve(dataclasses.replace(Ipv6Pool(), **fields), "dynamic", network="blue")


def test_init_pool_fills_every_tracking_field() -> None:
    pool = ipv6.init_pool(Ipv6Pool(net6="2001:db8::/64"), cidr4="10.0.0.0/24")
    assert pool.cidr == "2001:db8::/112"
    assert pool.start == "2001:db8::1"
    assert pool.end == "2001:db8::fffe"
    assert pool.alloc6 == ipv6.init_alloc("2001:db8::/112")
    assert ipv6.init_pool(pool) == pool


def test_init_pool_without_net6() -> None:
    assert ipv6.init_pool(Ipv6Pool()) == Ipv6Pool()
    with pytest.raises(InvalidNetworkConfig, match="need a net6"):
        ipv6.init_pool(Ipv6Pool(cidr="2001:db8::/112"))


def small_pool(*, alloc6: str = "", gateways: tuple[str, ...] = ()) -> Ipv6Pool:
    """net6 /64 tracked over a /125: offsets 0..7, dynamic pool ::1..::6."""
    return Ipv6Pool(net6="2001:db8::/64", cidr="2001:db8::/125", alloc6=alloc6, gateways=gateways)


@pytest.mark.parametrize("request_text", ["", "none"])
def test_no_address_requested(request_text: str) -> None:
    assert ipv6.reserve(Ipv6Pool(), request_text, network="blue") == (Ipv6Pool(), "")
    assert ipv6.reserve(small_pool(), request_text, network="blue") == (small_pool(), "")


def test_dynamic_defaults_pool_and_reports_net6_prefix() -> None:
    pool, address = ipv6.reserve(Ipv6Pool(net6="2001:db8::/64"), "dynamic", network="blue")
    assert address == "2001:db8::1/64"
    assert (pool.cidr, pool.start, pool.end) == (
        "2001:db8::/112",
        "2001:db8::1",
        "2001:db8::fffe",
    )
    assert pool.last_ip == "2001:db8::1/64"
    bits = BitArray.from_base64(pool.alloc6, length=2**16)
    assert bits.get(1)


def test_dynamic_next_fit_wrap_and_exhaustion() -> None:
    pool = small_pool()
    addresses = []
    for _ in range(6):
        pool, address = ipv6.reserve(pool, "dynamic", network="blue")
        addresses.append(address)
    assert addresses == [f"2001:db8::{i}/64" for i in range(1, 7)]
    assert pool.alloc6 == b64("ff")
    with pytest.raises(AddressExhausted, match="no free IPv6 address left in network blue"):
        ipv6.reserve(pool, "dynamic", network="blue")
    pool = ipv6.release(pool, "2001:db8::2/64")
    pool, address = ipv6.reserve(pool, "dynamic", network="blue")
    assert address == "2001:db8::2/64"


def test_dynamic_skips_gateway_without_bit() -> None:
    pool = small_pool(alloc6=b64("81"), gateways=("2001:db8::1",))
    _, address = ipv6.reserve(pool, "dynamic", network="blue")
    assert address == "2001:db8::2/64"


def test_twenty_thousand_dynamic_addresses_are_unique() -> None:
    # NB: every step goes through the stored string form, as the CNI does.
    pool = Ipv6Pool(net6="fd00:1::/64", cidr="fd00:1::/112")
    addresses = set()
    for _ in range(20_000):
        pool, address = ipv6.reserve(pool, "dynamic", network="blue")
        addresses.add(address)
    assert len(addresses) == 20_000
    tracked = ipaddress.IPv6Network("fd00:1::/112")
    assert all(ipaddress.IPv6Interface(a).ip in tracked for a in addresses)
    assert all(a.endswith("/64") for a in addresses)
    assert BitArray.from_base64(pool.alloc6).count_set() == 20_002


def test_static_is_tracked_and_reported_with_net6_prefix() -> None:
    pool, address = ipv6.reserve(small_pool(), "2001:db8::5/128", network="blue")
    assert address == "2001:db8::5/64"
    assert pool.alloc6 == b64("85")
    with pytest.raises(
        AddressInUse, match=r"^address 2001:db8::5/64 is already in use in network blue$"
    ):
        ipv6.reserve(pool, "2001:db8::5/64", network="blue")
    # dynamic then skips it
    pool, _ = ipv6.reserve(pool, "2001:db8::1/64", network="blue")
    pool, _ = ipv6.reserve(pool, "2001:db8::2/64", network="blue")
    pool, _ = ipv6.reserve(pool, "2001:db8::3/64", network="blue")
    pool, _ = ipv6.reserve(pool, "2001:db8::4/64", network="blue")
    _, address = ipv6.reserve(pool, "dynamic", network="blue")
    assert address == "2001:db8::6/64"


def test_dynamic_address_cannot_be_taken_statically() -> None:
    pool, address = ipv6.reserve(small_pool(), "dynamic", network="blue")
    with pytest.raises(AddressInUse):
        ipv6.reserve(pool, address, network="blue")


@pytest.mark.parametrize(
    ("request_text", "message"),
    [
        ("2001:db8::5", "CIDR form"),
        ("10.0.0.5/24", "CIDR form"),
        ("2001:db8::5%eth0/64", "CIDR form"),
        ("2001:db9::5/64", "outside the net6 2001:db8::/64 of network blue"),
        ("2001:db8::/64", "Subnet-Router anycast"),
        ("2001:db8::1:5/64", "outside allocation_pool_v6.cidr 2001:db8::/125"),
        ("2001:db8::7/64", "first or last address"),
        ("2001:db8::3/64", "gateway of a route"),
    ],
)
def test_static_request_errors(request_text: str, message: str) -> None:
    pool = small_pool(gateways=("2001:db8::3",))
    with pytest.raises(InvalidAddressRequest, match=message):
        ipv6.reserve(pool, request_text, network="blue")


def test_static_outside_the_tracked_cidr_is_refused_even_once() -> None:
    # NB: accepting it would leave no record, so a second Pod could get it too (§13.12).
    pool = Ipv6Pool(net6="2001:db8::/64")
    with pytest.raises(InvalidAddressRequest, match="cannot make sure it is not already in use"):
        ipv6.reserve(pool, "2001:db8::1:0:0:1/64", network="blue")


@pytest.mark.parametrize("request_text", ["dynamic", "2001:db8::5/64"])
def test_l2_network_refuses_ipv6(request_text: str) -> None:
    with pytest.raises(InvalidAddressRequest, match="network blue: it has no net6"):
        ipv6.reserve(Ipv6Pool(), request_text, network="blue")


def test_corrupt_alloc6_is_reported() -> None:
    pool = small_pool(alloc6="gAAA")
    with pytest.raises(CorruptAllocation, match="alloc6 of network blue holds 24 bits"):
        ipv6.reserve(pool, "dynamic", network="blue")


@pytest.mark.parametrize(
    "address",
    [
        "",
        "none",
        "10.0.0.5/24",
        "2001:db8::1:5/64",
        "2001:db8::/64",
        "2001:db8::7",
        "2001:db8::3",
        "2001:db8::4/64",
    ],
)
def test_release_no_ops(address: str) -> None:
    pool = small_pool(alloc6=b64("b1"), gateways=("2001:db8::3",))
    assert ipv6.release(pool, address) is pool


def test_release_without_tracking_is_a_no_op() -> None:
    pool = Ipv6Pool(net6="2001:db8::/64")
    assert ipv6.release(pool, "2001:db8::5/64") is pool


@pytest.mark.parametrize("address", ["2001:db8::5/64", "2001:db8::5", "2001:db8::5/128"])
def test_release_clears_the_bit(address: str) -> None:
    pool = small_pool(alloc6=b64("85"))
    assert ipv6.release(pool, address).alloc6 == b64("81")
