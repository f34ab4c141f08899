"""One table row per network rule, each allowed and denied, through ``rules.validate_network``."""

from __future__ import annotations

from typing import Any

import pytest

from webhook import rules
from webhook.rules import ConnectedPod, NetworkReview

from .builders import model, network, tenant_config

POD = ConnectedPod("pod-1", "ns")

# (id, kind, operation, new, old, connected, expected rule or None, message core)
CASES: list[tuple[str, str, str, dict[str, Any], dict[str, Any] | None, Any, Any, str]] = [
    ("plain-l2-ok", "DanmNet", "CREATE", network(host_device="ens4"), None, None, None, ""),
    ("cidr-ok", "DanmNet", "CREATE", network(cidr="10.0.0.0/24"), None, None, None, ""),
    (
        "cidr-invalid",
        "DanmNet",
        "CREATE",
        network(cidr="10.0.0/24"),
        None,
        None,
        rules.CIDR4,
        "Invalid CIDR: 10.0.0/24",
    ),
    (
        "cidr-ipv6-family",
        "DanmNet",
        "CREATE",
        network(cidr="2001:db8::/64"),
        None,
        None,
        rules.CIDR4,
        "Invalid CIDR: 2001:db8::/64: cidr takes IPv4 only",
    ),
    ("cidr-slash8-ok", "DanmNet", "CREATE", network(cidr="10.0.0.0/8"), None, None, None, ""),
    (
        "cidr-slash7",
        "DanmNet",
        "CREATE",
        network(cidr="10.0.0.0/7"),
        None,
        None,
        rules.CIDR4,
        "Netmask of the IPv4 CIDR is bigger than the maximum allowed /8",
    ),
    (
        "routes-without-cidr",
        "DanmNet",
        "CREATE",
        network(routes={"10.1.0.0/16": "10.0.0.1"}),
        None,
        None,
        rules.ROUTES4,
        "IP routes cannot be defined for a L2 network",
    ),
    (
        "route-gw-inside-ok",
        "DanmNet",
        "CREATE",
        network(cidr="10.0.0.0/24", routes={"10.1.0.0/16": "10.0.0.1"}),
        None,
        None,
        None,
        "",
    ),
    (
        "route-gw-outside",
        "DanmNet",
        "CREATE",
        network(cidr="10.0.0.0/24", routes={"10.1.0.0/16": "10.9.0.1"}),
        None,
        None,
        rules.ROUTES4,
        "Specified GW address:10.9.0.1 is not part of CIDR:10.0.0.0/24",
    ),
    (
        "route-gw-garbage",
        "DanmNet",
        "CREATE",
        network(cidr="10.0.0.0/24", routes={"10.1.0.0/16": "gw"}),
        None,
        None,
        rules.ROUTES4,
        "Specified GW address:gw is not part of CIDR:10.0.0.0/24",
    ),
    (
        "route-destination-bad",
        "DanmNet",
        "CREATE",
        network(cidr="10.0.0.0/24", routes={"10.1.0.0": "10.0.0.1"}),
        None,
        None,
        rules.ROUTES4,
        "Route destination:10.1.0.0 is not a valid IPv4 CIDR",
    ),
    ("net6-ok", "DanmNet", "CREATE", network(net6="2001:db8::/64"), None, None, None, ""),
    (
        "net6-invalid",
        "DanmNet",
        "CREATE",
        network(net6="2001:zz::/64"),
        None,
        None,
        rules.NET6,
        "Invalid CIDR: 2001:zz::/64",
    ),
    (
        "net6-ipv4-family",
        "DanmNet",
        "CREATE",
        network(net6="10.0.0.0/24"),
        None,
        None,
        rules.NET6,
        "net6 takes IPv6 only",
    ),
    (
        "routes6-without-net6",
        "DanmNet",
        "CREATE",
        network(routes6={"2001:db9::/64": "2001:db8::1"}),
        None,
        None,
        rules.ROUTES6,
        "IP routes cannot be defined for a L2 network",
    ),
    (
        "route6-gw-outside",
        "DanmNet",
        "CREATE",
        network(net6="2001:db8::/64", routes6={"2001:db9::/64": "2001:db7::1"}),
        None,
        None,
        rules.ROUTES6,
        "Specified GW address:2001:db7::1 is not part of CIDR:2001:db8::/64",
    ),
    (
        "route6-gw-inside-ok",
        "DanmNet",
        "CREATE",
        network(net6="2001:db8::/64", routes6={"2001:db9::/64": "2001:db8::1"}),
        None,
        None,
        None,
        "",
    ),
    (
        "alloc-on-create",
        "DanmNet",
        "CREATE",
        network(cidr="10.0.0.0/30", alloc="kA=="),
        None,
        None,
        rules.ALLOC,
        "Allocation bitmask shall not be manually defined upon creation!",
    ),
    (
        "alloc6-on-create",
        "DanmNet",
        "CREATE",
        network(net6="2001:db8::/64", alloc6="gA=="),
        None,
        None,
        rules.ALLOC,
        "Allocation bitmask shall not be manually defined upon creation!",
    ),
    (
        "alloc-on-update-ok",
        "DanmNet",
        "UPDATE",
        network(cidr="10.0.0.0/30", alloc="wA=="),
        network(cidr="10.0.0.0/30", alloc="kA=="),
        None,
        None,
        "",
    ),
    (
        "alloc-on-update-wrong-size",
        "DanmNet",
        "UPDATE",
        network(cidr="10.0.0.0/24", alloc="kA=="),
        network(cidr="10.0.0.0/24", alloc="gA=="),
        None,
        rules.ALLOC,
        "Allocation bitmask does not fit CIDR:10.0.0.0/24",
    ),
    (
        "pool-without-cidr",
        "DanmNet",
        "CREATE",
        network(allocation_pool={"start": "10.0.0.2"}),
        None,
        None,
        rules.POOL_WITHOUT_CIDR,
        "Allocation pool cannot be defined without CIDR!",
    ),
    (
        "pool-empty-without-cidr-ok",
        "DanmNet",
        "CREATE",
        network(allocation_pool={"start": "", "end": ""}),
        None,
        None,
        None,
        "",
    ),
    (
        "pool-start-outside",
        "DanmNet",
        "CREATE",
        network(cidr="10.0.0.0/24", allocation_pool={"start": "10.0.1.1", "end": "10.0.0.9"}),
        None,
        None,
        rules.POOL_IN_CIDR,
        "Allocation pool is outside of defined CIDR",
    ),
    (
        "pool-end-outside",
        "DanmNet",
        "CREATE",
        network(cidr="10.0.0.0/24", allocation_pool={"start": "10.0.0.1", "end": "10.0.1.9"}),
        None,
        None,
        rules.POOL_IN_CIDR,
        "Allocation pool is outside of defined CIDR",
    ),
    (
        "pool-inside-ok",
        "DanmNet",
        "CREATE",
        network(cidr="10.0.0.0/24", allocation_pool={"start": "10.0.0.10", "end": "10.0.0.20"}),
        None,
        None,
        None,
        "",
    ),
    (
        "pool-reversed",
        "DanmNet",
        "CREATE",
        network(cidr="10.0.0.0/24", allocation_pool={"start": "10.0.0.20", "end": "10.0.0.10"}),
        None,
        None,
        rules.POOL_ORDER,
        "Allocation pool start:10.0.0.20 is bigger than or equal to allocation pool end:10.0.0.10",
    ),
    (
        "pool-default-of-slash31",
        "DanmNet",
        "CREATE",
        network(cidr="10.0.0.0/31"),
        None,
        None,
        rules.POOL_ORDER,
        "Allocation pool start:10.0.0.1 is bigger than or equal to",
    ),
    (
        "pool-default-of-slash32",
        "DanmNet",
        "CREATE",
        network(cidr="10.0.0.0/32"),
        None,
        None,
        rules.POOL_IN_CIDR,
        "Allocation pool is outside of defined CIDR",
    ),
    (
        "vlan-and-vxlan",
        "DanmNet",
        "CREATE",
        network(vlan=5, vxlan=6),
        None,
        None,
        rules.VIDS,
        "VLAN ID and VxLAN ID parameters are mutually exclusive",
    ),
    (
        "vlan-only-ok",
        "DanmNet",
        "CREATE",
        network(host_device="ens4", vlan=5),
        None,
        None,
        None,
        "",
    ),
    (
        "vlan-out-of-range",
        "DanmNet",
        "CREATE",
        network(vlan=5000),
        None,
        None,
        rules.VID_RANGE,
        "vlan 5000 is outside 1-4094",
    ),
    (
        "networkid-missing",
        "DanmNet",
        "CREATE",
        network(network_id=None),
        None,
        None,
        rules.NID_MISSING,
        "Spec.NetworkID mandatory parameter is missing!",
    ),
    (
        "networkid-long-dynamic",
        "DanmNet",
        "CREATE",
        network(network_id="a" * 12),
        None,
        None,
        rules.NID_LENGTH,
        "Spec.NetworkID cannot be longer than 11 characters",
    ),
    (
        "networkid-long-static-ok",
        "DanmNet",
        "CREATE",
        network(network_id="a" * 15, network_type="flannel"),
        None,
        None,
        None,
        "",
    ),
    (
        "networkid-vlan-ifname-too-long",
        "DanmNet",
        "CREATE",
        network(network_id="a" * 11, vlan=4000),
        None,
        None,
        rules.HOST_IFNAME,
        "Spec.NetworkID is unusable",
    ),
    (
        "allowed-tenants-danmnet",
        "DanmNet",
        "CREATE",
        network(spec_extra={"AllowedTenants": []}),
        None,
        None,
        rules.ALLOWED_TENANTS,
        "AllowedTenants attribute is only valid for the ClusterNetwork API!",
    ),
    (
        "allowed-tenants-clusternetwork-ok",
        "ClusterNetwork",
        "CREATE",
        network("ClusterNetwork", spec_extra={"AllowedTenants": ["a"]}),
        None,
        None,
        None,
        "",
    ),
    (
        "allowed-tenants-tenantnetwork",
        "TenantNetwork",
        "CREATE",
        network("TenantNetwork", spec_extra={"AllowedTenants": ["a"]}),
        None,
        None,
        rules.ALLOWED_TENANTS,
        "AllowedTenants attribute is only valid",
    ),
    (
        "sriov-without-pool",
        "DanmNet",
        "CREATE",
        network(network_type="sriov", host_device="e"),
        None,
        None,
        rules.DEVICE,
        "Spec.Options.device_pool must, and Spec.Options.host_device",
    ),
    (
        "sriov-uppercase-without-pool",
        "DanmNet",
        "CREATE",
        network(network_type="SRIOV"),
        None,
        None,
        rules.DEVICE,
        "Spec.Options.device_pool must",
    ),
    (
        "sriov-with-pool-ok",
        "DanmNet",
        "CREATE",
        network(network_type="sriov", device_pool="a/b"),
        None,
        None,
        None,
        "",
    ),
    (
        "device-and-pool",
        "DanmNet",
        "CREATE",
        network(host_device="e", device_pool="a/b"),
        None,
        None,
        rules.DEVICE,
        "Spec.Options.device_pool and Spec.Options.host_device cannot be",
    ),
    (
        "tenantnetwork-sriov-without-pool",
        "TenantNetwork",
        "CREATE",
        network("TenantNetwork", network_type="sriov"),
        None,
        None,
        rules.DEVICE,
        "Spec.Options.device_pool must",
    ),
    (
        "tenantnetwork-vlan-on-create",
        "TenantNetwork",
        "CREATE",
        network("TenantNetwork", vlan=7),
        None,
        None,
        rules.TNET_VNI,
        "Manually configuring Spec.Options.vlan, or Spec.Options.vxlan",
    ),
    (
        "tenantnetwork-vxlan-on-create",
        "TenantNetwork",
        "CREATE",
        network("TenantNetwork", vxlan=7),
        None,
        None,
        rules.TNET_VNI,
        "Manually configuring",
    ),
    (
        "tenantnetwork-update-keeps-vlan-ok",
        "TenantNetwork",
        "UPDATE",
        network("TenantNetwork", host_device="ens4", vlan=7, cidr="10.0.0.0/24"),
        network("TenantNetwork", host_device="ens4", vlan=7),
        None,
        None,
        "",
    ),
    (
        "tenantnetwork-update-vlan",
        "TenantNetwork",
        "UPDATE",
        network("TenantNetwork", host_device="ens4", vlan=8),
        network("TenantNetwork", host_device="ens4", vlan=7),
        None,
        rules.TNET_FIXED,
        "Manually changing any one of Spec.Options.host_device, device_pool, vlan, or vxlan",
    ),
    (
        "tenantnetwork-update-vxlan",
        "TenantNetwork",
        "UPDATE",
        network("TenantNetwork", host_device="ens4", vxlan=8),
        network("TenantNetwork", host_device="ens4", vxlan=7),
        None,
        rules.TNET_FIXED,
        "Manually changing",
    ),
    (
        "tenantnetwork-update-host-device",
        "TenantNetwork",
        "UPDATE",
        network("TenantNetwork", host_device="ens5"),
        network("TenantNetwork", host_device="ens4"),
        None,
        rules.TNET_FIXED,
        "Manually changing",
    ),
    (
        "tenantnetwork-update-device-pool",
        "TenantNetwork",
        "UPDATE",
        network("TenantNetwork", network_type="sriov", device_pool="a/c"),
        network("TenantNetwork", network_type="sriov", device_pool="a/b"),
        None,
        rules.TNET_FIXED,
        "Manually changing",
    ),
    (
        "vni-change-with-pods",
        "DanmNet",
        "UPDATE",
        network(host_device="e", vlan=8),
        network(host_device="e", vlan=7),
        POD,
        rules.DEVICE_CHANGE,
        "cannot change VNI/host_device of a network which has Pods connected to it e.g. "
        "Pod:pod-1 in namespace:ns",
    ),
    (
        "vni-change-without-pods-ok",
        "DanmNet",
        "UPDATE",
        network(host_device="e", vlan=8),
        network(host_device="e", vlan=7),
        None,
        None,
        "",
    ),
    (
        "host-device-change-with-pods",
        "ClusterNetwork",
        "UPDATE",
        network("ClusterNetwork", host_device="f"),
        network("ClusterNetwork", host_device="e"),
        POD,
        rules.DEVICE_CHANGE,
        "cannot change VNI/host_device",
    ),
    (
        "cidr-change-with-pods",
        "DanmNet",
        "UPDATE",
        network(cidr="10.0.1.0/24"),
        network(cidr="10.0.0.0/24"),
        POD,
        rules.CIDR_CHANGE,
        "cannot change cidr of a network which has Pods connected to it e.g. Pod:pod-1",
    ),
    (
        "net6-change-with-pods",
        "TenantNetwork",
        "UPDATE",
        network("TenantNetwork", net6="2001:db9::/64"),
        network("TenantNetwork", net6="2001:db8::/64"),
        POD,
        rules.CIDR_CHANGE,
        "cannot change net6",
    ),
    (
        "cidr-change-without-pods-ok",
        "DanmNet",
        "UPDATE",
        network(cidr="10.0.1.0/24"),
        network(cidr="10.0.0.0/24"),
        None,
        None,
        "",
    ),
]


@pytest.mark.parametrize(
    ("kind", "operation", "new", "old", "connected", "rule", "message"),
    [row[1:] for row in CASES],
    ids=[row[0] for row in CASES],
)
def test_network_rule(kind, operation, new, old, connected, rule, message):
    assert new["kind"] == kind
    review = NetworkReview(operation, model(new), model(old) if old else None, connected)
    denial = rules.validate_network(review)
    if rule is None:
        assert denial is None
        return
    assert denial is not None
    assert denial.rule is rule
    assert message in denial.message
    text = str(denial)
    assert text.startswith(denial.message)
    assert rule.code in text
    assert denial.field in text


def test_denial_text_names_rule_field_and_readme_number():
    review = NetworkReview("CREATE", model(network(cidr="10.0.0.0/7")))
    assert str(rules.validate_network(review)) == (
        "Netmask of the IPv4 CIDR is bigger than the maximum allowed /8 [rule V-ip4 / README "
        "DanmNet rule 1: cidr must be an IPv4 CIDR no larger than /8; field spec.Options.cidr]"
    )


def test_validators_run_in_the_original_order():
    # NB: both V-ip4 and V-nid are broken; V-ip4 comes first (§7.2).
    review = NetworkReview("CREATE", model(network(network_id=None, cidr="bad")))
    denial = rules.validate_network(review)
    assert denial is not None
    assert denial.rule is rules.CIDR4


def test_tenant_network_networkid_is_checked_after_mutation():
    review = NetworkReview("CREATE", model(network("TenantNetwork", network_id=None)))
    assert rules.validate_network(review) is None
    denial = rules.first_denial(review, rules.POST_VALIDATORS)
    assert denial is not None
    assert denial.rule is rules.NID_MISSING


@pytest.mark.parametrize(
    ("new", "old", "needed"),
    [
        (network(cidr="10.0.0.0/24", alloc="x"), network(cidr="10.0.0.0/24", alloc="y"), False),
        (network(cidr="10.0.1.0/24"), network(cidr="10.0.0.0/24"), True),
        (network(vlan=2), network(vlan=1), True),
        (network(device_pool="a/b"), network(), True),
        (network(container_prefix="x"), network(), False),
    ],
)
def test_needs_connected_check(new, old, needed):
    assert rules.needs_connected_check(model(new), model(old)) is needed


# ---- DELETE and the DanmEp lookup


def _ep(network_name: str, api_type: str, namespace: str = "ns", pod: str = "p") -> Any:
    return {
        "metadata": {"name": "ep", "namespace": namespace},
        "spec": {"NetworkName": network_name, "apiType": api_type, "Pod": pod},
    }


@pytest.mark.parametrize(
    ("endpoints", "kind", "namespace", "found"),
    [
        ([_ep("net", "")], "DanmNet", "ns", ConnectedPod("p", "ns")),  # NB: §13.8 fixed
        ([_ep("net", "DanmNet")], "DanmNet", "ns", ConnectedPod("p", "ns")),
        ([_ep("net", "TenantNetwork")], "DanmNet", "ns", None),
        ([_ep("net", "")], "TenantNetwork", "ns", None),
        ([_ep("other", "DanmNet")], "DanmNet", "ns", None),
        ([_ep("net", "DanmNet", namespace="elsewhere")], "DanmNet", "ns", None),
        (
            [_ep("net", "ClusterNetwork", namespace="x")],
            "ClusterNetwork",
            "",
            ConnectedPod("p", "x"),
        ),
        ([{"spec": "garbage"}, _ep("net", "")], "DanmNet", "ns", ConnectedPod("p", "ns")),
    ],
)
def test_find_connected(endpoints, kind, namespace, found):
    assert rules.find_connected(endpoints, kind=kind, name="net", namespace=namespace) == found


def test_delete_rule_both_ways():
    assert rules.check_delete(None) is None
    denial = rules.check_delete(ConnectedPod("p", "ns"))
    assert denial is not None
    assert denial.rule is rules.DELETE_CONNECTED
    assert denial.message == (
        "Network cannot be deleted because there are Pods still connected to it e.g. "
        "Pod:p in namespace:ns"
    )


# ---- TenantConfig

TC_OK = tenant_config([{"name": "ens4", "vniType": "vlan", "vniRange": "10-20"}], {"flannel": "f"})
TC_CASES: list[tuple[str, dict[str, Any], str, dict[str, Any] | None, Any, str]] = [
    ("valid", TC_OK, "CREATE", None, None, ""),
    ("network-ids-only-ok", tenant_config(None, {"flannel": "flannel"}), "CREATE", None, None, ""),
    (
        "empty",
        tenant_config(),
        "CREATE",
        None,
        rules.TC_NOT_EMPTY,
        "Either hostDevices, or networkIds must be provided!",
    ),
    ("profile-without-vni-ok", tenant_config([{"name": "ens6"}]), "CREATE", None, None, ""),
    (
        "empty-name",
        tenant_config([{"name": ""}]),
        "CREATE",
        None,
        rules.TC_NAME,
        "name attribute of a hostDevice must not be empty!",
    ),
    (
        "type-without-range",
        tenant_config([{"name": "e", "vniType": "vlan"}]),
        "CREATE",
        None,
        rules.TC_VNI_PAIR,
        "vniRange and vniType attributes must be provided together for interface:e",
    ),
    (
        "range-without-type",
        tenant_config([{"name": "e", "vniRange": "1-2"}]),
        "CREATE",
        None,
        rules.TC_VNI_PAIR,
        "must be provided together",
    ),
    (
        "bad-vni-type",
        tenant_config([{"name": "e", "vniType": "vlon", "vniRange": "1"}]),
        "CREATE",
        None,
        rules.TC_VNI_TYPE,
        "vlon is not in allowed vniType values: {vlan,vxlan} for interface:e",
    ),
    (
        "alloc-on-create",
        tenant_config([{"name": "e", "vniType": "vlan", "vniRange": "1", "alloc": "gA=="}]),
        "CREATE",
        None,
        rules.TC_ALLOC,
        "Allocation bitmask for interface: e shall not be manually defined upon creation!",
    ),
    (
        "bad-range",
        tenant_config([{"name": "e", "vniType": "vlan", "vniRange": "1-x"}]),
        "CREATE",
        None,
        rules.TC_RANGE,
        "vniRange for interface:e must be improperly formatted because its parsing fails with:",
    ),
    (
        "range-over-max",
        tenant_config([{"name": "e", "vniType": "vxlan", "vniRange": "4999-5001"}]),
        "CREATE",
        None,
        rules.TC_RANGE,
        "vniRange for interface:e is invalid, because it cannot contain VNIs over the maximum "
        "supported number that is:5000",
    ),
    (
        "duplicate-profile",
        tenant_config([{"name": "e"}, {"name": "e"}]),
        "CREATE",
        None,
        rules.TC_DUPLICATE,
        "interface profile:e with vniType:(none) is listed more than once",
    ),
    (
        "same-nic-two-vni-types-ok",
        tenant_config(
            [
                {"name": "e", "vniType": "vlan", "vniRange": "1"},
                {"name": "e", "vniType": "vxlan", "vniRange": "1"},
            ]
        ),
        "CREATE",
        None,
        None,
        "",
    ),
    (
        "empty-mapping-value",
        tenant_config(None, {"flannel": ""}),
        "CREATE",
        None,
        rules.TC_MAPPING,
        "neither NetworkID, nor NetworkType can be empty in a NetworkID mapping!",
    ),
    (
        "long-mapping-dynamic",
        tenant_config(None, {"ipvlan": "a" * 12}),
        "CREATE",
        None,
        rules.TC_MAPPING_LENGTH,
        f"NetworkID:{'a' * 12} cannot be longer than 11 characters",
    ),
    (
        "long-mapping-static-ok",
        tenant_config(None, {"flannel": "a" * 20}),
        "CREATE",
        None,
        None,
        "",
    ),
]


def _with_alloc(alloc: str) -> dict[str, Any]:
    return tenant_config([{"name": "e", "vniType": "vlan", "vniRange": "1", "alloc": alloc}])


TC_CASES += [
    ("alloc-kept-on-update-ok", _with_alloc("gA=="), "UPDATE", _with_alloc("gA=="), None, ""),
    (
        "alloc-wrong-size-on-update",
        _with_alloc("wA=="),
        "UPDATE",
        _with_alloc("gA=="),
        rules.TC_ALLOC,
        "must be the 836-character base64 form of 5001 bits",
    ),
]


@pytest.mark.parametrize(
    ("config", "operation", "old", "rule", "message"),
    [row[1:] for row in TC_CASES],
    ids=[row[0] for row in TC_CASES],
)
def test_tenant_config_rule(config, operation, old, rule, message):
    from common.model import TenantConfig

    denial = rules.validate_tenant_config(
        TenantConfig.from_dict(config),
        operation=operation,
        old=TenantConfig.from_dict(old) if old else None,
    )
    if rule is None:
        assert denial is None
        return
    assert denial is not None
    assert denial.rule is rule
    assert message in denial.message
