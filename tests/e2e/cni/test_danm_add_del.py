"""ADD and DEL of the real ``danm`` binary: macvlan delegation, a static bridge with fakeipam,
routes and policy routes, IPv4+IPv6, naming, default networks, AllowedTenants, DanmEps and the
node record."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest

from common.model.resources import DANMEPS
from tests.e2e.cni.conftest import PARENT, Node
from tests.e2e.cni.harness import Cluster, addresses, allocated_offsets, links, routes, rules
from tests.netns_helpers import requires_netns

pytestmark = [pytest.mark.e2e, pytest.mark.netns, requires_netns]

NS = "team-a"


def _macvlan_net(cluster: Cluster, name: str = "ext", **options: Any) -> None:
    cluster.namespace(NS)
    cluster.network(
        "DanmNet",
        name,
        namespace=NS,
        network_type="macvlan",
        host_device=PARENT,
        cidr="10.90.0.0/24",
        **options,
    )


def test_macvlan_add_then_del_leaves_nothing(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    _macvlan_net(cluster, routes={"10.91.0.0/16": "10.90.0.1"})
    cluster.pod("web", NS, connections=[{"network": "ext", "ip": "dynamic"}], labels={"app": "w"})
    netns = pod_netns()
    runner = node.runner

    result = runner.run("ADD", container_id="c-web", netns=netns, pod=(NS, "web")).ok()

    assert result["cniVersion"] == "1.0.0"
    (iface,) = result["interfaces"]
    assert (iface["name"], iface["sandbox"]) == ("eth0", netns)
    (ip,) = result["ips"]
    assert ip["interface"] == 0
    assert ip["address"].startswith("10.90.0.")
    assert {"dst": "10.91.0.0/16", "gw": "10.90.0.1"} in result["routes"]
    pod_links = links(netns)
    assert pod_links["eth0"]["kind"] == "macvlan"
    assert pod_links["eth0"]["up"]
    assert pod_links["eth0"]["mac"] == iface["mac"]
    assert addresses(netns, "eth0") == {ip["address"]}
    assert ("10.91.0.0/16", "10.90.0.1") in routes(netns)
    (ep,) = cluster.danmeps(NS)
    spec = ep["spec"]
    assert spec["CID"] == "c-web"
    assert spec["apiType"] == "DanmNet"
    assert spec["Interface"]["Address"] == ip["address"]
    assert spec["Interface"]["Name"] == "eth0"
    assert spec["NetworkType"] == "macvlan"
    assert ep["metadata"]["labels"] == {"app": "w"}
    offset = int(ip["address"].split("/")[0].rsplit(".", 1)[1])
    assert offset in allocated_offsets(cluster.get_network("DanmNet", "ext", NS))
    assert runner.records() == ["c-web.json"]

    runner.run("DEL", container_id="c-web", netns=netns, pod=(NS, "web")).ok()

    assert "eth0" not in links(netns)
    assert cluster.danmeps(NS) == []
    assert offset not in allocated_offsets(cluster.get_network("DanmNet", "ext", NS))
    assert runner.records() == []


def test_static_bridge_delegate_with_fakeipam_and_dual_stack(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    cluster.namespace(NS)
    bridge_conf = {
        "cniVersion": "0.4.0",
        "name": "br-net",
        "type": "bridge",
        "bridge": "danmtbr0",
        "ipam": {"type": "host-local", "subnet": "192.0.2.0/24"},
    }
    (node.runner.cni_dir / "brnet.conf").write_text(json.dumps(bridge_conf))
    cluster.network(
        "DanmNet",
        "br",
        namespace=NS,
        network_id="brnet",
        network_type="bridge",
        cidr="10.92.0.0/24",
        net6="fd92::/64",
        routes6={"fd93::/64": "fd92::1"},
    )
    cluster.pod("db", NS, connections=[{"network": "br", "ip": "dynamic", "ip6": "dynamic"}])
    netns = pod_netns()

    result = node.runner.run("ADD", container_id="c-db", netns=netns, pod=(NS, "db")).ok()

    got = {ip["address"] for ip in result["ips"]}
    v4 = next(a for a in got if "." in a)
    v6 = next(a for a in got if ":" in a)
    assert v4.startswith("10.92.0.")
    assert v4.endswith("/24")
    assert v6.startswith("fd92::")
    assert v6.endswith("/64")
    assert addresses(netns, "eth0") == {v4, v6}
    assert ("fd93::/64", "fd92::1") in routes(netns, family=socket.AF_INET6)
    (ep,) = cluster.danmeps(NS)
    assert (ep["spec"]["Interface"]["Address"], ep["spec"]["Interface"]["AddressIPv6"]) == (v4, v6)

    node.runner.run("DEL", container_id="c-db", netns=netns, pod=(NS, "db")).ok()
    assert "eth0" not in links(netns)
    assert cluster.danmeps(NS) == []


def test_policy_routes_and_naming_of_several_connections(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    _macvlan_net(cluster, "ext", rt_tables=100, container_prefix="ext")
    cluster.network(
        "ClusterNetwork",
        "mgmt",
        network_type="macvlan",
        host_device=PARENT,
        cidr="10.93.0.0/24",
        container_prefix="mgmt",
    )
    connections: list[dict[str, Any]] = [
        {"network": "ext", "ip": "dynamic", "proutes": {"10.200.0.0/16": "10.90.0.1"}},
        {"clusterNetwork": "mgmt", "ip": "10.93.0.7/24"},
        {"network": "ext", "ip": "dynamic"},
    ]
    cluster.pod("multi", NS, connections=connections)
    netns = pod_netns()

    result = node.runner.run("ADD", container_id="c-multi", netns=netns, pod=(NS, "multi")).ok()

    names = [i["name"] for i in result["interfaces"]]
    assert names == ["eth0", "mgmt1", "ext2"]
    for ip in result["ips"]:
        assert result["interfaces"][ip["interface"]]["name"] == names[result["ips"].index(ip)]
    assert addresses(netns, "mgmt1") == {"10.93.0.7/24"}
    eth0 = next(iter(addresses(netns, "eth0")))
    assert (eth0, 100) in rules(netns)
    assert ("10.200.0.0/16", "10.90.0.1") in routes(netns, table=100)
    assert len(cluster.danmeps(NS)) == 3

    node.runner.run("DEL", container_id="c-multi", netns=netns, pod=(NS, "multi")).ok()
    assert not {"eth0", "mgmt1", "ext2"} & set(links(netns))
    assert cluster.danmeps(NS) == []


@pytest.mark.parametrize("kind", ["DanmNet", "TenantNetwork", "ClusterNetwork"])
def test_default_network_fallback(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str], kind: str
) -> None:
    cluster.namespace(NS)
    cluster.network(
        kind,
        "default",
        namespace="" if kind == "ClusterNetwork" else NS,
        network_id="dflt",
        network_type="macvlan",
        host_device=PARENT,
        cidr="10.94.0.0/24",
    )
    cluster.pod("plain", NS)
    netns = pod_netns()

    result = node.runner.run("ADD", container_id="c-plain", netns=netns, pod=(NS, "plain")).ok()

    assert [i["name"] for i in result["interfaces"]] == ["eth0"]
    assert result["ips"][0]["address"].startswith("10.94.0.")
    (ep,) = cluster.danmeps(NS)
    assert ep["spec"]["apiType"] == kind
    node.runner.run("DEL", container_id="c-plain", netns=netns, pod=(NS, "plain")).ok()


def test_allowed_tenants_denial_names_pod_and_network(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    cluster.namespace(NS)
    cluster.network(
        "ClusterNetwork",
        "private",
        network_type="macvlan",
        host_device=PARENT,
        cidr="10.95.0.0/24",
        allowed_tenants=["someone-else"],
    )
    cluster.pod("intruder", NS, connections=[{"clusterNetwork": "private", "ip": "dynamic"}])
    netns = pod_netns()

    outcome = node.runner.run("ADD", container_id="c-x", netns=netns, pod=(NS, "intruder"))

    assert outcome.returncode == 1
    body = outcome.body
    assert body["code"] == 100
    assert "intruder" in body["msg"]
    assert "AllowedTenants" in body["msg"]
    assert "private" in body["msg"]
    assert node.runner.records() == []
    assert cluster.danmeps(NS) == []
    assert allocated_offsets(cluster.get_network("ClusterNetwork", "private")) <= {0, 255}


def test_unknown_pod_is_a_cni_error(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    cluster.namespace(NS)
    outcome = node.runner.run("ADD", container_id="c-ghost", netns=pod_netns(), pod=(NS, "ghost"))
    assert outcome.returncode == 1
    assert "ghost" in outcome.body["msg"]


def test_danmep_is_readable_by_name(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    _macvlan_net(cluster)
    cluster.pod("one", NS, connections=[{"network": "ext", "ip": "dynamic"}])
    netns = pod_netns()
    node.runner.run("ADD", container_id="c-one", netns=netns, pod=(NS, "one")).ok()
    (ep,) = cluster.danmeps(NS)
    assert cluster.exists(DANMEPS, NS, ep["metadata"]["name"])
    assert ep["spec"]["EndpointID"] == ep["metadata"]["name"]
    node.runner.run("DEL", container_id="c-one", netns=netns, pod=(NS, "one")).ok()


def test_missing_vxlan_parent_is_created_for_a_macvlan_network(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str]
) -> None:
    cluster.namespace(NS)
    cluster.network(
        "DanmNet",
        "overlay",
        namespace=NS,
        network_id="ovl",
        network_type="macvlan",
        host_device=PARENT,
        vxlan=55,
        cidr="10.96.0.0/24",
    )
    cluster.pod("tun", NS, connections=[{"network": "overlay", "ip": "dynamic"}])
    netns = pod_netns()

    node.runner.run("ADD", container_id="c-tun", netns=netns, pod=(NS, "tun")).ok()

    host_links = links(node.host)
    assert host_links["vx_ovl"]["kind"] == "vxlan"
    assert links(netns)["eth0"]["kind"] == "macvlan"
    node.runner.run("DEL", container_id="c-tun", netns=netns, pod=(NS, "tun")).ok()
    assert "eth0" not in links(netns)
