"""The kernel adapter's pure parts: error mapping, names, VxLAN groups, route specs, ARP frames.

No root, no namespaces: input the adapter must refuse is refused before any socket is opened
(checked against a namespace path that does not exist, so a regression fails loudly with
NamespaceNotFound instead of touching this machine's interfaces).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.io.netlink import (
    MAIN_TABLE,
    MAX_VNI,
    AddressExists,
    AddressInfo,
    DeviceBusy,
    GatewayUnreachable,
    InvalidLinkName,
    InvalidNetlinkRequest,
    InvalidRouteSpec,
    LinkExists,
    LinkNotFound,
    NetlinkFailure,
    NotSupported,
    PermissionDenied,
    PyrouteNetlink,
    RouteExists,
    RouteSpec,
    RuleExists,
    checked_link_name,
    checked_table,
    failure_for_errno,
    gratuitous_arp_frames,
    interface_sysctl_path,
    ipv6_interface_sysctls,
    netns_path,
    pick_vxlan_local_address,
    route_specs,
    sysctl_path,
    temporary_link_name,
    vxlan_group,
)
from common.io.netlink_model import mac_bytes

REPO = Path(__file__).resolve().parents[4]
NO_SUCH_NETNS = "/var/run/netns/danmt-unit-does-not-exist"

# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind", "expected"),
    [
        (errno.EEXIST, "link", LinkExists),
        (errno.EEXIST, "address", AddressExists),
        (errno.EEXIST, "route", RouteExists),
        (errno.EEXIST, "rule", RuleExists),
        (errno.ENODEV, "link", LinkNotFound),
        (errno.ENODEV, "route", LinkNotFound),
        (errno.EBUSY, "link", DeviceBusy),
        (errno.ENETUNREACH, "route", GatewayUnreachable),
        (errno.EOPNOTSUPP, "link", NotSupported),
        (errno.EPERM, "link", PermissionDenied),
        (errno.EACCES, "other", PermissionDenied),
    ],
)
def test_errno_maps_to_our_exception(code, kind, expected):
    failure = failure_for_errno(code, operation="do the thing", kind=kind)

    assert type(failure) is expected
    assert failure.errno == code
    assert failure.operation == "do the thing"
    assert str(failure).startswith("cannot do the thing: ")


@pytest.mark.parametrize(("code", "kind"), [(errno.EEXIST, "other"), (errno.EINVAL, "link")])
def test_unclassified_errno_is_the_base_failure(code, kind):
    failure = failure_for_errno(code, operation="x", kind=kind)

    assert type(failure) is NetlinkFailure
    assert failure.errno == code


def test_missing_link_kind_hints_at_the_kernel_module():
    failure = failure_for_errno(errno.EOPNOTSUPP, operation="create ipvlan", kind="link")

    assert "kernel module" in str(failure)


def test_invalid_request_is_also_a_value_error():
    assert issubclass(InvalidNetlinkRequest, ValueError)
    assert issubclass(InvalidRouteSpec, InvalidNetlinkRequest)
    assert issubclass(InvalidLinkName, NetlinkFailure)


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["", ".", "..", "a" * 16, "eth/1", "eth:1", "eth 1", "ä" * 8], ids=repr
)
def test_link_names_linux_refuses_are_refused(name):
    with pytest.raises(InvalidLinkName):
        checked_link_name(name, operation="create link")


@pytest.mark.parametrize("name", ["eth0", "a" * 15, "eth0.100", "vx_net1", "net-1.4094"])
def test_link_names_linux_accepts_pass(name):
    assert checked_link_name(name, operation="create link") == name


def test_temporary_names_are_15_bytes_valid_and_distinct():
    random_names = {temporary_link_name() for _ in range(50)}
    derived = temporary_link_name("4f7c7a2e-5a1b-4c8e-9d61-0b2a7f0c1e55")

    assert len(random_names) == 50
    for name in [*random_names, derived]:
        assert len(name) == 15
        assert name.startswith("dnm")
        assert checked_link_name(name, operation="x") == name
    assert derived == temporary_link_name("4f7c7a2e-5a1b-4c8e-9d61-0b2a7f0c1e55")
    assert derived != temporary_link_name("4f7c7a2e-5a1b-4c8e-9d61-0b2a7f0c1e56")


@pytest.mark.parametrize(
    ("given", "path"),
    [("/proc/42/ns/net", "/proc/42/ns/net"), ("pod1", "/var/run/netns/pod1")],
)
def test_netns_path(given, path):
    assert netns_path(given) == path


def test_empty_netns_is_refused():
    with pytest.raises(InvalidNetlinkRequest):
        netns_path("")


@pytest.mark.parametrize(("table", "kernel"), [(0, MAIN_TABLE), (100, 100), (255, 255)])
def test_table_zero_means_main(table, kernel):
    assert checked_table(table) == kernel


def test_negative_table_is_refused():
    with pytest.raises(InvalidNetlinkRequest):
        checked_table(-1)


# -- VxLAN -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vni", "local", "group"),
    [
        (1, "10.0.0.1", "239.0.0.1"),
        (50, "10.0.0.1", "239.0.0.50"),
        (300, "10.0.0.1", "239.0.1.44"),
        (MAX_VNI, "10.0.0.1", "239.255.255.255"),
        (50, "fd00::1", "ff02::32"),
        (300, "2001:db8::1", "ff02::12c"),
        (MAX_VNI, "fd00::1", "ff02::ff:ffff"),
    ],
)
def test_vxlan_group_is_base_plus_vni(vni, local, group):
    assert vxlan_group(vni, ipaddress.ip_address(local)) == ipaddress.ip_address(group)


@pytest.mark.parametrize("vni", [0, -1, MAX_VNI + 1])
def test_vni_out_of_range_is_refused(vni):
    with pytest.raises(InvalidNetlinkRequest, match="VNI"):
        vxlan_group(vni, ipaddress.ip_address("10.0.0.1"))


def _address(cidr: str, scope: str = "universe") -> AddressInfo:
    return AddressInfo(
        link_index=3,
        interface=ipaddress.ip_interface(cidr),
        scope=scope,
        broadcast=None,
        flags=0,
    )


@pytest.mark.parametrize(
    ("addresses", "expected"),
    [
        ([_address("fd00::1/64"), _address("10.0.0.1/24")], "10.0.0.1"),
        ([_address("10.0.0.2/24"), _address("10.0.0.1/24")], "10.0.0.2"),
        ([_address("fe80::1/64", "link"), _address("fd00::1/64")], "fd00::1"),
        ([_address("127.0.0.1/8", "host"), _address("fd00::1/64")], "fd00::1"),
        ([_address("fe80::1/64", "link")], None),
        ([], None),
    ],
)
def test_vxlan_local_address_prefers_universe_ipv4(addresses, expected):
    chosen = pick_vxlan_local_address(addresses)

    assert chosen == (None if expected is None else ipaddress.ip_address(expected))


# -- routes ------------------------------------------------------------------------------------


def test_routes_map_becomes_sorted_specs():
    specs = route_specs(
        {"10.2.0.0/16": "10.0.0.1", "10.1.0.0/24": "10.0.0.2", "10.1.0.0/16": "10.0.0.3"},
        family=4,
    )

    assert specs == [
        RouteSpec(ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_address("10.0.0.3")),
        RouteSpec(ipaddress.ip_network("10.1.0.0/24"), ipaddress.ip_address("10.0.0.2")),
        RouteSpec(ipaddress.ip_network("10.2.0.0/16"), ipaddress.ip_address("10.0.0.1")),
    ]


def test_route_destination_with_host_bits_is_normalised():
    (spec,) = route_specs({"10.1.2.3/16": "10.0.0.1"}, family=4)

    assert spec.destination == ipaddress.ip_network("10.1.0.0/16")


def test_ipv6_routes():
    (spec,) = route_specs({"::/0": "fd00::1"}, family=6, field="routes6")

    assert (spec.family, str(spec.destination), str(spec.gateway)) == (6, "::/0", "fd00::1")


@pytest.mark.parametrize("routes", [None, {}])
def test_no_routes(routes):
    assert route_specs(routes, family=4) == []


@pytest.mark.parametrize(
    ("routes", "family", "fragment"),
    [
        ({"10.0.0.0/33": "10.0.0.1"}, 4, "destination is not a CIDR"),
        ({"banana": "10.0.0.1"}, 4, "destination is not a CIDR"),
        ({"10.1.0.0": "10.0.0.1"}, 4, "needs a prefix length"),
        ({"10.1.0.0/16": "10.0.0"}, 4, "gateway is not an IP address"),
        ({"10.1.0.0/16": "fd00::1"}, 4, "holds IPv4 routes only"),
        ({"fd01::/64": "fd00::1"}, 4, "holds IPv4 routes only"),
        ({"10.1.0.0/16": "10.0.0.1"}, 6, "holds IPv6 routes only"),
        ({"10.1.0.0/16": "10.0.0.1", "10.1.5.0/16": "10.0.0.2"}, 4, "given twice"),
    ],
)
def test_bad_route_entries_are_reported(routes, family, fragment):
    with pytest.raises(InvalidRouteSpec, match=fragment) as caught:
        route_specs(routes, family=family, field="routes")
    assert "routes" in caught.value.operation


def test_every_bad_route_entry_is_reported_at_once():
    with pytest.raises(InvalidRouteSpec) as caught:
        route_specs({"x/8": "10.0.0.1", "10.0.0.0/8": "y", "10.9.0.0/16": "10.0.0.1"}, family=4)

    message = str(caught.value)
    assert "'x/8'" in message
    assert "'y'" in message
    assert "10.9.0.0/16" not in message


# -- sysctls -----------------------------------------------------------------------------------


def test_interface_sysctl_path_keeps_dots_in_the_interface_name():
    assert interface_sysctl_path(6, "eth0.100", "accept_ra") == (
        "/proc/sys/net/ipv6/conf/eth0.100/accept_ra"
    )
    assert (
        interface_sysctl_path(4, "vx_a", "arp_notify") == "/proc/sys/net/ipv4/conf/vx_a/arp_notify"
    )


@pytest.mark.parametrize("components", [("net", "..", "x"), ("net", ""), ("net", "a/b")])
def test_sysctl_path_refuses_escaping_components(components):
    with pytest.raises(InvalidNetlinkRequest):
        sysctl_path(*components)


def test_interface_sysctl_path_refuses_bad_interface_names():
    with pytest.raises(InvalidLinkName):
        interface_sysctl_path(6, "..", "accept_ra")


@pytest.mark.parametrize(
    ("enabled", "settings"),
    [
        (True, {"disable_ipv6": "0", "autoconf": "0", "accept_ra": "0"}),
        (False, {"disable_ipv6": "1"}),
    ],
)
def test_ipv6_interface_sysctls(enabled, settings):
    assert ipv6_interface_sysctls(enabled) == settings


# -- gratuitous ARP ----------------------------------------------------------------------------


def test_gratuitous_arp_frames_layout():
    mac = "02:11:22:33:44:55"
    address = ipaddress.IPv4Address("10.1.2.3")

    request, reply = gratuitous_arp_frames(mac, address)

    sender = bytes.fromhex("021122334455")
    for frame in (request, reply):
        assert len(frame) == 60
        assert frame[0:6] == b"\xff" * 6
        assert frame[6:12] == sender
        assert frame[12:14] == b"\x08\x06"
        assert frame[14:20] == bytes.fromhex("000108000604")
        assert frame[22:28] == sender
        assert frame[28:32] == address.packed
        assert frame[38:42] == address.packed
    assert request[20:22] == b"\x00\x01"
    assert request[32:38] == b"\x00" * 6
    assert reply[20:22] == b"\x00\x02"
    assert reply[32:38] == b"\xff" * 6


@pytest.mark.parametrize("mac", ["", "02:11:22:33:44", "02:11:22:33:44:zz", "0211.2233.4455"])
def test_malformed_mac_is_refused(mac):
    with pytest.raises(InvalidNetlinkRequest):
        mac_bytes(mac)


# -- the adapter refuses bad input before any socket ------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda nl: nl.get_link("a" * 16, netns=NO_SUCH_NETNS), id="long-name"),
        pytest.param(
            lambda nl: nl.add_address("eth0", "10.0.0.1", netns=NO_SUCH_NETNS), id="no-prefix"
        ),
        pytest.param(
            lambda nl: nl.add_address("eth0", "10.0.0.300/24", netns=NO_SUCH_NETNS),
            id="bad-address",
        ),
        pytest.param(
            lambda nl: nl.write_sysctls(
                {"net.ipv6.conf.all.disable_ipv6": "0"}, netns=NO_SUCH_NETNS
            ),
            id="dotted-sysctl",
        ),
        pytest.param(
            lambda nl: nl.create_ipvlan("eth0", mode="l4", netns=NO_SUCH_NETNS), id="ipvlan-mode"
        ),
        pytest.param(
            lambda nl: nl.create_vlan("v", parent="eth0", vlan_id=4095, netns=NO_SUCH_NETNS),
            id="vlan-id",
        ),
        pytest.param(
            lambda nl: nl.create_vxlan(
                "vx",
                parent="eth0",
                vni=5,
                local=ipaddress.ip_address("10.0.0.1"),
                group=ipaddress.ip_address("ff02::5"),
                netns=NO_SUCH_NETNS,
            ),
            id="vxlan-family-mix",
        ),
        pytest.param(
            lambda nl: nl.move_link("eth0", NO_SUCH_NETNS, new_name="x" * 16, netns=NO_SUCH_NETNS),
            id="move-long-name",
        ),
        pytest.param(
            lambda nl: nl.add_rule(
                ipaddress.ip_network("10.0.0.0/24"), table=0, netns=NO_SUCH_NETNS
            ),
            id="rule-main-table",
        ),
    ],
)
def test_adapter_refuses_bad_input_before_touching_the_kernel(call):
    with pytest.raises(InvalidNetlinkRequest):
        call(PyrouteNetlink())


_PROBE = """
import json, sys
import common.io.netlink
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "pyroute2")))
"""


def test_importing_the_adapter_does_not_import_pyroute2():
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == []


def test_the_import_probe_sees_pyroute2_when_it_is_imported():
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE.replace("import common.io.netlink", "import pyroute2")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert "pyroute2" in json.loads(probe.stdout)
