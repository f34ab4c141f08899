"""Link operations our netlink adapter will need, proven on a real kernel inside the QEMU guest.

The host kernel has no ipvlan, 802.1q VLAN or dummy links, so these tests are marked ``vm``:
on the host they are skipped, and tests/vm/test_guest_tier.py runs them inside the guest. They
use pyroute2 directly, the way ``common/io/netlink.py`` will (``IPRoute(netns=name, flags=0)``),
and follow the CNI plugins' test shape: a dummy parent in a "host" namespace, the pod's link in
a "pod" namespace. Both namespaces are created per test and always removed, so nothing touches
the guest's root namespace.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import IPRoute, NetlinkError, netns
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD, IFA_F_TENTATIVE

pytestmark = pytest.mark.vm

CNI_BIN_DIR = Path("/usr/lib/cni")
IPVLAN_MODES = {"l2": 0, "l3": 1, "l3s": 2}
PARENT = "dm0"
POLICY_TABLE = 201


@dataclass(frozen=True)
class Namespaces:
    """A "host" namespace holding the dummy parent ``dm0`` (up) and an empty "pod" namespace."""

    host: str
    pod: str


def _unique(role: str) -> str:
    return f"danm-vm-{role}-{uuid.uuid4().hex[:8]}"


def _link_index(ipr: Any, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    assert found, f"no link named {ifname}"
    return int(found[0])


def _link_info(ipr: Any, ifname: str) -> Any:
    (link,) = ipr.get_links(_link_index(ipr, ifname))
    return link


def _info_data(link: Any) -> Any:
    return link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")


def _kind(link: Any) -> str:
    return str(link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND"))


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    created: list[str] = []
    try:
        spaces = Namespaces(host=_unique("host"), pod=_unique("pod"))
        for name in (spaces.host, spaces.pod):
            netns.create(name)
            created.append(name)
            with IPRoute(netns=name, flags=0) as ipr:
                ipr.link("set", index=1, state="up")
        with IPRoute(netns=spaces.host, flags=0) as ipr:
            ipr.link("add", ifname=PARENT, kind="dummy")
            ipr.link("set", index=_link_index(ipr, PARENT), state="up")
        yield spaces
    finally:
        for name in created:
            netns.remove(name)


def test_ipvlan_l2_child_is_moved_renamed_addressed_and_routed(namespaces: Namespaces) -> None:
    with IPRoute(netns=namespaces.host, flags=0) as host:
        host.link(
            "add",
            ifname="ipv-tmp",
            kind="ipvlan",
            link=_link_index(host, PARENT),
            ipvlan_mode=IPVLAN_MODES["l2"],
        )
        host.link("set", index=_link_index(host, "ipv-tmp"), net_ns_fd=namespaces.pod)
        assert not host.link_lookup(ifname="ipv-tmp")

    with IPRoute(netns=namespaces.pod, flags=0) as pod:
        index = _link_index(pod, "ipv-tmp")
        pod.link("set", index=index, ifname="eth0")
        pod.link("set", index=index, state="up")
        pod.addr("add", index=index, address="10.20.0.5", prefixlen=24)
        pod.addr("add", index=index, address="fd20::5", prefixlen=64, flags=IFA_F_NODAD)
        pod.route("add", dst="0.0.0.0/0", gateway="10.20.0.1", oif=index)
        pod.rule("add", family=2, src="10.20.0.5", src_len=32, table=POLICY_TABLE, priority=150)
        pod.route("add", dst="192.168.50.0/24", gateway="10.20.0.1", table=POLICY_TABLE)

        link = _link_info(pod, "eth0")
        assert _kind(link) == "ipvlan"
        assert _info_data(link).get_attr("IFLA_IPVLAN_MODE") == IPVLAN_MODES["l2"]
        v4 = [a.get_attr("IFA_ADDRESS") for a in pod.get_addr(index=index, family=2)]
        assert v4 == ["10.20.0.5"]
        (v6,) = [
            a
            for a in pod.get_addr(index=index, family=10)
            if a.get_attr("IFA_ADDRESS") == "fd20::5"
        ]
        assert v6["prefixlen"] == 64
        assert not v6.get_attr("IFA_FLAGS") & IFA_F_TENTATIVE, "NODAD address must not wait"
        defaults = pod.get_routes(family=2, dst_len=0, table=254)
        assert [r.get_attr("RTA_GATEWAY") for r in defaults] == ["10.20.0.1"]
        rules = [r for r in pod.get_rules(family=2) if r.get_attr("FRA_TABLE") == POLICY_TABLE]
        assert [(r.get_attr("FRA_SRC"), r.get_attr("FRA_PRIORITY")) for r in rules] == [
            ("10.20.0.5", 150)
        ]
        table_routes = pod.get_routes(family=2, table=POLICY_TABLE)
        assert [(r.get_attr("RTA_DST"), r["dst_len"]) for r in table_routes] == [
            ("192.168.50.0", 24)
        ]


@pytest.mark.parametrize("mode", ["l3", "l3s"])
def test_ipvlan_modes_are_kept(namespaces: Namespaces, mode: str) -> None:
    with IPRoute(netns=namespaces.host, flags=0) as host:
        parent = _link_index(host, PARENT)
        host.link("add", ifname="ipv-m", kind="ipvlan", link=parent, ipvlan_mode=IPVLAN_MODES[mode])
        assert (
            _info_data(_link_info(host, "ipv-m")).get_attr("IFLA_IPVLAN_MODE")
            == (IPVLAN_MODES[mode])
        )


def test_vlan_link_on_dummy_parent_comes_up(namespaces: Namespaces) -> None:
    with IPRoute(netns=namespaces.host, flags=0) as host:
        parent = _link_index(host, PARENT)
        host.link("add", ifname=f"{PARENT}.100", kind="vlan", link=parent, vlan_id=100)
        host.link("set", index=_link_index(host, f"{PARENT}.100"), state="up")
        link = _link_info(host, f"{PARENT}.100")
        assert _kind(link) == "vlan"
        assert _info_data(link).get_attr("IFLA_VLAN_ID") == 100
        assert link.get_attr("IFLA_LINK") == parent
        assert link["flags"] & 1, "IFF_UP must be set"


@pytest.mark.parametrize("first_kind", ["ipvlan", "macvlan"])
def test_ipvlan_and_macvlan_cannot_share_a_parent(namespaces: Namespaces, first_kind: str) -> None:
    second_kind = "macvlan" if first_kind == "ipvlan" else "ipvlan"
    with IPRoute(netns=namespaces.host, flags=0) as host:
        parent = _link_index(host, PARENT)
        host.link("add", ifname="first", kind=first_kind, link=parent)
        with pytest.raises(NetlinkError) as raised:
            host.link("add", ifname="second", kind=second_kind, link=parent)
        assert raised.value.code == errno.EBUSY


def _run_plugin(plugin: str, command: str, spaces: Namespaces, netconf: dict[str, Any]) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "vm-test-container",
        "CNI_NETNS": f"/run/netns/{spaces.pod}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(CNI_BIN_DIR),
    }
    # NB: the plugin looks up its master link in its own namespace, so it runs in "host".
    done = subprocess.run(
        ["ip", "netns", "exec", spaces.host, str(CNI_BIN_DIR / plugin)],
        input=json.dumps(netconf),
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, f"{plugin} {command} failed: {done.stdout} {done.stderr}"
    return done.stdout


@pytest.mark.parametrize(
    ("plugin", "plugin_conf", "expected_kind"),
    [
        ("ipvlan", {"master": PARENT, "mode": "l2"}, "ipvlan"),
        ("vlan", {"master": PARENT, "vlanId": 42}, "vlan"),
    ],
)
def test_reference_plugin_add_and_del_with_static_ipam(
    namespaces: Namespaces, plugin: str, plugin_conf: dict[str, Any], expected_kind: str
) -> None:
    if not (CNI_BIN_DIR / plugin).is_file():
        pytest.fail(
            f"{CNI_BIN_DIR / plugin} is missing: apt-get install containernetworking-plugins"
        )
    netconf = {
        "cniVersion": "1.0.0",
        "name": "vm-test",
        "type": plugin,
        **plugin_conf,
        "ipam": {
            "type": "static",
            "addresses": [{"address": "10.30.0.7/24", "gateway": "10.30.0.1"}],
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }
    result = json.loads(_run_plugin(plugin, "ADD", namespaces, netconf))
    assert [ip["address"] for ip in result["ips"]] == ["10.30.0.7/24"]
    with IPRoute(netns=namespaces.pod, flags=0) as pod:
        link = _link_info(pod, "eth0")
        assert _kind(link) == expected_kind
        v4 = [a.get_attr("IFA_ADDRESS") for a in pod.get_addr(index=link["index"], family=2)]
        assert v4 == ["10.30.0.7"]
        defaults = pod.get_routes(family=2, dst_len=0, table=254)
        assert [r.get_attr("RTA_GATEWAY") for r in defaults] == ["10.30.0.1"]

    _run_plugin(plugin, "DEL", namespaces, netconf)
    with IPRoute(netns=namespaces.pod, flags=0) as pod:
        assert not pod.link_lookup(ifname="eth0")
