"""IPv4 IPAM: alloc initialisation vectors, dynamic/static/none requests, release, errors."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest

from common.ipam import ipv4
from common.ipam.bitarray import BitArray
from common.ipam.errors import (
    AddressExhausted,
    AddressInUse,
    CorruptAllocation,
    InvalidAddressRequest,
    InvalidNetworkConfig,
)
from common.ipam.ipv4 import Ipv4Pool


def b64(hex_bytes: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_bytes)).decode()


# NB: expected arrays are written out by hand: bit i is address network+i, MSB first per byte.
SLASH30_GW = "d0"  # bits 0 (network), 1 (gw .1), 3 (broadcast): 1101 0000
SLASH24_GWS = "c0" + "00" * 30 + "03"  # bits 0, 1 (gw .1) | 254 (gw .254), 255 (broadcast)
# /22 = 1024 bits = 128 bytes. Gateways 10.0.1.1 (bit 257: byte 32, mask 0x40) and 10.0.3.254
# (bit 1022: byte 127, mask 0x02); broadcast bit 1023 is byte 127 mask 0x01; 10.0.4.1 is outside.
SLASH22_GWS = "80" + "00" * 31 + "40" + "00" * 94 + "03"


@pytest.mark.parametrize(
    ("cidr", "gateways", "expected"),
    [
        # the original's published vectors
        ("192.168.1.64/26", [], "gAAAAAAAAAE="),
        ("10.0.0.0/30", [], "kA=="),
        ("10.0.0.0/24", [], "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="),
        ("10.0.0.0/29", ["10.0.0.1"], "wQ=="),
        # computed by hand above
        ("10.0.0.0/30", ["10.0.0.1"], b64(SLASH30_GW)),
        ("10.0.0.0/24", ["10.0.0.1", "10.0.0.254"], b64(SLASH24_GWS)),
        ("10.0.0.0/22", ["10.0.1.1", "10.0.3.254", "10.0.4.1"], b64(SLASH22_GWS)),
        # host bits in cidr are masked like Go's ParseCIDR; bad gateways reserve nothing
        ("10.0.0.3/30", ["garbage", "2001:db8::1"], "kA=="),
    ],
)
def test_init_alloc_vectors(cidr: str, gateways: list[str], expected: str) -> None:
    assert ipv4.init_alloc(cidr, gateways) == expected


def test_hand_computed_vectors_have_the_right_size() -> None:
    assert len(bytes.fromhex(SLASH24_GWS)) == 32
    assert len(bytes.fromhex(SLASH22_GWS)) == 128


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("", "is not an IPv4 CIDR"),
        ("10.0.0.0", "is not an IPv4 CIDR"),  # no prefix
        ("10.0.0.0/255.255.255.0", "is not an IPv4 CIDR"),  # netmask form
        ("10.0.0.0/33", "is not an IPv4 CIDR"),
        ("10.0.0.256/24", "is not an IPv4 CIDR"),
        ("010.0.0.0/24", "is not an IPv4 CIDR"),  # leading zero: ambiguous octal
        ("2001:db8::/64", "IPv6 prefixes belong in net6"),
        ("10.0.0.0/7", "too large"),
    ],
)
def test_invalid_cidr_is_a_clear_error(cidr: str, message: str) -> None:
    with pytest.raises(InvalidNetworkConfig, match=message):
        ipv4.init_alloc(cidr)
    with pytest.raises(InvalidNetworkConfig, match=message):
        ipv4.reserve(Ipv4Pool(cidr=cidr or "x"), "dynamic", network="blue")


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [
        ("10.0.0.0/24", ("10.0.0.1", "10.0.0.254")),
        ("10.0.0.0/30", ("10.0.0.1", "10.0.0.2")),
        ("192.168.1.64/26", ("192.168.1.65", "192.168.1.126")),
    ],
)
def test_default_pool(cidr: str, expected: tuple[str, str]) -> None:
    assert ipv4.default_pool(cidr) == expected


@pytest.mark.parametrize("cidr", ["10.0.0.0/31", "10.0.0.0/32"])
def test_default_pool_needs_room(cidr: str) -> None:
    with pytest.raises(InvalidNetworkConfig, match="no default allocation_pool"):
        ipv4.default_pool(cidr)


def pool29(**fields: Any) -> Ipv4Pool:
    pool = Ipv4Pool(cidr="10.0.0.0/29", alloc=ipv4.init_alloc("10.0.0.0/29"))
    return dataclasses.replace(pool, **fields)


def reserve_all(pool: Ipv4Pool, count: int) -> tuple[Ipv4Pool, list[str]]:
    addresses = []
    for _ in range(count):
        pool, address = ipv4.reserve(pool, "dynamic", network="blue")
        addresses.append(address)
    return pool, addresses


@pytest.mark.parametrize("request_text", ["", "none"])
def test_no_address_requested_leaves_pool_untouched(request_text: str) -> None:
    pool = pool29()
    assert ipv4.reserve(pool, request_text, network="blue") == (pool, "")
    # NB: even an L2 network accepts "none".
    assert ipv4.reserve(Ipv4Pool(), request_text, network="blue") == (Ipv4Pool(), "")


def test_dynamic_is_first_free_without_last_ip_then_next_fit() -> None:
    pool = pool29()
    pool, addresses = reserve_all(pool, 3)
    assert addresses == ["10.0.0.1/29", "10.0.0.2/29", "10.0.0.3/29"]
    assert pool.last_ip == "10.0.0.3/29"
    assert (pool.start, pool.end) == ("10.0.0.1", "10.0.0.6")  # defaulted and written back
    # NB: freeing .1 does not make it next: next-fit continues after lastIp.
    pool = ipv4.release(pool, "10.0.0.1/29")
    pool, address = ipv4.reserve(pool, "dynamic", network="blue")
    assert address == "10.0.0.4/29"


def test_next_fit_wraps_round_to_pool_start() -> None:
    pool, _ = reserve_all(pool29(), 6)
    pool = ipv4.release(pool, "10.0.0.2/29")
    pool = ipv4.release(pool, "10.0.0.5/29")
    assert pool.last_ip == "10.0.0.6/29"
    pool, address = ipv4.reserve(pool, "dynamic", network="blue")
    assert address == "10.0.0.2/29"
    pool, address = ipv4.reserve(pool, "dynamic", network="blue")
    assert address == "10.0.0.5/29"


@pytest.mark.parametrize(
    ("last_ip", "expected"),
    [
        ("10.0.0.2/29", "10.0.0.3/29"),
        ("10.0.0.2", "10.0.0.3/29"),  # plain form is accepted too
        ("10.0.0.6/29", "10.0.0.1/29"),  # last of the pool: wrap
        ("10.0.0.0/29", "10.0.0.1/29"),
        ("10.9.9.9/24", "10.0.0.1/29"),  # outside the cidr: no hint
        ("not-an-ip", "10.0.0.1/29"),
        ("2001:db8::1/64", "10.0.0.1/29"),
    ],
)
def test_last_ip_cursor(last_ip: str, expected: str) -> None:
    _, address = ipv4.reserve(pool29(last_ip=last_ip), "dynamic", network="blue")
    assert address == expected


def test_dynamic_respects_explicit_pool() -> None:
    pool = Ipv4Pool(cidr="10.0.0.0/24", start="10.0.0.100", end="10.0.0.101")
    pool, addresses = reserve_all(pool, 2)
    assert addresses == ["10.0.0.100/24", "10.0.0.101/24"]
    with pytest.raises(AddressExhausted, match=r"network blue.*10\.0\.0\.100-10\.0\.0\.101"):
        ipv4.reserve(pool, "dynamic", network="blue")


def test_exhaustion_names_the_network() -> None:
    pool, addresses = reserve_all(pool29(), 6)
    assert len(set(addresses)) == 6
    with pytest.raises(AddressExhausted, match="no free IPv4 address left in network blue"):
        ipv4.reserve(pool, "dynamic", network="blue")


def test_free_then_reallocate() -> None:
    pool, _ = reserve_all(pool29(), 6)
    pool = ipv4.release(pool, "10.0.0.4")
    pool, address = ipv4.reserve(pool, "dynamic", network="blue")
    assert address == "10.0.0.4/29"


def test_dynamic_never_hands_out_a_gateway_even_without_its_bit() -> None:
    # NB: routes added after alloc was initialised leave the gateway bit clear.
    pool = Ipv4Pool(
        cidr="10.0.0.0/29", alloc=ipv4.init_alloc("10.0.0.0/29"), gateways=("10.0.0.1",)
    )
    _, address = ipv4.reserve(pool, "dynamic", network="blue")
    assert address == "10.0.0.2/29"


def test_missing_alloc_is_initialised_on_the_fly() -> None:
    pool = Ipv4Pool(cidr="10.0.0.0/29", gateways=("10.0.0.1",))
    updated, address = ipv4.reserve(pool, "dynamic", network="blue")
    assert address == "10.0.0.2/29"
    assert updated.alloc == b64("e1")  # 1110 0001: network, gateway, .2, broadcast
    updated, address = ipv4.reserve(pool, "10.0.0.5/29", network="blue")
    assert updated.alloc == b64("c5")  # 1100 0101
    assert address == "10.0.0.5/29"


def test_static_reserves_exactly_that_address() -> None:
    pool = pool29()
    updated, address = ipv4.reserve(pool, "10.0.0.5/29", network="blue")
    assert address == "10.0.0.5/29"
    assert updated.alloc == b64("85")  # 1000 0101
    assert updated.last_ip == ""  # static does not move the cursor
    assert dataclasses.replace(updated, alloc=pool.alloc) == pool


def test_static_outside_pool_but_inside_cidr_is_allowed() -> None:
    pool = Ipv4Pool(cidr="10.0.0.0/24", start="10.0.0.100", end="10.0.0.200")
    _, address = ipv4.reserve(pool, "10.0.0.7/24", network="blue")
    assert address == "10.0.0.7/24"


def test_taken_static_is_refused() -> None:
    pool, _ = ipv4.reserve(pool29(), "10.0.0.5/29", network="blue")
    with pytest.raises(
        AddressInUse, match=r"^address 10\.0\.0\.5/29 is already in use in network blue$"
    ):
        ipv4.reserve(pool, "10.0.0.5/29", network="blue")


def test_dynamic_skips_a_static_reservation() -> None:
    pool, _ = ipv4.reserve(pool29(), "10.0.0.1/29", network="blue")
    _, address = ipv4.reserve(pool, "dynamic", network="blue")
    assert address == "10.0.0.2/29"


@pytest.mark.parametrize(
    ("request_text", "error", "message"),
    [
        ("10.0.0.5", InvalidAddressRequest, "CIDR form"),
        ("10.0.0.5/", InvalidAddressRequest, "CIDR form"),
        ("Dynamic", InvalidAddressRequest, "CIDR form"),  # keywords are case-sensitive
        ("2001:db8::5/64", InvalidAddressRequest, "CIDR form"),
        ("10.0.0.5/24", InvalidAddressRequest, "prefix length /29"),
        ("10.0.1.5/29", InvalidAddressRequest, "outside the cidr 10.0.0.0/29 of network blue"),
        ("10.0.0.0/29", InvalidAddressRequest, "network address"),
        ("10.0.0.7/29", InvalidAddressRequest, "broadcast address"),
        ("10.0.0.1/29", InvalidAddressRequest, "gateway of a route"),
    ],
)
def test_static_request_errors(request_text: str, error: type[Exception], message: str) -> None:
    pool = Ipv4Pool(cidr="10.0.0.0/29", gateways=("10.0.0.1",))
    with pytest.raises(error, match=message):
        ipv4.reserve(pool, request_text, network="blue")


@pytest.mark.parametrize("request_text", ["dynamic", "10.0.0.5/24"])
def test_l2_network_refuses_addresses(request_text: str) -> None:
    with pytest.raises(InvalidAddressRequest, match="network blue: it has no cidr"):
        ipv4.reserve(Ipv4Pool(), request_text, network="blue")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"start": "10.0.0.9"}, "allocation_pool.start 10.0.0.9 of network blue is outside"),
        ({"end": "bogus"}, "allocation_pool.end 'bogus' of network blue is not an IPv4"),
        ({"start": "10.0.0.5", "end": "10.0.0.4"}, "is empty: start 10.0.0.5 is after end"),
    ],
)
def test_unusable_pool_is_a_clear_error(fields: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidNetworkConfig, match=message):
        ipv4.reserve(pool29(**fields), "dynamic", network="blue")


def test_slash31_has_no_dynamic_pool_by_default() -> None:
    with pytest.raises(InvalidNetworkConfig, match="no default allocation_pool"):
        ipv4.reserve(Ipv4Pool(cidr="10.0.0.0/31"), "dynamic", network="blue")


@pytest.mark.parametrize(
    ("alloc", "error", "message"),
    [
        ("kA", CorruptAllocation, "alloc of network blue is not valid padded base64"),
        ("kA==", CorruptAllocation, "alloc of network blue holds 8 bits .* needs 256 bits"),
    ],
)
def test_corrupt_alloc_is_reported(alloc: str, error: type[Exception], message: str) -> None:
    pool = Ipv4Pool(cidr="10.0.0.0/24", alloc=alloc)
    with pytest.raises(error, match=message):
        ipv4.reserve(pool, "dynamic", network="blue")
    with pytest.raises(error, match=message):
        ipv4.release(pool, "10.0.0.5/24", network="blue")


@pytest.mark.parametrize(
    "address",
    [
        "",
        "none",
        "dynamic",  # §13.10: a DanmEp may carry this instead of an address
        "10.0.1.5/24",  # outside cidr
        "2001:db8::5/64",
        "10.0.0.0/29",  # network address stays reserved
        "10.0.0.7",  # broadcast stays reserved
        "10.0.0.1",  # gateway stays reserved
        "10.0.0.3/29",  # not reserved: nothing to do
    ],
)
def test_release_no_ops(address: str) -> None:
    pool = Ipv4Pool(cidr="10.0.0.0/29", alloc=b64("c1"), gateways=("10.0.0.1",))
    assert ipv4.release(pool, address) is pool


def test_release_of_l2_network_is_a_no_op() -> None:
    assert ipv4.release(Ipv4Pool(), "10.0.0.5/24") == Ipv4Pool()
    assert ipv4.release(Ipv4Pool(cidr="10.0.0.0/24"), "10.0.0.5/24").alloc == ""


@pytest.mark.parametrize("address", ["10.0.0.5/29", "10.0.0.5", "10.0.0.5/24"])
def test_release_clears_the_bit(address: str) -> None:
    pool = Ipv4Pool(cidr="10.0.0.0/29", alloc=b64("85"))
    assert ipv4.release(pool, address).alloc == b64("81")


def test_every_address_of_a_slash24_is_handed_out_once() -> None:
    pool = Ipv4Pool(cidr="10.0.0.0/24", alloc=ipv4.init_alloc("10.0.0.0/24", ["10.0.0.254"]))
    pool = dataclasses.replace(pool, gateways=("10.0.0.254",))
    pool, addresses = reserve_all(pool, 253)
    assert len(set(addresses)) == 253
    assert "10.0.0.254/24" not in addresses
    assert BitArray.from_base64(pool.alloc).count_set() == 256
    with pytest.raises(AddressExhausted):
        ipv4.reserve(pool, "dynamic", network="blue")
