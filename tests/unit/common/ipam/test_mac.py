"""MAC generation (format, entropy source) and EUI-64 derivation (§6.6 example)."""

from __future__ import annotations

import re

import pytest

from common.ipam import mac


def test_random_mac_uses_the_danm_prefix_and_the_given_entropy():
    assert mac.random_mac(lambda n: bytes([0x12, 0x34, 0xAB][:n])) == "fa:16:3e:12:34:ab"


def test_random_mac_default_source_gives_valid_distinct_unicast_local_macs():
    macs = {mac.random_mac() for _ in range(64)}
    assert all(re.fullmatch(r"fa:16:3e(:[0-9a-f]{2}){3}", m) for m in macs)
    # NB: 64 draws of 24 random bits collide with probability ~1e-4; 60 distinct is safe.
    assert len(macs) > 60
    first_octet = int(next(iter(macs))[:2], 16)
    assert first_octet & 0x02
    assert not first_octet & 0x01


def test_random_mac_refuses_a_short_entropy_source():
    with pytest.raises(ValueError, match="2 bytes"):
        mac.random_mac(lambda n: b"\x00\x00")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fa:16:3e:12:34:56", 0xFA163E123456),
        ("FA:16:3E:12:34:56", 0xFA163E123456),
        ("00:00:00:00:00:00", 0),
    ],
)
def test_parse_mac(text, expected):
    assert mac.parse_mac(text) == expected


@pytest.mark.parametrize("text", ["", "fa:16:3e:12:34", "fa-16-3e-12-34-56", "fa:16:3e:12:34:5g"])
def test_parse_mac_rejects(text):
    with pytest.raises(mac.InvalidMacAddress, match="six colon-separated"):
        mac.parse_mac(text)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("fa:16:3e:12:34:56", 0xF8163EFFFE123456),
        ("00:00:00:00:00:00", 0x020000FFFE000000),
        ("02:00:00:00:00:01", 0x000000FFFE000001),
    ],
)
def test_eui64_interface_id(address, expected):
    assert mac.eui64_interface_id(address) == expected


@pytest.mark.parametrize(
    ("net6", "expected"),
    [
        # the §6.6 example
        ("2001:db8::/64", "2001:db8::f816:3eff:fe12:3456/64"),
        # host bits of net6 are masked, not added (§13.12)
        ("2001:db8::1/64", "2001:db8::f816:3eff:fe12:3456/64"),
        ("2001:db8:0:100::/56", "2001:db8:0:100:f816:3eff:fe12:3456/56"),
        ("::/64", "::f816:3eff:fe12:3456/64"),
    ],
)
def test_eui64_address(net6, expected):
    assert mac.eui64_address(net6, "fa:16:3e:12:34:56") == expected


@pytest.mark.parametrize(
    ("net6", "match"),
    [
        ("2001:db8::/80", "longer than /64"),
        ("2001:db8::", "expected an IPv6 CIDR"),
        ("10.0.0.0/8", "invalid net6"),
        ("garbage", "invalid net6"),
    ],
)
def test_eui64_address_rejects(net6, match):
    with pytest.raises(ValueError, match=match):
        mac.eui64_address(net6, "fa:16:3e:12:34:56")
