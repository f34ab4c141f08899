"""Interface naming: container names per sequence/prefix/scheme, host VLAN/VxLAN names, limits."""

from __future__ import annotations

import pytest

from common.model import NetworkOptions, NetworkSpec
from common.rules.naming import (
    InterfaceNameError,
    check_interface_name,
    container_interface_name,
    parent_device_name,
    vlan_host_interface_name,
    vxlan_host_interface_name,
)


@pytest.mark.parametrize(
    ("scheme", "prefix", "sequence", "expected"),
    [
        ("", "", 0, "eth0"),
        ("", "int", 0, "eth0"),
        ("legacy", "int", 0, "eth0"),
        ("", "", 1, "eth1"),
        ("", "", 12, "eth12"),
        ("", "int", 1, "int1"),
        ("awesome", "int", 3, "int3"),
        ("legacy", "int", 3, "int"),
        ("legacy", "", 3, "eth3"),
        ("Legacy", "int", 3, "int3"),
        ("", "abcdefghijklmn", 1, "abcdefghijklmn1"),
        ("legacy", "abcdefghijklmno", 5, "abcdefghijklmno"),
    ],
)
def test_container_interface_name(scheme: str, prefix: str, sequence: int, expected: str) -> None:
    assert container_interface_name(scheme, prefix, sequence) == expected


@pytest.mark.parametrize(
    ("scheme", "prefix", "sequence", "message"),
    [
        (
            "",
            "abcdefghijklmn",
            10,
            r"'abcdefghijklmn10' is 16 bytes long, but Linux allows at most 15",
        ),
        ("legacy", "abcdefghijklmnop", 1, r"container_prefix 'abcdefghijklmnop'.*16 bytes long"),
        ("", "a/b", 1, r"contains characters Linux refuses: \['/'\]"),
        ("", "a b", 1, r"contains characters Linux refuses"),
        ("", "", -1, r"sequence number must be >= 0"),
    ],
)
def test_container_interface_name_refuses(
    scheme: str, prefix: str, sequence: int, message: str
) -> None:
    with pytest.raises(InterfaceNameError, match=message):
        container_interface_name(scheme, prefix, sequence)


@pytest.mark.parametrize(
    ("network_id", "vlan", "expected"),
    [("internal", 500, "internal.500"), ("abcdefghij", 4094, "abcdefghij.4094"), ("n", 1, "n.1")],
)
def test_vlan_host_interface_name(network_id: str, vlan: int, expected: str) -> None:
    assert vlan_host_interface_name(network_id, vlan) == expected


@pytest.mark.parametrize(
    ("network_id", "vlan", "message"),
    [
        # NB: an 11-character NetworkID was legal at the seed and overflows here (§13.18).
        ("abcdefghijk", 4094, r"'abcdefghijk\.4094' is 16 bytes long"),
        ("", 5, r"no NetworkID"),
        ("n", 0, r"vlan 0 is outside 1-4094"),
        ("n", 4095, r"vlan 4095 is outside 1-4094"),
    ],
)
def test_vlan_host_interface_name_refuses(network_id: str, vlan: int, message: str) -> None:
    with pytest.raises(InterfaceNameError, match=message):
        vlan_host_interface_name(network_id, vlan)


def test_vxlan_host_interface_name() -> None:
    assert vxlan_host_interface_name("internal") == "vx_internal"
    assert vxlan_host_interface_name("abcdefghijkl") == "vx_abcdefghijkl"
    with pytest.raises(InterfaceNameError, match=r"'vx_abcdefghijklm' is 16 bytes long"):
        vxlan_host_interface_name("abcdefghijklm")
    with pytest.raises(InterfaceNameError, match="no NetworkID"):
        vxlan_host_interface_name("")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (NetworkOptions(host_device="ens3"), "ens3"),
        (NetworkOptions(host_device="ens3", vlan=200), "nid.200"),
        (NetworkOptions(host_device="ens3", vxlan=60), "vx_nid"),
        (NetworkOptions(host_device="ens3", vlan=200, vxlan=60), "vx_nid"),
    ],
)
def test_parent_device_name(options: NetworkOptions, expected: str) -> None:
    assert parent_device_name(NetworkSpec(network_id="nid", options=options)) == expected


def test_parent_device_name_without_any_device() -> None:
    with pytest.raises(InterfaceNameError, match="has no host_device, vlan or vxlan"):
        parent_device_name(NetworkSpec(network_id="nid"))


def test_parent_device_name_refuses_long_vlan_name() -> None:
    spec = NetworkSpec(
        network_id="abcdefghijk", options=NetworkOptions(host_device="ens3", vlan=1000)
    )
    with pytest.raises(InterfaceNameError, match="16 bytes long"):
        parent_device_name(spec)


@pytest.mark.parametrize("name", ["", ".", "..", "a:b", "x" * 16, "é" * 8])
def test_check_interface_name_refuses(name: str) -> None:
    with pytest.raises(InterfaceNameError, match=r"^what: "):
        check_interface_name(name, "what")


@pytest.mark.parametrize("name", ["eth0", "a.b", "x" * 15, "vx_n-1"])
def test_check_interface_name_accepts(name: str) -> None:
    assert check_interface_name(name, "what") == name
