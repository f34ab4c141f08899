"""``PyrouteNetlink`` against the real host kernel, inside throwaway namespaces.

The host kernel has veth, macvlan, vxlan and bridge but no ipvlan/8021q/dummy, so macvlan stands
in for ipvlan here (same create/move/rename/address/route code path); ipvlan and VLAN themselves
are covered by tests/vm/test_netlink_adapter.py in the QEMU guest. Results are read back with raw
pyroute2 (or ``ip``) inside the namespace, not only through the adapter's own parsing.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from common.io.netlink import (
    MAIN_TABLE,
    AddressExists,
    GatewayUnreachable,
    InvalidLinkName,
    LinkExists,
    LinkNotFound,
    NamespaceNotFound,
    PyrouteNetlink,
    RouteExists,
    RouteSpec,
    RuleExists,
    SysctlFailure,
    ipv6_interface_sysctls,
    route_specs,
)
from tests.netns_helpers import (
    HostAndPod,
    create_netns,
    delete_netns,
    ip,
    netns_path,
    requires_netns,
    unique_name,
)

pytestmark = [pytest.mark.netns, requires_netns]

IFA_F_NODAD = 0x02
IFA_F_TENTATIVE = 0x40
ETH_P_ARP = 0x0806


@contextmanager
def raw_ipr(path: str) -> Iterator[Any]:
    from pyroute2 import IPRoute

    with IPRoute(netns=path, flags=0) as ipr:
        yield ipr


def read_sysctl(netns: str, relative: str) -> str:
    result = subprocess.run(
        ["ip", "netns", "exec", netns, "cat", f"/proc/sys/{relative}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.strip()


def plumb_pod_interface(netlink: PyrouteNetlink, world: HostAndPod, *, name: str = "eth1") -> str:
    """DANM's IPVLAN steps with macvlan: create on the host, move+rename, address, up."""
    child = netlink.create_macvlan(world.parent, netns=world.host_path)
    netlink.move_link(child.name, world.pod_path, new_name=name, netns=world.host_path)
    netlink.add_address(name, "10.77.0.5/24", netns=world.pod_path)
    netlink.add_address(name, "fd77::5/64", netns=world.pod_path)
    netlink.set_link_up(name, netns=world.pod_path)
    return name


# -- VxLAN (netwatcher) ------------------------------------------------------------------------


def test_vxlan_on_veth_parent_has_danm_parameters(netlink: PyrouteNetlink, world: HostAndPod):
    local = netlink.vxlan_local_address(world.parent, netns=world.host_path)
    assert local == ipaddress.ip_address("10.77.0.1")

    created = netlink.create_vxlan(
        "vx_net1", parent=world.parent, vni=300, local=local, netns=world.host_path
    )

    with raw_ipr(world.host_path) as ipr:
        (msg,) = ipr.link("get", ifname="vx_net1")
        (parent_msg,) = ipr.link("get", ifname=world.parent)
    data = msg.get(("linkinfo", "data"))
    assert msg.get(("linkinfo", "kind")) == "vxlan"
    assert data.get("vxlan_id") == 300
    assert data.get("vxlan_group") == "239.0.1.44"
    assert data.get("vxlan_local") == "10.77.0.1"
    assert data.get("vxlan_port") == 4789
    assert data.get("vxlan_link") == parent_msg["index"]
    assert (data.get("vxlan_learning"), data.get("vxlan_l2miss"), data.get("vxlan_l3miss")) == (
        1,
        1,
        1,
    )
    assert msg["flags"] & 1, "netwatcher sets the VxLAN link up"
    assert created.vxlan is not None
    assert created.vxlan.group == ipaddress.ip_address("239.0.1.44")
    assert (created.kind, created.parent_name, created.up) == ("vxlan", world.parent, True)
    assert netlink.get_link("vx_net1", netns=world.host_path) == created


def test_vxlan_with_ipv6_local_uses_ff02_group(netlink: PyrouteNetlink, world: HostAndPod):
    local = ipaddress.ip_address("fd77::1")

    netlink.create_vxlan("vx_v6", parent=world.parent, vni=50, local=local, netns=world.host_path)

    with raw_ipr(world.host_path) as ipr:
        (msg,) = ipr.link("get", ifname="vx_v6")
    data = msg.get(("linkinfo", "data"))
    assert data.get("vxlan_group6") == "ff02::32"
    assert data.get("vxlan_local6") == "fd77::1"


def test_vxlan_local_address_falls_back_to_ipv6_then_none(
    netlink: PyrouteNetlink, world: HostAndPod
):
    ip("-n", world.host, "addr", "del", world.parent_v4, "dev", world.parent)
    assert netlink.vxlan_local_address(world.parent, netns=world.host_path) == (
        ipaddress.ip_address("fd77::1")
    )
    ip("-n", world.host, "addr", "del", world.parent_v6, "dev", world.parent)
    # NB: only the link-local fe80:: address (scope link) is left.
    assert netlink.vxlan_local_address(world.parent, netns=world.host_path) is None


def test_list_links_reports_kind_parent_and_master(netlink: PyrouteNetlink, world: HostAndPod):
    netlink.create_vxlan(
        "vx_l",
        parent=world.parent,
        vni=7,
        local=ipaddress.ip_address("10.77.0.1"),
        netns=world.host_path,
    )
    netlink.create_macvlan(world.parent, name="mv0", netns=world.host_path)
    ip("-n", world.host, "link", "add", "br0", "type", "bridge")
    ip("-n", world.host, "link", "set", "mv0", "master", "br0")

    links = {link.name: link for link in netlink.list_links(netns=world.host_path)}

    assert (links["vx_l"].kind, links["vx_l"].parent_name) == ("vxlan", world.parent)
    assert links["vx_l"].vxlan is not None
    assert links["vx_l"].vxlan.vni == 7
    assert (links["mv0"].kind, links["mv0"].parent_name) == ("macvlan", world.parent)
    assert (links["mv0"].master_name, links["br0"].kind) == ("br0", "bridge")
    assert links[world.parent].kind == "veth"


# -- Pod interface: create, move, rename, addresses, routes, rules ----------------------------


def test_child_link_moved_renamed_addressed_and_routed_in_pod(
    netlink: PyrouteNetlink, world: HostAndPod
):
    parent_mtu = netlink.get_link(world.parent, netns=world.host_path).mtu
    plumb_pod_interface(netlink, world)
    netlink.set_interface_sysctls("eth1", ipv6_interface_sysctls(True), netns=world.pod_path)
    netlink.add_routes(
        route_specs({"10.88.0.0/16": "10.77.0.254"}, family=4), device="eth1", netns=world.pod_path
    )
    netlink.add_routes(
        route_specs({"fd88::/64": "fd77::fe"}, family=6, field="routes6"),
        device="eth1",
        netns=world.pod_path,
    )
    netlink.add_rule(ipaddress.ip_interface("10.77.0.5/24"), table=100, netns=world.pod_path)
    netlink.add_rule(ipaddress.ip_interface("fd77::5/64"), table=100, netns=world.pod_path)
    netlink.add_routes(
        route_specs({"0.0.0.0/0": "10.77.0.254"}, family=4),
        device="eth1",
        table=100,
        netns=world.pod_path,
    )
    netlink.add_routes(
        route_specs({"::/0": "fd77::fe"}, family=6), device="eth1", table=100, netns=world.pod_path
    )

    with raw_ipr(world.host_path) as host_ipr:
        assert host_ipr.link_lookup(ifname="eth1") == []
        assert [
            m.get("ifname")
            for m in host_ipr.link("dump")
            if m.get(("linkinfo", "kind")) == "macvlan"
        ] == []
    with raw_ipr(world.pod_path) as ipr:
        (link,) = ipr.link("get", ifname="eth1")
        index = link["index"]
        addresses = {m.get("address"): m for m in ipr.addr("dump", index=index)}
        main_routes = [m for m in ipr.route("dump", table=MAIN_TABLE) if m.get("gateway")]
        table_routes = list(ipr.route("dump", table=100))
        rules = [m for m in ipr.rule("dump") if m.get("table") == 100]
    assert link.get(("linkinfo", "kind")) == "macvlan"
    assert link["flags"] & 1
    assert link.get("mtu") == parent_mtu
    assert link.get("link_netnsid") is not None, "its parent lives in another namespace"
    assert addresses["10.77.0.5"]["prefixlen"] == 24
    assert addresses["10.77.0.5"].get("broadcast") == "10.77.0.255"
    v6_flags = addresses["fd77::5"].get("IFA_FLAGS") or addresses["fd77::5"]["flags"]
    assert v6_flags & IFA_F_NODAD
    assert not v6_flags & IFA_F_TENTATIVE
    assert sorted(
        (m.get("dst"), m.get("dst_len"), m.get("gateway"), m.get("oif")) for m in main_routes
    ) == [
        ("10.88.0.0", 16, "10.77.0.254", index),
        ("fd88::", 64, "fd77::fe", index),
    ]
    assert sorted((m.get("dst"), m.get("gateway"), m.get("oif")) for m in table_routes) == [
        (None, "10.77.0.254", index),
        (None, "fd77::fe", index),
    ]
    assert sorted((m["family"], m.get("src"), m.get("src_len")) for m in rules) == [
        (socket.AF_INET, "10.77.0.5", 24),
        (socket.AF_INET6, "fd77::5", 64),
    ]
    assert read_sysctl(world.pod, "net/ipv6/conf/eth1/accept_ra") == "0"
    assert read_sysctl(world.pod, "net/ipv6/conf/eth1/autoconf") == "0"
    assert read_sysctl(world.pod, "net/ipv6/conf/eth1/disable_ipv6") == "0"
    # NB: and the adapter's own readers agree with the raw dump.
    assert [r.destination for r in netlink.list_routes(table=100, netns=world.pod_path)] == [
        ipaddress.ip_network("0.0.0.0/0"),
        ipaddress.ip_network("::/0"),
    ]
    assert {
        (r.source, r.table) for r in netlink.list_rules(netns=world.pod_path) if r.table == 100
    } == {
        (ipaddress.ip_interface("10.77.0.5/24"), 100),
        (ipaddress.ip_interface("fd77::5/64"), 100),
    }


def test_sysctls_of_interface_with_dot_in_name(netlink: PyrouteNetlink, world: HostAndPod):
    plumb_pod_interface(netlink, world, name="eth0.100")

    netlink.set_interface_sysctls("eth0.100", ipv6_interface_sysctls(False), netns=world.pod_path)

    assert read_sysctl(world.pod, "net/ipv6/conf/eth0.100/disable_ipv6") == "1"
    assert read_sysctl(world.pod, "net/ipv6/conf/all/disable_ipv6") == "0", "only that one"


def test_namespace_wide_sysctl_is_written_in_that_namespace_only(
    netlink: PyrouteNetlink, world: HostAndPod
):
    netlink.write_sysctls({"net/ipv6/conf/default/accept_ra": "0"}, netns=world.pod_path)

    assert read_sysctl(world.pod, "net/ipv6/conf/default/accept_ra") == "0"
    assert read_sysctl(world.host, "net/ipv6/conf/default/accept_ra") == "1"


def test_sysctl_of_missing_interface_is_a_sysctl_failure(
    netlink: PyrouteNetlink, world: HostAndPod
):
    with pytest.raises(SysctlFailure) as caught:
        netlink.set_interface_sysctls("nosuch0", {"accept_ra": "0"}, netns=world.pod_path)
    assert caught.value.errno == 2
    assert "nosuch0" in str(caught.value)


def test_gratuitous_arp_reaches_the_wire(netlink: PyrouteNetlink, world: HostAndPod):
    from pyroute2.netns import create_socket

    plumb_pod_interface(netlink, world)
    pod_mac = netlink.get_link("eth1", netns=world.pod_path).mac
    assert pod_mac is not None
    capture = create_socket(
        netns=world.peer_path,
        family=socket.AF_PACKET,
        socket_type=socket.SOCK_RAW,
        proto=socket.htons(ETH_P_ARP),
        flags=0,
    )
    with capture:
        capture.bind((world.peer, ETH_P_ARP))
        capture.settimeout(5)

        netlink.announce_ipv4("eth1", ipaddress.IPv4Address("10.77.0.5"), netns=world.pod_path)

        frames: list[bytes] = []
        while len(frames) < 2:
            frame = capture.recv(2048)
            if frame[6:12] == bytes.fromhex(pod_mac.replace(":", "")):
                frames.append(frame)
    request, reply = frames
    assert request[20:22] == b"\x00\x01"
    assert reply[20:22] == b"\x00\x02"
    for frame in frames:
        assert frame[28:32] == frame[38:42] == ipaddress.IPv4Address("10.77.0.5").packed


# -- failures ----------------------------------------------------------------------------------


def test_move_to_taken_name_raises_link_exists_and_removes_the_link(
    netlink: PyrouteNetlink, world: HostAndPod
):
    plumb_pod_interface(netlink, world)
    child = netlink.create_macvlan(world.parent, netns=world.host_path)

    with pytest.raises(LinkExists):
        netlink.move_link(child.name, world.pod_path, new_name="eth1", netns=world.host_path)

    with pytest.raises(LinkNotFound):
        netlink.get_link(child.name, netns=world.host_path)


def test_move_to_missing_namespace_removes_the_link(netlink: PyrouteNetlink, world: HostAndPod):
    child = netlink.create_macvlan(world.parent, netns=world.host_path)
    missing = netns_path(unique_name())

    with pytest.raises(NamespaceNotFound):
        netlink.move_link(child.name, missing, netns=world.host_path)

    assert not Path(missing).exists(), "flags=0: a namespace must never be created by opening"
    with pytest.raises(LinkNotFound):
        netlink.get_link(child.name, netns=world.host_path)


def test_create_with_existing_name_is_link_exists(netlink: PyrouteNetlink, world: HostAndPod):
    netlink.create_macvlan(world.parent, name="mv0", netns=world.host_path)

    with pytest.raises(LinkExists) as caught:
        netlink.create_macvlan(world.parent, name="mv0", netns=world.host_path)
    assert caught.value.errno == 17


def test_create_on_missing_parent_is_link_not_found(netlink: PyrouteNetlink, world: HostAndPod):
    with pytest.raises(LinkNotFound, match="parent device nosuch0 does not exist"):
        netlink.create_vxlan(
            "vx_x",
            parent="nosuch0",
            vni=5,
            local=ipaddress.ip_address("10.77.0.1"),
            netns=world.host_path,
        )


def test_rename_down_link_and_rename_onto_a_taken_name(netlink: PyrouteNetlink, world: HostAndPod):
    netlink.create_macvlan(world.parent, name="mv0", netns=world.host_path)
    netlink.create_macvlan(world.parent, name="mv1", netns=world.host_path)
    netlink.set_link_up("mv0", netns=world.host_path)
    netlink.set_link_down("mv0", netns=world.host_path)

    netlink.rename_link("mv0", "mv0.renamed", netns=world.host_path)

    renamed = netlink.get_link("mv0.renamed", netns=world.host_path)
    assert (renamed.kind, renamed.up, renamed.parent_name) == ("macvlan", False, world.parent)
    with pytest.raises(LinkExists):
        netlink.rename_link("mv0.renamed", "mv1", netns=world.host_path)


def test_delete_in_pod_netns_then_again_is_link_not_found(
    netlink: PyrouteNetlink, world: HostAndPod
):
    plumb_pod_interface(netlink, world)

    netlink.delete_link("eth1", netns=world.pod_path)

    with raw_ipr(world.pod_path) as ipr:
        assert ipr.link_lookup(ifname="eth1") == []
    with pytest.raises(LinkNotFound):
        netlink.delete_link("eth1", netns=world.pod_path)


def test_name_longer_than_15_bytes_is_refused_before_the_kernel(
    netlink: PyrouteNetlink, world: HostAndPod
):
    with pytest.raises(InvalidLinkName, match="16 bytes long"):
        netlink.create_macvlan(world.parent, name="a" * 16, netns=world.host_path)
    child = netlink.create_macvlan(world.parent, netns=world.host_path)
    with pytest.raises(InvalidLinkName):
        netlink.move_link(
            child.name, world.pod_path, new_name="eth-much-too-long", netns=world.host_path
        )

    with raw_ipr(world.host_path) as ipr:
        names = {m.get("ifname") for m in ipr.link("dump")}
    assert "a" * 16 not in names
    assert "a" * 15 not in names
    assert child.name in names, "refused before the move: the kernel never saw the request"


def test_duplicate_address_route_and_rule(netlink: PyrouteNetlink, world: HostAndPod):
    plumb_pod_interface(netlink, world)
    route = RouteSpec(ipaddress.ip_network("10.88.0.0/16"), ipaddress.ip_address("10.77.0.254"))
    netlink.add_routes([route], device="eth1", netns=world.pod_path)
    netlink.add_rule(ipaddress.ip_network("10.77.0.0/24"), table=7, netns=world.pod_path)

    with pytest.raises(AddressExists):
        netlink.add_address("eth1", "10.77.0.5/24", netns=world.pod_path)
    with pytest.raises(RouteExists):
        netlink.add_routes([route], device="eth1", netns=world.pod_path)
    with pytest.raises(RuleExists):
        netlink.add_rule(ipaddress.ip_network("10.77.0.0/24"), table=7, netns=world.pod_path)


def test_gateway_off_the_device_subnet_is_unreachable(netlink: PyrouteNetlink, world: HostAndPod):
    plumb_pod_interface(netlink, world)
    route = RouteSpec(ipaddress.ip_network("10.88.0.0/16"), ipaddress.ip_address("10.99.0.1"))

    with pytest.raises(GatewayUnreachable):
        netlink.add_routes([route], device="eth1", netns=world.pod_path)


def _dead_pid_netns() -> str:
    child = subprocess.Popen(["true"])
    child.wait()
    return f"/proc/{child.pid}/ns/net"


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda nl, ns: nl.delete_link("eth1", netns=ns), id="delete_link"),
        pytest.param(lambda nl, ns: nl.get_link("eth1", netns=ns), id="get_link"),
        pytest.param(lambda nl, ns: nl.list_links(netns=ns), id="list_links"),
        pytest.param(
            lambda nl, ns: nl.add_address("eth1", "10.0.0.1/24", netns=ns), id="add_address"
        ),
        pytest.param(
            lambda nl, ns: nl.write_sysctls({"net/ipv6/conf/all/disable_ipv6": "0"}, netns=ns),
            id="write_sysctls",
        ),
        pytest.param(lambda nl, ns: nl.list_routes(netns=ns), id="list_routes"),
    ],
)
@pytest.mark.parametrize("which", ["deleted", "dead_pid", "plain_file", "other_namespace_kind"])
def test_any_missing_namespace_is_namespace_not_found(
    netlink: PyrouteNetlink, operation, which, tmp_path: Path
):
    if which == "deleted":
        name = create_netns()
        delete_netns(name)
        path = netns_path(name)
    elif which == "dead_pid":
        path = _dead_pid_netns()
    elif which == "plain_file":
        path = str(tmp_path / "not-a-netns")
        Path(path).write_text("")
    else:
        path = "/proc/self/ns/uts"

    with pytest.raises(NamespaceNotFound):
        operation(netlink, path)

    if which == "deleted":
        assert not Path(path).exists(), "opening must never create the namespace"


# -- resources ---------------------------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_two_hundred_operations_leak_no_descriptors(netlink: PyrouteNetlink, world: HostAndPod):
    plumb_pod_interface(netlink, world)
    missing = netns_path(unique_name())
    netlink.get_link("eth1", netns=world.pod_path)  # NB: warm up pyroute2's lazy imports.
    before = _open_fds()

    for round_number in range(40):
        netlink.get_link("eth1", netns=world.pod_path)
        netlink.list_addresses(world.parent, netns=world.host_path)
        with pytest.raises(LinkNotFound):
            netlink.delete_link("nosuch0", netns=world.pod_path)
        with pytest.raises(NamespaceNotFound):
            netlink.get_link("eth1", netns=missing)
        if round_number % 4 == 0:
            netlink.set_interface_sysctls("eth1", {"accept_ra": "0"}, netns=world.pod_path)
        else:
            with PyrouteNetlink() as session:
                session.list_routes(netns=world.pod_path)
                session.get_link("eth1", netns=world.pod_path)
                if round_number % 4 == 1:
                    session.announce_ipv4(
                        "eth1", ipaddress.IPv4Address("10.77.0.5"), netns=world.pod_path
                    )

    assert _open_fds() == before
