"""``danm.add.cmd_add`` against the recording fakes: what ADD creates, records and rolls back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.cni.types import CniError
from common.io.kube import Conflict, KubeUnavailable
from common.ipam.bitarray import BitArray
from common.model.resources import CLUSTERNETWORKS, DANMEPS, DANMNETS, PODS
from danm.add import AddRequest, NodeFiles, cmd_add
from danm.delete import NodeStore
from danm.state import Phase
from tests.unit.danm.fakes import FakeExec, FakeKube, FakeNetlink, plugin_failure

NETNS = "/var/run/netns/pod1"
NS = "ns1"


def _network(kind: str, name: str, network_type: str, **options: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if kind != "ClusterNetwork":
        metadata["namespace"] = NS
    spec: dict[str, Any] = {"NetworkID": options.pop("network_id", name), "Options": options}
    if network_type:
        spec["NetworkType"] = network_type
    return {"apiVersion": "danm.k8s.io/v1", "kind": kind, "metadata": metadata, "spec": spec}


def _pod(connections: list[dict[str, Any]] | None, name: str = "p1") -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "uid": "uid-1",
        "labels": {"app": "x"},
    }
    if connections is not None:
        metadata["annotations"] = {"danm.k8s.io/interfaces": json.dumps(connections)}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata}


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.kube = FakeKube()
        self.netlink = FakeNetlink()
        self.netlink.add_netns(NETNS)
        self.exec = FakeExec()
        self.store = NodeStore(str(tmp_path / "state"))
        self.files: dict[str, bytes] = {}
        self.cni_dir = str(tmp_path / "net.d")

    def request(self, container_id: str = "c1", pod: str = "p1") -> AddRequest:
        return AddRequest(
            container_id=container_id,
            netns=NETNS,
            ifname="eth0",
            cni_args=f"IgnoreUnknown=1;K8S_POD_NAMESPACE={NS};K8S_POD_NAME={pod}",
            cni_path=("/opt/cni/bin",),
            cni_dir=self.cni_dir,
            timeout_s=5,
            hostname="node-1",
        )

    def add(self, container_id: str = "c1", pod: str = "p1") -> Any:
        files = NodeFiles(
            read_file=self.files.get, read_checkpoint=self.files.get, pf_name=lambda _: "pf0"
        )
        return cmd_add(
            self.request(container_id, pod),
            api=self.kube,
            netlink=self.netlink,
            exec_=self.exec,
            store=self.store,
            files=files,
        )

    def alloc(self, resource: Any = DANMNETS, name: str = "ext") -> set[int]:
        (net,) = [o for o in self.kube.of(resource) if o["metadata"]["name"] == name]
        bits = BitArray.from_base64(net["spec"]["Options"].get("alloc", ""))
        return {i for i in range(len(bits)) if bits.get(i)}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _macvlan(world: World, name: str = "ext", **options: Any) -> None:
    net = _network("DanmNet", name, "macvlan", host_device="parent0", cidr="10.0.0.0/24", **options)
    world.kube.put(DANMNETS, net)


def test_macvlan_connection_gets_fakeipam_danmep_record_and_result(world: World) -> None:
    _macvlan(world, routes={"10.9.0.0/16": "10.0.0.1"})
    world.kube.put(PODS, _pod([{"network": "ext", "ip": "dynamic"}]))

    result = world.add()

    (call,) = world.exec.of("ADD")
    assert call.plugin == "macvlan"
    assert call.config["master"] == "parent0"
    (given,) = call.config["ipam"]["ips"]
    assert call.config["ipam"]["type"] == "fakeipam"
    assert given["version"] == 4
    assert (call.request.ifname, call.request.netns) == ("eth0", NETNS)
    (ip,) = result.ips
    assert ip.interface == 0
    assert ip.address == given["ipcidr"]
    assert [i.name for i in result.interfaces] == ["eth0"]
    assert [(r.dst, r.gw) for r in result.routes] == [("10.9.0.0/16", "10.0.0.1")]
    (ep,) = world.kube.of(DANMEPS)
    spec = ep["spec"]
    assert spec["apiType"] == "DanmNet"
    assert spec["PodUID"] == "uid-1"
    assert spec["CID"] == "c1"
    assert spec["Host"] == "node-1"
    assert spec["Interface"]["Address"] == ip.address
    assert ep["metadata"]["labels"] == {"app": "x"}
    record = world.store.load("c1")
    assert record is not None
    assert record.result is not None
    assert [a.phase for a in record.attachments] == [Phase.CREATED]
    assert record.attachments[0].ip4 == ip.address
    assert world.netlink.sysctls[0] == (NETNS, "", {"net/ipv6/conf/all/disable_ipv6": "0"})


def test_builtin_ipvlan_moves_renames_addresses_and_reports_the_real_mac(world: World) -> None:
    net = _network("ClusterNetwork", "ipv", "", host_device="parent0", cidr="10.1.0.0/24")
    world.kube.put(CLUSTERNETWORKS, net)
    world.kube.put(PODS, _pod([{"clusterNetwork": "ipv", "ip": "10.1.0.9/24"}]))

    result = world.add()

    names = [op[0] for op in world.netlink.ops]
    assert names[:6] == [
        "write_sysctls",
        "create_ipvlan",
        "move_link",
        "add_address",
        "set_link_up",
        "announce_ipv4",
    ]
    create = world.netlink.ops[1]
    assert create[1:3] == ("parent0", "l2")
    move = world.netlink.ops[2]
    assert (move[2], move[3]) == (NETNS, "eth0")
    assert world.netlink.links[NETNS]["eth0"] == ["10.1.0.9/24"]
    (iface,) = result.interfaces
    assert (iface.name, iface.sandbox, iface.mac) == ("eth0", NETNS, "02:00:00:00:00:04")
    assert world.exec.calls == []
    (ep,) = world.kube.of(DANMEPS)
    assert ep["spec"]["NetworkType"] == "ipvlan"
    assert ep["spec"]["apiType"] == "ClusterNetwork"


def test_repeated_add_returns_the_recorded_result_without_new_work(world: World) -> None:
    _macvlan(world)
    world.kube.put(PODS, _pod([{"network": "ext", "ip": "dynamic"}]))

    first = world.add()
    second = world.add()

    assert second == first
    assert len(world.exec.of("ADD")) == 1
    assert len(world.kube.of(DANMEPS)) == 1
    assert len(world.alloc() - {0, 255}) == 1


def test_one_failed_connection_rolls_back_everything(world: World) -> None:
    _macvlan(world)
    world.kube.put(DANMNETS, _network("DanmNet", "st", "bridge", cidr="10.2.0.0/24"))
    world.files[f"{world.cni_dir}/st.conf"] = json.dumps(
        {"cniVersion": "0.4.0", "name": "st", "type": "bridge", "ipam": {"type": "host-local"}}
    ).encode()
    world.exec.failures[("bridge", "ADD")] = plugin_failure("bridge", "ADD", "no bridge")
    world.kube.put(
        PODS,
        _pod(
            [
                {"network": "ext", "ip": "dynamic"},
                {"network": "ext", "ip": "dynamic"},
                {"network": "st", "ip": "dynamic"},
            ]
        ),
    )

    with pytest.raises(CniError) as caught:
        world.add()

    message = caught.value.msg
    assert "ns1/p1" in message
    assert "1 of 3" in message
    assert "connection no.:2 (eth2)" in message
    assert "no bridge" in message
    assert caught.value.details == "everything this ADD had created was removed again"
    deleted = sorted(c.request.ifname for c in world.exec.of("DEL"))
    assert deleted == ["eth0", "eth1", "eth2"]
    assert world.kube.of(DANMEPS) == []
    assert world.alloc() == {0, 255}
    assert world.alloc(name="st") == {0, 255}
    assert world.store.load("c1") is None


def test_conflicts_are_retried_and_never_give_a_duplicate(world: World) -> None:
    _macvlan(world)
    world.kube.put(PODS, _pod([{"network": "ext", "ip": "dynamic"}], name="a"))
    world.kube.put(PODS, _pod([{"network": "ext", "ip": "dynamic"}], name="b"))
    original = world.kube.replace
    raised: list[bool] = []

    def flaky_replace(*args: Any, **kwargs: Any) -> Any:
        if not raised:
            raised.append(True)
            raise Conflict(409, "Conflict", "the object has been modified")
        return original(*args, **kwargs)

    world.kube.replace = flaky_replace  # type: ignore[method-assign]

    first = world.add("ca", "a")
    second = world.add("cb", "b")

    assert raised == [True]
    assert first.ips[0].address != second.ips[0].address
    assert len(world.alloc() - {0, 255}) == 2


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing-network", "requested network:nope"),
        ("allowed-tenants", "AllowedTenants"),
        ("no-default", "no suitable default network"),
        ("bad-annotation", "cannot be parsed"),
    ],
)
def test_plan_problems_fail_before_anything_is_touched(
    world: World, setup: str, expected: str
) -> None:
    if setup == "missing-network":
        world.kube.put(PODS, _pod([{"network": "nope", "ip": "dynamic"}]))
    elif setup == "allowed-tenants":
        net = _network("ClusterNetwork", "priv", "macvlan", host_device="parent0")
        net["spec"]["AllowedTenants"] = ["other"]
        world.kube.put(CLUSTERNETWORKS, net)
        world.kube.put(PODS, _pod([{"clusterNetwork": "priv"}]))
    elif setup == "no-default":
        world.kube.put(PODS, _pod(None))
    else:
        pod = _pod(None)
        pod["metadata"]["annotations"] = {"danm.k8s.io/interfaces": "[{"}
        world.kube.put(PODS, pod)

    with pytest.raises(CniError) as caught:
        world.add()

    assert expected in f"{caught.value.msg} {caught.value.details}"
    assert "ns1/p1" in f"{caught.value.msg} {caught.value.details}"
    assert world.store.container_ids() == []
    assert world.netlink.ops == []
    assert world.exec.calls == []


def test_unreachable_api_is_try_again_later(world: World) -> None:
    world.kube.down = True
    with pytest.raises(CniError) as caught:
        world.add()
    assert caught.value.code == 11


def test_conflist_delegate_chains_with_prev_result(world: World) -> None:
    world.kube.put(DANMNETS, _network("DanmNet", "chain", "bridge", cidr="10.3.0.0/24"))
    conflist = {
        "cniVersion": "1.0.0",
        "name": "chain",
        "plugins": [
            {"type": "bridge", "ipam": {"type": "host-local"}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    world.files[f"{world.cni_dir}/chain.conflist"] = json.dumps(conflist).encode()
    world.kube.put(PODS, _pod([{"network": "chain", "ip": "dynamic"}]))

    result = world.add()

    bridge, portmap = world.exec.of("ADD")
    assert (bridge.plugin, portmap.plugin) == ("bridge", "portmap")
    assert bridge.config["ipam"]["type"] == "fakeipam"
    assert portmap.config["prevResult"]["interfaces"][0]["name"] == "eth0"
    assert result.ips[0].address.startswith("10.3.0.")


def test_default_network_gets_eth0_and_dynamic_ip(world: World) -> None:
    world.kube.put(
        CLUSTERNETWORKS,
        _network("ClusterNetwork", "default", "macvlan", host_device="parent0", cidr="10.4.0.0/24"),
    )
    world.kube.put(PODS, _pod(None))

    result = world.add()

    assert [i.name for i in result.interfaces] == ["eth0"]
    assert result.ips[0].address.startswith("10.4.0.")


def test_policy_routes_and_ipv6_sysctls(world: World) -> None:
    _macvlan(world, rt_tables=42, net6="fd00::/64")
    world.kube.put(
        PODS,
        _pod(
            [
                {
                    "network": "ext",
                    "ip": "dynamic",
                    "ip6": "dynamic",
                    "proutes": {"10.50.0.0/16": "10.0.0.254"},
                }
            ]
        ),
    )

    result = world.add()

    v4 = next(ip.address for ip in result.ips if ip.family == "4")
    assert (NETNS, v4, 42) in world.netlink.rules
    assert [(d, str(r.destination), t) for d, r, t in world.netlink.routes] == [
        ("eth0", "10.50.0.0/16", 42)
    ]
    assert (NETNS, "eth0", {"disable_ipv6": "0", "autoconf": "0", "accept_ra": "0"}) in (
        world.netlink.sysctls
    )


def _network_writes(world: World) -> list[str]:
    plurals = (DANMNETS.plural, CLUSTERNETWORKS.plural)
    return [call.name for call in world.kube.writes("replace") if call.plural in plurals]


def test_four_connections_on_one_network_make_one_network_write(world: World) -> None:
    _macvlan(world)
    world.kube.put(
        PODS,
        _pod(
            [
                {"network": "ext", "ip": "dynamic"},
                {"network": "ext", "ip": "10.0.0.77/24"},
                {"network": "ext", "ip": "dynamic"},
                {"network": "ext", "ip": "dynamic"},
            ]
        ),
    )

    result = world.add()

    assert _network_writes(world) == ["ext"]
    given = [ip.address for ip in result.ips]
    # NB: annotation order: the static address is taken before the later dynamic requests
    assert given == ["10.0.0.1/24", "10.0.0.77/24", "10.0.0.2/24", "10.0.0.3/24"]
    assert world.alloc() == {0, 1, 2, 3, 77, 255}
    record = world.store.load("c1")
    assert record is not None
    assert [a.ip4 for a in record.attachments] == given


def test_two_networks_make_two_network_writes(world: World) -> None:
    _macvlan(world)
    world.kube.put(
        CLUSTERNETWORKS,
        _network("ClusterNetwork", "ipv", "", host_device="parent0", cidr="10.1.0.0/24"),
    )
    world.kube.put(
        PODS,
        _pod(
            [
                {"network": "ext", "ip": "dynamic"},
                {"clusterNetwork": "ipv", "ip": "dynamic"},
                {"network": "ext", "ip": "dynamic"},
                {"clusterNetwork": "ipv", "ip": "dynamic"},
            ]
        ),
    )

    world.add()

    assert sorted(_network_writes(world)) == ["ext", "ipv"]
    assert world.alloc() == {0, 1, 2, 255}
    assert world.alloc(CLUSTERNETWORKS, "ipv") == {0, 1, 2, 255}


def test_later_failure_releases_every_address_of_the_one_write(world: World) -> None:
    _macvlan(world)
    world.exec.failures[("macvlan", "ADD")] = plugin_failure("macvlan", "ADD", "no parent")
    world.kube.put(PODS, _pod([{"network": "ext", "ip": "dynamic"}] * 4))

    with pytest.raises(CniError) as caught:
        world.add()

    assert "4 of 4" in caught.value.msg
    assert caught.value.details == "everything this ADD had created was removed again"
    assert _network_writes(world)[0] == "ext"
    assert world.alloc() == {0, 255}
    assert world.store.load("c1") is None


def test_duplicate_static_address_in_one_pod_is_refused_for_the_second_connection(
    world: World,
) -> None:
    _macvlan(world)
    world.kube.put(
        CLUSTERNETWORKS,
        _network("ClusterNetwork", "ipv", "", host_device="parent0", cidr="10.1.0.0/24"),
    )
    world.kube.put(
        PODS,
        _pod(
            [
                {"network": "ext", "ip": "10.0.0.9/24"},
                {"clusterNetwork": "ipv", "ip": "dynamic"},
                {"network": "ext", "ip": "10.0.0.9/24"},
            ]
        ),
    )

    with pytest.raises(CniError) as caught:
        world.add()

    message = caught.value.msg
    assert "1 of 3" in message
    assert "connection no.:2 (eth2)" in message
    assert "IP address reservation failed: failed to allocate IP address for network:ext" in (
        message
    )
    assert "connection no.:0" not in message
    assert caught.value.details == "everything this ADD had created was removed again"
    # nothing was written to ext; ipv's reservation was recorded, then given back
    assert _network_writes(world).count("ext") == 0
    assert world.alloc(CLUSTERNETWORKS, "ipv") == {0, 255}
    assert world.exec.calls == []
    assert world.kube.of(DANMEPS) == []
    assert world.store.load("c1") is None


def test_unreachable_network_fails_each_of_its_connections(world: World) -> None:
    _macvlan(world)
    world.kube.put(PODS, _pod([{"network": "ext", "ip": "dynamic"}] * 2))
    original = world.kube.replace

    def refusing_replace(*args: Any, **kwargs: Any) -> Any:
        if args[0] is DANMNETS:
            raise KubeUnavailable("replace danmnets/ext: connection refused")
        return original(*args, **kwargs)

    world.kube.replace = refusing_replace  # type: ignore[method-assign]

    with pytest.raises(CniError) as caught:
        world.add()

    message = caught.value.msg
    assert "2 of 2" in message
    assert message.count("IP address reservation failed: replace danmnets/ext") == 2
    assert world.store.load("c1") is None
