"""The family-generic pool helpers behave the same over an IPv4 and an IPv6 network."""

from __future__ import annotations

import ipaddress

import pytest

from common.ipam import _pool
from common.ipam.bitarray import BitArray
from common.ipam.errors import AddressExhausted, InvalidNetworkConfig

NET4 = ipaddress.ip_network("10.0.0.0/29")
NET6 = ipaddress.ip_network("fd00::/125")


@pytest.mark.parametrize(
    ("net", "address", "expected"),
    [
        (NET4, "10.0.0.5", 5),
        (NET6, "fd00::5", 5),
        (NET4, "10.0.0.9", None),  # outside
        (NET6, "fd00::9", None),
        (NET4, "::a00:5", None),  # other family, even where the integer would fit
        (NET6, "0.0.0.5", None),
    ],
)
def test_offset_in(net: _pool.IPNetwork, address: str, expected: int | None) -> None:
    assert _pool.offset_in(net, ipaddress.ip_address(address)) == expected


@pytest.mark.parametrize("net", [NET4, NET6])
def test_fresh_alloc_reserves_first_last_and_gateways_of_its_own_family(
    net: _pool.IPNetwork,
) -> None:
    gateways = [str(net[2]), "10.0.0.3", "fd00::3", "garbage"]
    bits = BitArray.from_base64(_pool.fresh_alloc(net, gateways), length=8)
    assert [bits.get(i) for i in range(8)] == [True, False, True, True, False, False, False, True]


@pytest.mark.parametrize(
    ("net", "start", "end", "message"),
    [
        (NET4, "10.0.0.6", "10.0.0.2", r"^pool of network blue is empty: start 10\.0\.0\.6 is"),
        (
            NET6,
            "fd00::9",
            "",
            r"^pool\.start fd00::9 of network blue is outside the net fd00::/125$",
        ),
        (NET4, "fd00::1", "", r"^pool\.start 'fd00::1' of network blue is not an IPv4 address$"),
        (NET6, "", "10.0.0.1", r"^pool\.end '10\.0\.0\.1' of network blue is not an IPv6 address$"),
    ],
)
def test_pool_bounds_errors_name_the_field(
    net: _pool.IPNetwork, start: str, end: str, message: str
) -> None:
    with pytest.raises(InvalidNetworkConfig, match=message):
        _pool.pool_bounds(net, start, end, field="pool", container="the net", network="blue")


@pytest.mark.parametrize(("net", "family"), [(NET4, "IPv4"), (NET6, "IPv6")])
def test_take_next_free_skips_gateways_and_reports_exhaustion(
    net: _pool.IPNetwork, family: str
) -> None:
    bits = BitArray(8)
    taken = [
        _pool.take_next_free(net, bits, 1, 3, last_ip="", gateways={2}, network="blue")
        for _ in range(2)
    ]
    assert taken == [1, 3]
    with pytest.raises(AddressExhausted, match=f"^no free {family} address left in network blue"):
        _pool.take_next_free(net, bits, 1, 3, last_ip="", gateways={2}, network="blue")


@pytest.mark.parametrize("net", [NET4, NET6])
def test_released_alloc_frees_only_a_taken_ordinary_address(net: _pool.IPNetwork) -> None:
    alloc = BitArray(8)
    for offset in (1, 2, 7):
        alloc.set(offset)
    text = alloc.to_base64()

    def release(offset: int) -> str | None:
        return _pool.released_alloc(net, net[offset], text, [str(net[2])], what="alloc")

    freed = release(1)
    assert freed is not None
    assert not BitArray.from_base64(freed, length=8).get(1)
    # first, last and gateway addresses stay reserved; a clear bit has nothing to free
    assert [release(0), release(7), release(2), release(4)] == [None, None, None, None]
