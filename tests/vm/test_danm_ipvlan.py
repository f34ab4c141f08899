"""The built-in IPVLAN flow of ``danm`` ADD/DEL on a real kernel with ipvlan and 802.1Q.

Marked ``vm``: runs inside the QEMU guest (tests/vm/policy.py). The guest has no API server, so
``cmd_add``/``cmd_del`` run in-process with the recording API fake of the unit tests and the
*real* ``PyrouteNetlink``; the fake keeps DANM IPAM and DanmEps honest (conditional writes),
the kernel does the rest. "This process's namespace" (where the adapter creates IPVLAN children
before moving them) is redirected to a throwaway host namespace, so nothing touches the guest's
own namespace. Read-backs use raw pyroute2 inside the Pod namespace.
"""

from __future__ import annotations

import functools
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from common.io.netlink import Netlink, PyrouteNetlink
from common.model.resources import DANMEPS, DANMNETS, PODS
from danm.add import AddRequest, cmd_add
from danm.delete import DelRequest, NodeStore, cmd_del
from tests.netns_helpers import (
    create_veth_pair,
    ip,
    kernel_supports,
    netns_path,
    remove_leftovers,
    requires_netns,
    throwaway_netns,
)
from tests.unit.danm.fakes import FakeExec, FakeKube

pytestmark = [pytest.mark.vm, requires_netns]

NS = "vm"
PARENT = "hostnic0"


@pytest.fixture(scope="module", autouse=True)
def _guest_kernel() -> Iterator[None]:
    missing = [kind for kind in ("ipvlan", "vlan") if not kernel_supports(kind)]
    if missing:
        pytest.skip(f"this kernel lacks link kinds {missing} (run in the QEMU guest)")
    yield
    remove_leftovers()


class HostScoped:
    """The real adapter, where ``netns=None`` ("here") means the test's host namespace."""

    def __init__(self, inner: PyrouteNetlink, host_path: str) -> None:
        self.inner = inner
        self.host_path = host_path

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("netns") is None:
                kwargs["netns"] = self.host_path
            return method(*args, **kwargs)

        return call


class Guest:
    def __init__(self, host: str, pod: str, tmp_path: Path) -> None:
        self.host = host
        self.pod = pod
        self.pod_path = netns_path(pod)
        self.kube = FakeKube()
        self.exec = FakeExec()
        self.netlink = cast(Netlink, HostScoped(PyrouteNetlink(), netns_path(host)))
        self.store = NodeStore(str(tmp_path / "state"))

    def network(self, name: str, **options: Any) -> None:
        self.kube.put(
            DANMNETS,
            {
                "apiVersion": "danm.k8s.io/v1",
                "kind": "DanmNet",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"NetworkID": options.pop("network_id", name), "Options": options},
            },
        )

    def create_pod(self, connections: list[dict[str, Any]]) -> None:
        annotations = {"danm.k8s.io/interfaces": json.dumps(connections)}
        self.kube.put(
            PODS,
            {"metadata": {"name": "p", "namespace": NS, "uid": "u", "annotations": annotations}},
        )

    def add(self) -> Any:
        return cmd_add(
            AddRequest(
                container_id="c1",
                netns=self.pod_path,
                ifname="eth0",
                cni_args=f"IgnoreUnknown=1;K8S_POD_NAMESPACE={NS};K8S_POD_NAME=p",
                cni_path=(),
                cni_dir="/nonexistent",
                timeout_s=60,
                hostname="guest",
            ),
            api=self.kube,
            netlink=self.netlink,
            exec_=self.exec,
            store=self.store,
        )

    def delete(self) -> None:
        cmd_del(
            DelRequest(
                container_id="c1",
                netns=self.pod_path,
                ifname="eth0",
                cni_args=f"K8S_POD_NAMESPACE={NS};K8S_POD_NAME=p",
                cni_path=(),
            ),
            api=self.kube,
            netlink=self.netlink,
            exec_=self.exec,
            store=self.store,
            timeout_s=60,
        )


@pytest.fixture
def guest(tmp_path: Path) -> Iterator[Guest]:
    with throwaway_netns() as host, throwaway_netns() as pod, throwaway_netns() as peer:
        create_veth_pair(host, PARENT, "peer0", peer_netns=peer)
        yield Guest(host, pod, tmp_path)


def _pod_view(netns: str) -> dict[str, dict[str, Any]]:
    from pyroute2 import IPRoute

    view: dict[str, dict[str, Any]] = {}
    with IPRoute(netns=netns_path(netns), flags=0) as ipr:
        for msg in ipr.link("dump"):
            info = msg.get("IFLA_LINKINFO")
            view[msg.get("ifname")] = {
                "kind": info.get("IFLA_INFO_KIND") if info is not None else None,
                "mac": msg.get("address"),
                "addresses": {
                    f"{a.get('address')}/{a['prefixlen']}"
                    for a in ipr.addr("dump", index=msg["index"])
                    if a["index"] == msg["index"] and not a.get("address").startswith("fe80")
                },
            }
        view["_routes"] = {
            "main": {
                (f"{r.get('dst')}/{r['dst_len']}", r.get("gateway"))
                for family in (socket.AF_INET, socket.AF_INET6)
                for r in ipr.route("dump", family=family, table=254)
                if r.get("gateway") and r.get("dst")
            },
            "t77": {
                (f"{r.get('dst')}/{r['dst_len']}", r.get("gateway"))
                for r in ipr.route("dump", family=socket.AF_INET, table=77)
                if r.get("gateway")
            },
            "rules": {
                (f"{r.get('src')}/{r['src_len']}", r.get("FRA_TABLE") or r.get("table"))
                for r in ipr.rule("dump", family=socket.AF_INET)
                if r.get("src")
            },
        }
    return view


def test_ipvlan_add_with_routes_policy_routes_and_dual_stack_then_del(guest: Guest) -> None:
    guest.network(
        "ipv",
        host_device=PARENT,
        cidr="10.60.0.0/24",
        net6="fd60::/64",
        routes={"10.61.0.0/16": "10.60.0.1"},
        routes6={"fd61::/64": "fd60::1"},
        rt_tables=77,
    )
    guest.create_pod(
        [
            {
                "network": "ipv",
                "ip": "dynamic",
                "ip6": "dynamic",
                "proutes": {"0.0.0.0/0": "10.60.0.1"},
            }
        ]
    )

    result = guest.add()

    view = _pod_view(guest.pod)
    eth0 = view["eth0"]
    assert eth0["kind"] == "ipvlan"
    assert eth0["addresses"] == {ip.address for ip in result.ips}
    (iface,) = result.interfaces
    assert (iface.name, iface.mac) == ("eth0", eth0["mac"])
    v4 = next(ip.address for ip in result.ips if ip.family == "4")
    assert ("10.61.0.0/16", "10.60.0.1") in view["_routes"]["main"]
    assert ("fd61::/64", "fd60::1") in view["_routes"]["main"]
    assert (v4, 77) in view["_routes"]["rules"]
    assert ("None/0", "10.60.0.1") in view["_routes"]["t77"] or (
        ("0.0.0.0/0", "10.60.0.1") in view["_routes"]["t77"]
    )
    (ep,) = guest.kube.of(DANMEPS)
    assert ep["spec"]["NetworkType"] == "ipvlan"
    assert ep["spec"]["Interface"]["MacAddress"] == eth0["mac"]
    host_links = ip("-n", guest.host, "-o", "link", "show").stdout
    assert "dnm" not in host_links

    guest.delete()

    assert "eth0" not in _pod_view(guest.pod)
    assert guest.kube.of(DANMEPS) == []
    assert guest.store.container_ids() == []


def test_ipvlan_on_a_vlan_parent_that_danm_creates_when_missing(guest: Guest) -> None:
    guest.network("vl", network_id="vnet", host_device=PARENT, vlan=300, cidr="10.62.0.0/24")
    guest.create_pod([{"network": "vl", "ip": "dynamic"}])

    guest.add()

    host_links = ip("-n", guest.host, "-d", "link", "show", "vnet.300").stdout
    assert "vlan protocol 802.1Q id 300" in host_links
    assert _pod_view(guest.pod)["eth0"]["kind"] == "ipvlan"
    guest.delete()
    assert "eth0" not in _pod_view(guest.pod)


def test_failed_ipvlan_leaves_nothing_behind(guest: Guest) -> None:
    guest.network("ok", host_device=PARENT, cidr="10.63.0.0/24")
    guest.network("bad", host_device="nosuchnic0", cidr="10.64.0.0/24")
    guest.create_pod([{"network": "ok", "ip": "dynamic"}, {"network": "bad", "ip": "dynamic"}])

    with pytest.raises(Exception, match="nosuchnic0"):
        guest.add()

    assert set(_pod_view(guest.pod)) == {"lo", "_routes"}
    assert guest.kube.of(DANMEPS) == []
    assert guest.store.container_ids() == []
