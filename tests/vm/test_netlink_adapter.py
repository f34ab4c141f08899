"""``PyrouteNetlink`` with the link kinds the host kernel lacks: IPVLAN, 802.1Q VLAN, dummy.

Marked ``vm``: skipped on the host, run inside the QEMU guest (tests/vm/policy.py). Shape of the
CNI plugins' tests: a dummy parent ``dm0`` (MTU 1400, so inheritance is visible) in a throwaway
"host" namespace, an empty "pod" namespace, both built with ``ip`` (tests/netns_helpers.py) and
always removed. Read-backs use raw pyroute2 inside the namespace, including the per-interface
IPv6 sysctls, which the kernel reports in ``IFLA_AF_SPEC`` (no ``ip netns exec`` needed).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from common.io.netlink import (
    MAIN_TABLE,
    LinkExists,
    LinkNotFound,
    NamespaceNotFound,
    PyrouteNetlink,
    ipv6_interface_sysctls,
    route_specs,
)
from tests.netns_helpers import (
    delete_netns,
    ip,
    kernel_supports,
    netns_path,
    remove_leftovers,
    requires_netns,
    throwaway_netns,
)

pytestmark = [pytest.mark.vm, requires_netns]

PARENT = "dm0"
PARENT_MTU = 1400
POLICY_TABLE = 201
IFA_F_NODAD = 0x02
IFA_F_TENTATIVE = 0x40


@pytest.fixture(scope="module", autouse=True)
def _guest_kernel() -> Iterator[None]:
    missing = [kind for kind in ("dummy", "ipvlan", "vlan") if not kernel_supports(kind)]
    if missing:
        pytest.skip(f"this kernel lacks link kinds {missing} (run in the QEMU guest)")
    yield
    remove_leftovers()


@dataclass(frozen=True)
class Namespaces:
    host: str
    pod: str

    @property
    def host_path(self) -> str:
        return netns_path(self.host)

    @property
    def pod_path(self) -> str:
        return netns_path(self.pod)


@pytest.fixture
def spaces() -> Iterator[Namespaces]:
    with throwaway_netns() as host, throwaway_netns() as pod:
        ip("-n", host, "link", "add", PARENT, "mtu", str(PARENT_MTU), "type", "dummy")
        ip("-n", host, "link", "set", PARENT, "up")
        ip("-n", host, "addr", "add", "10.66.0.1/24", "dev", PARENT)
        yield Namespaces(host=host, pod=pod)


@pytest.fixture
def netlink() -> PyrouteNetlink:
    return PyrouteNetlink()


@contextmanager
def raw_ipr(path: str) -> Iterator[Any]:
    from pyroute2 import IPRoute

    with IPRoute(netns=path, flags=0) as ipr:
        yield ipr


def inet6_conf(link: Any) -> dict[str, int]:
    """The interface's IPv6 sysctls as the kernel reports them over netlink."""
    for family, data in link.get("af_spec")["attrs"]:
        if family == "AF_INET6":
            for name, value in data["attrs"]:
                if name == "IFLA_INET6_CONF":
                    return dict(value)
    raise AssertionError("no IFLA_INET6_CONF in the link message")


# -- IPVLAN (DANM's built-in plugin) -----------------------------------------------------------


@pytest.mark.parametrize(("mode", "kernel_mode"), [("l2", 0), ("l3", 1), ("l3s", 2)])
def test_ipvlan_has_mode_parent_and_parents_mtu(
    netlink: PyrouteNetlink, spaces: Namespaces, mode, kernel_mode
):
    created = netlink.create_ipvlan(PARENT, mode=mode, netns=spaces.host_path)

    with raw_ipr(spaces.host_path) as ipr:
        (msg,) = ipr.link("get", ifname=created.name)
        (parent,) = ipr.link("get", ifname=PARENT)
    assert msg.get(("linkinfo", "kind")) == "ipvlan"
    assert msg.get(("linkinfo", "data")).get("ipvlan_mode") == kernel_mode
    assert msg.get("link") == parent["index"]
    assert msg.get("mtu") == PARENT_MTU
    assert not msg["flags"] & 1, "created down; it is brought up inside the pod"
    assert (created.kind, created.ipvlan_mode, created.parent_name) == ("ipvlan", mode, PARENT)
    assert len(created.name) == 15


def test_ipvlan_danm_flow_into_the_pod(netlink: PyrouteNetlink, spaces: Namespaces):
    with PyrouteNetlink() as session:
        child = session.create_ipvlan(PARENT, netns=spaces.host_path)
        session.move_link(child.name, spaces.pod_path, new_name="eth1", netns=spaces.host_path)
        session.add_address("eth1", "10.66.0.5/24", netns=spaces.pod_path)
        session.add_address("eth1", "fd66::5/64", netns=spaces.pod_path)
        session.set_link_up("eth1", netns=spaces.pod_path)
        session.set_interface_sysctls("eth1", ipv6_interface_sysctls(True), netns=spaces.pod_path)
        session.add_routes(
            route_specs({"10.67.0.0/16": "10.66.0.254"}, family=4),
            device="eth1",
            netns=spaces.pod_path,
        )
        session.add_rule(
            ipaddress.ip_interface("10.66.0.5/24"), table=POLICY_TABLE, netns=spaces.pod_path
        )
        session.add_routes(
            route_specs({"0.0.0.0/0": "10.66.0.254"}, family=4),
            device="eth1",
            table=POLICY_TABLE,
            netns=spaces.pod_path,
        )
        session.announce_ipv4("eth1", ipaddress.IPv4Address("10.66.0.5"), netns=spaces.pod_path)

    with raw_ipr(spaces.host_path) as ipr:
        assert ipr.link_lookup(ifname=child.name) == []
    with raw_ipr(spaces.pod_path) as ipr:
        (link,) = ipr.link("get", ifname="eth1")
        index = link["index"]
        addresses = {m.get("address"): m for m in ipr.addr("dump", index=index)}
        main = [m for m in ipr.route("dump", table=MAIN_TABLE) if m.get("gateway")]
        policy = list(ipr.route("dump", table=POLICY_TABLE))
        rules = [
            m for m in ipr.rule("dump", family=socket.AF_INET) if m.get("table") == POLICY_TABLE
        ]
    assert link.get(("linkinfo", "kind")) == "ipvlan"
    assert link["flags"] & 1
    assert link.get("mtu") == PARENT_MTU
    assert addresses["10.66.0.5"].get("broadcast") == "10.66.0.255"
    v6_flags = addresses["fd66::5"].get("IFA_FLAGS") or addresses["fd66::5"]["flags"]
    assert v6_flags & IFA_F_NODAD
    assert not v6_flags & IFA_F_TENTATIVE
    conf = inet6_conf(link)
    assert (conf["disable_ipv6"], conf["accept_ra"], conf["autoconf"]) == (0, 0, 0)
    assert [(m.get("dst"), m.get("gateway"), m.get("oif")) for m in main] == [
        ("10.67.0.0", "10.66.0.254", index)
    ]
    assert [(m.get("dst"), m.get("gateway"), m.get("oif")) for m in policy] == [
        (None, "10.66.0.254", index)
    ]
    assert [(m.get("src"), m.get("src_len")) for m in rules] == [("10.66.0.5", 24)]

    netlink.delete_link("eth1", netns=spaces.pod_path)
    with pytest.raises(LinkNotFound):
        netlink.get_link("eth1", netns=spaces.pod_path)


def test_ipvlan_move_to_taken_name_deletes_it(netlink: PyrouteNetlink, spaces: Namespaces):
    ip("-n", spaces.pod, "link", "add", "eth1", "type", "dummy")
    child = netlink.create_ipvlan(PARENT, netns=spaces.host_path)

    with pytest.raises(LinkExists):
        netlink.move_link(child.name, spaces.pod_path, new_name="eth1", netns=spaces.host_path)

    with pytest.raises(LinkNotFound):
        netlink.get_link(child.name, netns=spaces.host_path)


def test_delete_in_a_deleted_pod_namespace_is_namespace_not_found(
    netlink: PyrouteNetlink, spaces: Namespaces
):
    child = netlink.create_ipvlan(PARENT, netns=spaces.host_path)
    netlink.move_link(child.name, spaces.pod_path, new_name="eth1", netns=spaces.host_path)
    delete_netns(spaces.pod)

    with pytest.raises(NamespaceNotFound):
        netlink.delete_link("eth1", netns=spaces.pod_path)


def test_ipvlan_on_missing_parent_is_link_not_found(netlink: PyrouteNetlink, spaces: Namespaces):
    with pytest.raises(LinkNotFound, match="parent device"):
        netlink.create_ipvlan("nosuch0", netns=spaces.host_path)


# -- 802.1Q VLAN (netwatcher) -----------------------------------------------------------------


def test_vlan_host_interface(netlink: PyrouteNetlink, spaces: Namespaces):
    created = netlink.create_vlan("net1.200", parent=PARENT, vlan_id=200, netns=spaces.host_path)

    with raw_ipr(spaces.host_path) as ipr:
        (msg,) = ipr.link("get", ifname="net1.200")
        (parent,) = ipr.link("get", ifname=PARENT)
    assert msg.get(("linkinfo", "kind")) == "vlan"
    assert msg.get(("linkinfo", "data")).get("vlan_id") == 200
    assert msg.get("link") == parent["index"]
    assert msg["flags"] & 1, "netwatcher sets the VLAN link up"
    assert (created.kind, created.vlan_id, created.parent_name, created.up) == (
        "vlan",
        200,
        PARENT,
        True,
    )
    listed = {link.name: link for link in netlink.list_links(netns=spaces.host_path)}
    assert listed["net1.200"] == created


def test_vlan_name_with_dot_takes_interface_sysctls(netlink: PyrouteNetlink, spaces: Namespaces):
    netlink.create_vlan("net1.201", parent=PARENT, vlan_id=201, netns=spaces.host_path)

    netlink.set_interface_sysctls("net1.201", ipv6_interface_sysctls(False), netns=spaces.host_path)

    with raw_ipr(spaces.host_path) as ipr:
        (msg,) = ipr.link("get", ifname="net1.201")
    assert inet6_conf(msg)["disable_ipv6"] == 1


def test_vlan_duplicate_missing_parent_and_delete(netlink: PyrouteNetlink, spaces: Namespaces):
    netlink.create_vlan("net1.300", parent=PARENT, vlan_id=300, netns=spaces.host_path)

    with pytest.raises(LinkExists):
        netlink.create_vlan("net1.300", parent=PARENT, vlan_id=300, netns=spaces.host_path)
    with pytest.raises(LinkNotFound):
        netlink.create_vlan("net2.300", parent="nosuch0", vlan_id=300, netns=spaces.host_path)

    netlink.delete_link("net1.300", netns=spaces.host_path)
    with pytest.raises(LinkNotFound):
        netlink.delete_link("net1.300", netns=spaces.host_path)


def test_vxlan_on_vlan_parent(netlink: PyrouteNetlink, spaces: Namespaces):
    netlink.create_vlan("net1.400", parent=PARENT, vlan_id=400, netns=spaces.host_path)
    ip("-n", spaces.host, "addr", "add", "10.68.0.1/24", "dev", "net1.400")
    local = netlink.vxlan_local_address("net1.400", netns=spaces.host_path)
    assert local == ipaddress.ip_address("10.68.0.1")

    created = netlink.create_vxlan(
        "vx_net1", parent="net1.400", vni=50, local=local, netns=spaces.host_path
    )

    assert created.vxlan is not None
    assert created.vxlan.group == ipaddress.ip_address("239.0.0.50")
    assert created.parent_name == "net1.400"
