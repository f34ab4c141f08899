"""Connection planning: names, backends, IPAM need, parents, defaults and the error report."""

from __future__ import annotations

from typing import Any

import pytest

from common.model import Network, NetworkConnection, NetworkKind, network_from_dict
from danm.plan import (
    NO_CONNECTIONS_MESSAGE,
    Backend,
    NetworkRef,
    PlanError,
    PodInfo,
    classify_network_type,
    default_network_candidates,
    needs_danm_ipam,
    network_ref,
    plan_attachments,
    required_networks,
)

POD = PodInfo(name="web-0", namespace="prod", uid="uid-1", labels={"app": "web"})
DN, TN, CN = NetworkKind.DANMNET, NetworkKind.TENANT_NETWORK, NetworkKind.CLUSTER_NETWORK


def make_net(
    kind: NetworkKind = DN,
    name: str = "net",
    *,
    network_type: str = "ipvlan",
    network_id: str = "nid",
    namespace: str | None = "prod",
    allowed: list[str] | None = None,
    **options: Any,
) -> Network:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None and kind is not CN:
        metadata["namespace"] = namespace
    spec: dict[str, Any] = {
        "NetworkID": network_id,
        "NetworkType": network_type,
        "Options": {"host_device": "ens3", **options},
    }
    if allowed is not None:
        spec["AllowedTenants"] = allowed
    return network_from_dict(
        {"apiVersion": "danm.k8s.io/v1", "kind": kind.value, "metadata": metadata, "spec": spec}
    )


def conn(kind: NetworkKind = DN, name: str = "net", **kwargs: Any) -> NetworkConnection:
    return NetworkConnection(kind=kind, name=name, **kwargs)


def plan(connections, *networks: Network, scheme: str = "", default: Network | None = None):
    table = {network_ref(n.network_kind, n.name, POD.namespace): n for n in networks}
    return plan_attachments(POD, connections, table, naming_scheme=scheme, default_network=default)


@pytest.mark.parametrize(
    ("network_type", "backend", "delegate"),
    [
        ("", Backend.BUILTIN_IPVLAN, ""),
        ("ipvlan", Backend.BUILTIN_IPVLAN, ""),
        ("IPVLAN", Backend.BUILTIN_IPVLAN, ""),
        ("IpVlan", Backend.BUILTIN_IPVLAN, ""),
        ("macvlan", Backend.DYNAMIC_DELEGATE, "macvlan"),
        ("MACVLAN", Backend.DYNAMIC_DELEGATE, "macvlan"),
        ("SrIoV", Backend.DYNAMIC_DELEGATE, "sriov"),
        ("flannel", Backend.STATIC_DELEGATE, "flannel"),
        ("Bridge", Backend.STATIC_DELEGATE, "Bridge"),
    ],
)
def test_classify_network_type(network_type, backend, delegate):
    assert classify_network_type(network_type) == (backend, delegate)


def test_single_ipvlan_connection():
    network = make_net()
    (attachment,) = plan([conn(ip="dynamic", proutes={"10.9.0.0/16": "10.0.0.254"})], network)
    assert attachment.index == 0
    assert attachment.ifname == "eth0"
    assert attachment.backend is Backend.BUILTIN_IPVLAN
    assert attachment.network is network
    assert attachment.network_type == "ipvlan"
    assert attachment.parent_device == "ens3"
    assert attachment.needs_danm_ipam
    assert attachment.ip_request == "dynamic"
    assert attachment.ip6_request == ""
    assert attachment.proutes == {"10.9.0.0/16": "10.0.0.254"}
    assert attachment.ref == NetworkRef(DN, "net", "prod")


def test_order_names_and_backends_of_several_connections():
    networks = [
        make_net(DN, "a"),
        make_net(TN, "b", network_type="MacVlan", container_prefix="ext"),
        make_net(CN, "c", network_type="sriov", device_pool="nokia.k8s.io/vf"),
        make_net(DN, "d", network_type="bridge"),
    ]
    attachments = plan(
        [conn(DN, "a"), conn(TN, "b"), conn(CN, "c"), conn(DN, "d"), conn(DN, "a")], *networks
    )
    assert [a.ifname for a in attachments] == ["eth0", "ext1", "eth2", "eth3", "eth4"]
    assert [a.delegate_type for a in attachments] == ["", "macvlan", "sriov", "bridge", ""]
    assert [a.network_type for a in attachments] == [
        "ipvlan",
        "MacVlan",
        "sriov",
        "bridge",
        "ipvlan",
    ]
    assert [a.parent_device for a in attachments] == ["ens3", "ens3", "", "", "ens3"]
    assert attachments[2].device_pool == "nokia.k8s.io/vf"
    assert attachments[2].ref == NetworkRef(CN, "c", "")


@pytest.mark.parametrize(
    ("options", "parent"),
    [
        ({}, "ens3"),
        ({"vlan": 100}, "nid.100"),
        ({"vxlan": 600}, "vx_nid"),
        ({"vxlan": 600, "vlan": 100}, "vx_nid"),
    ],
)
@pytest.mark.parametrize("network_type", ["ipvlan", "macvlan"])
def test_parent_device(options, parent, network_type):
    (attachment,) = plan([conn()], make_net(network_type=network_type, **options))
    assert attachment.parent_device == parent


@pytest.mark.parametrize(
    ("network_type", "options", "ip", "ip6", "needed"),
    [
        ("ipvlan", {}, "dynamic", "", True),
        ("ipvlan", {}, "", "", False),
        ("ipvlan", {}, "none", "none", False),
        ("macvlan", {}, "", "dynamic", True),
        ("sriov", {"device_pool": "p"}, "10.0.0.5/24", "", True),
        # static delegates: only when the network has the family's range
        ("bridge", {}, "dynamic", "", False),
        ("bridge", {"cidr": "10.0.0.0/24"}, "dynamic", "", True),
        ("bridge", {"cidr": "10.0.0.0/24"}, "none", "", False),
        ("bridge", {"cidr": "10.0.0.0/24"}, "", "dynamic", False),
        ("bridge", {"net6": "2001:db8::/64"}, "", "dynamic", True),
        ("bridge", {"net6": "2001:db8::/64"}, "dynamic", "", False),
    ],
)
def test_needs_danm_ipam(network_type, options, ip, ip6, needed):
    network = make_net(network_type=network_type, **options)
    backend, _ = classify_network_type(network_type)
    assert needs_danm_ipam(backend, conn(ip=ip, ip6=ip6), network) is needed
    (attachment,) = plan([conn(ip=ip, ip6=ip6)], network)
    assert attachment.needs_danm_ipam is needed


@pytest.mark.parametrize(
    ("kind", "network_type"), [(DN, "ipvlan"), (CN, "macvlan"), (TN, "flannel")]
)
def test_default_network_fallback(kind, network_type):
    default = make_net(kind, "default", network_type=network_type)
    (attachment,) = plan([], default=default)
    assert attachment.ifname == "eth0"
    assert attachment.network is default
    assert attachment.connection == NetworkConnection(kind=kind, name="default", ip="dynamic")


def test_default_network_fallback_respects_allowed_tenants():
    default = make_net(CN, "default", allowed=["kube-system"])
    with pytest.raises(PlanError, match="not in the AllowedTenants whitelist of network:default"):
        plan([], default=default)


def test_no_connections_and_no_default():
    with pytest.raises(PlanError) as caught:
        plan([])
    assert caught.value.problems == (NO_CONNECTIONS_MESSAGE,)
    assert "Pod:prod/web-0" in str(caught.value)


def test_allowed_tenants():
    allowed = make_net(CN, "ok", allowed=["dev", "prod"])
    denied = make_net(CN, "no", allowed=["dev"])
    assert plan([conn(CN, "ok")], allowed)
    with pytest.raises(PlanError) as caught:
        plan([conn(CN, "ok"), conn(CN, "no")], allowed, denied)
    assert caught.value.problems == (
        "connection no.:1 (clusterNetwork:no): Pod:web-0's namespace:prod is not in the "
        "AllowedTenants whitelist of network:no",
    )


@pytest.mark.parametrize(
    ("connections", "networks", "problem"),
    [
        (
            [conn(TN, "ghost")],
            [],
            "connection no.:0 (tenantNetwork:ghost): requested network:ghost of "
            "type:TenantNetwork in namespace:prod does not exist",
        ),
        (
            [conn(CN, "ghost")],
            [],
            "connection no.:0 (clusterNetwork:ghost): requested network:ghost of "
            "type:ClusterNetwork in namespace:(cluster scope) does not exist",
        ),
        (
            [conn(DN, "a"), conn(DN, "b")],
            [make_net(DN, "a"), make_net(DN, "b", container_prefix="verylongprefix_")],
            "connection no.:1 (network:b): container_prefix 'verylongprefix_' for connection "
            "no.:1: interface name 'verylongprefix_1' is 16 bytes long",
        ),
        (
            [conn(DN, "a"), conn(DN, "b")],
            [make_net(DN, "a"), make_net(DN, "b", network_type="sriov")],
            "connection no.:1 (network:b): the network is of type sriov but has no device_pool",
        ),
        (
            [conn(DN, "a")],
            [make_net(DN, "a", network_type="bridge", network_id="")],
            "connection no.:0 (network:a): the network has no NetworkID",
        ),
        (
            [conn(DN, "a")],
            [make_net(DN, "a", host_device="")],
            "connection no.:0 (network:a): network with NetworkID 'nid' has no host_device",
        ),
        (
            [conn(DN, "a")],
            [make_net(DN, "a", network_type="macvlan", network_id="longnetworkid", vlan=4000)],
            "connection no.:0 (network:a): VLAN host interface of NetworkID 'longnetworkid'",
        ),
    ],
)
def test_single_problem(connections, networks, problem):
    with pytest.raises(PlanError) as caught:
        plan(connections, *networks)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(problem)
    assert str(caught.value).startswith("cannot set up networks of Pod:prod/web-0: connection no.:")


def test_too_long_name_is_reported_with_its_length():
    networks = [make_net(DN, "a"), make_net(DN, "b", container_prefix="verylongprefix12")]
    with pytest.raises(PlanError, match="'verylongprefix121' is 17 bytes long"):
        plan([conn(DN, "a"), conn(DN, "b")], *networks)


def test_duplicate_interface_names_under_the_legacy_scheme():
    networks = [
        make_net(DN, "a"),
        make_net(DN, "b", container_prefix="ext"),
        make_net(DN, "c", container_prefix="ext"),
    ]
    assert [a.ifname for a in plan([conn(DN, "a"), conn(DN, "b"), conn(DN, "c")], *networks)] == [
        "eth0",
        "ext1",
        "ext2",
    ]
    with pytest.raises(PlanError) as caught:
        plan([conn(DN, "a"), conn(DN, "b"), conn(DN, "c")], *networks, scheme="legacy")
    assert caught.value.problems == (
        "connection no.:2 (network:c): interface name ext is already used by connection no.:1; "
        "give the networks different container_prefix values (the legacy naming scheme uses "
        "them verbatim)",
    )


def test_duplicate_interface_names_without_legacy():
    # prefix "eth1" at sequence 1 and prefix "eth" at sequence 11 both give "eth11"
    networks = [make_net(DN, "a"), make_net(DN, "p", container_prefix="eth1")]
    connections = [conn(DN, "a"), conn(DN, "p")] + [conn(DN, "a")] * 10
    with pytest.raises(
        PlanError, match=r"connection no\.:11 .*eth11 is already used by connection no\.:1;"
    ):
        plan(connections, *networks)


def test_every_problem_is_reported_at_once():
    networks = [make_net(CN, "denied", allowed=["dev"]), make_net(DN, "sr", network_type="sriov")]
    with pytest.raises(PlanError) as caught:
        plan([conn(CN, "denied"), conn(DN, "sr"), conn(DN, "missing")], *networks)
    error = caught.value
    assert [p.split(":")[1].split(" ")[0] for p in error.problems] == ["0", "1", "2"]
    assert str(error).startswith("cannot set up networks of Pod:prod/web-0, 3 problems:\n  ")


def test_wrong_object_for_a_reference_is_refused():
    impostor = make_net(DN, "other")
    table = {network_ref(DN, "net", "prod"): impostor}
    with pytest.raises(PlanError, match="was given the object DanmNet prod/other instead of"):
        plan_attachments(POD, [conn()], table, naming_scheme="")
    wrong_ns = make_net(DN, "net", namespace="dev")
    with pytest.raises(PlanError, match="DanmNet dev/net instead of DanmNet prod/net"):
        plan_attachments(
            POD, [conn()], {network_ref(DN, "net", "prod"): wrong_ns}, naming_scheme=""
        )


def test_an_object_without_namespace_is_accepted():
    (attachment,) = plan([conn()], make_net(namespace=None))
    assert attachment.ifname == "eth0"


def test_required_networks_and_default_candidates():
    connections = [conn(DN, "a"), conn(CN, "c"), conn(DN, "a"), conn(TN, "a")]
    assert required_networks(POD, connections) == (
        NetworkRef(DN, "a", "prod"),
        NetworkRef(CN, "c", ""),
        NetworkRef(TN, "a", "prod"),
    )
    assert default_network_candidates("prod") == (
        NetworkRef(DN, "default", "prod"),
        NetworkRef(TN, "default", "prod"),
        NetworkRef(CN, "default", ""),
    )
    assert str(NetworkRef(CN, "c", "")) == "ClusterNetwork c"
    assert str(NetworkRef(DN, "a", "prod")) == "DanmNet prod/a"


def test_pod_info_from_object():
    pod = {
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u",
            "labels": {"a": "b", "n": 1},
            "annotations": {"danm.k8s.io/interfaces": "[]"},
        },
        "spec": {},
    }
    assert PodInfo.from_object(pod) == PodInfo(
        name="p",
        namespace="ns",
        uid="u",
        labels={"a": "b"},
        annotations={"danm.k8s.io/interfaces": "[]"},
    )
    assert PodInfo.from_object({}) == PodInfo(name="", namespace="")
    assert PodInfo.from_object(pod).ref == "ns/p"
