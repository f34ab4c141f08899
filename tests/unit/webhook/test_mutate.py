"""Mutations: each one applied where it belongs and left alone where it does not."""

from __future__ import annotations

from typing import Any

import pytest

from common.ipam import ipv4, ipv6, vni
from webhook import mutate, rules
from webhook.patch import build_patch

from .builders import network, tenant_config


def _options(obj: Any) -> Any:
    return obj["spec"]["Options"]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (None, "ipvlan"),
        ("", "ipvlan"),
        ("IPVLAN", "ipvlan"),
        ("ipvlan", "ipvlan"),
        ("flannel", "flannel"),
        ("Bridge", "Bridge"),
        ("sriov", "sriov"),
    ],
)
def test_network_type_default(given, stored):
    result = mutate.default_network(network(network_type=given))
    assert result["spec"]["NetworkType"] == stored


def test_network_type_patch_is_add_when_absent_and_replace_when_present():
    absent = network()
    assert build_patch(absent, mutate.default_network(absent)) == [
        {"op": "add", "path": "/spec/NetworkType", "value": "ipvlan"}
    ]
    upper = network(network_type="IPVLAN")
    assert build_patch(upper, mutate.default_network(upper)) == [
        {"op": "replace", "path": "/spec/NetworkType", "value": "ipvlan"}
    ]


def test_alloc_and_pool_initialised_like_the_ipam():
    obj = network(network_type="ipvlan", cidr="10.0.0.0/29", routes={"10.1.0.0/16": "10.0.0.1"})
    result = mutate.default_network(obj)
    assert _options(result)["alloc"] == "wQ==" == ipv4.init_alloc("10.0.0.0/29", ["10.0.0.1"])
    assert _options(result)["allocation_pool"] == {"start": "10.0.0.1", "end": "10.0.0.6"}
    assert obj["spec"]["Options"].get("alloc") is None, "the argument is left alone"


def test_alloc_and_explicit_pool_kept():
    obj = network(
        network_type="ipvlan",
        cidr="10.0.0.0/30",
        alloc="wA==",
        allocation_pool={"start": "10.0.0.2", "end": "10.0.0.2"},
    )
    assert mutate.default_network(obj) == obj


def test_half_pool_gets_the_other_bound():
    obj = network(network_type="ipvlan", cidr="10.0.0.0/24", allocation_pool={"start": "10.0.0.9"})
    pool = _options(mutate.default_network(obj))["allocation_pool"]
    assert pool == {"start": "10.0.0.9", "end": "10.0.0.254"}


def test_l2_network_gets_no_alloc():
    obj = network(network_type="ipvlan", host_device="ens4")
    assert mutate.default_network(obj) == obj


def test_ipv6_pool_initialised_like_the_ipam():
    obj = network(network_type="ipvlan", net6="2001:db8::/64")
    options = _options(mutate.default_network(obj))
    expected = ipv6.init_pool(ipv6.Ipv6Pool(net6="2001:db8::/64"))
    assert options["allocation_pool_v6"] == {
        "cidr": expected.cidr,
        "start": expected.start,
        "end": expected.end,
    }
    assert options["alloc6"] == expected.alloc6
    assert options["allocation_pool_v6"]["cidr"] == "2001:db8::/112"


def test_ipv6_pool_outside_net6_is_denied():
    obj = network(
        network_type="ipvlan",
        net6="2001:db8::/64",
        allocation_pool_v6={"cidr": "2001:db9::/120"},
    )
    with pytest.raises(rules.Denied) as denied:
        mutate.default_network(obj)
    assert denied.value.denial.rule is rules.POOL6
    assert "outside its net6" in denied.value.denial.message


def test_ipv6_pool_without_net6_is_denied():
    obj = network(network_type="ipvlan", allocation_pool_v6={"cidr": "2001:db9::/120"})
    with pytest.raises(rules.Denied):
        mutate.default_network(obj)


# ---- UPDATE: a changed cidr re-initialises the allocation state


def test_cidr_change_reinitialises_alloc_and_stale_pool():
    old = mutate.default_network(network(network_type="ipvlan", cidr="10.0.0.0/24"))
    new = network(
        network_type="ipvlan",
        cidr="10.0.1.0/24",
        alloc=_options(old)["alloc"],
        allocation_pool={**_options(old)["allocation_pool"], "lastIp": "10.0.0.7/24"},
    )
    prepared = mutate.prepare_update(new, old)
    assert "alloc" not in _options(prepared)
    assert _options(prepared)["allocation_pool"] == {}
    result = mutate.default_network(prepared)
    assert _options(result)["alloc"] == ipv4.init_alloc("10.0.1.0/24")
    assert _options(result)["allocation_pool"] == {"start": "10.0.1.1", "end": "10.0.1.254"}


def test_cidr_change_keeps_pool_bounds_the_user_set_or_that_still_fit():
    old = network(
        cidr="10.0.0.0/24", alloc="x", allocation_pool={"start": "10.0.0.5", "end": "10.0.0.9"}
    )
    new = network(
        cidr="10.0.0.0/23", alloc="x", allocation_pool={"start": "10.0.0.5", "end": "10.0.1.9"}
    )
    prepared = mutate.prepare_update(new, old)
    assert _options(prepared)["allocation_pool"] == {"start": "10.0.0.5", "end": "10.0.1.9"}
    assert "alloc" not in _options(prepared)


def test_unchanged_cidr_keeps_alloc():
    old = network(cidr="10.0.0.0/30", alloc="wA==", allocation_pool={"start": "10.0.0.1"})
    new = network(cidr="10.0.0.0/30", alloc="4A==", allocation_pool={"start": "10.0.0.1"})
    assert mutate.prepare_update(new, old) == new


def test_net6_change_reinitialises_alloc6():
    old = mutate.default_network(network(network_type="ipvlan", net6="2001:db8::/64"))
    new = network(
        network_type="ipvlan",
        net6="2001:db9::/64",
        alloc6=_options(old)["alloc6"],
        allocation_pool_v6=_options(old)["allocation_pool_v6"],
    )
    result = mutate.default_network(mutate.prepare_update(new, old))
    assert _options(result)["allocation_pool_v6"]["cidr"] == "2001:db9::/112"


# ---- TenantNetwork attachment and VNI


def test_attach_and_set_vni():
    obj = network("TenantNetwork", network_id="x")
    attached = mutate.attach_to_profile(obj, host_device="ens4", device_pool="", network_id="y")
    result = mutate.set_vni(attached, vni_type="vlan", vni=200)
    assert build_patch(obj, result) == [
        {"op": "replace", "path": "/spec/NetworkID", "value": "y"},
        {"op": "add", "path": "/spec/Options/host_device", "value": "ens4"},
        {"op": "add", "path": "/spec/Options/vlan", "value": 200},
    ]


# ---- TenantConfig


def test_tenant_config_allocs_initialised_per_vni_profile():
    config = tenant_config(
        [
            {"name": "ens4", "vniType": "vlan", "vniRange": "1-2"},
            {"name": "ens6"},
            {"name": "ens5", "vniType": "vxlan", "vniRange": "3", "alloc": "kept"},
        ]
    )
    result = mutate.init_profile_allocs(config)
    assert build_patch(config, result) == [
        {"op": "add", "path": "/hostDevices/0/alloc", "value": vni.new_vni_alloc()}
    ]
    assert len(vni.new_vni_alloc()) == 836
    assert vni.new_vni_alloc().startswith("gAAAAAAA")


def test_tenant_config_without_host_devices_unchanged():
    config = tenant_config(None, {"flannel": "f"})
    assert mutate.init_profile_allocs(config) == config
