"""Profile selection, NetworkID override and the self-healing VNI books of a TenantConfig."""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.ipam import vni as vnis
from common.ipam.bitarray import BitArray
from common.ipam.errors import VniExhausted
from common.model import TenantConfig
from webhook import rules, tenancy

from .builders import model, network, tenant_config

PROFILES = [
    {"name": "ens4", "vniType": "vlan", "vniRange": "200-202"},
    {"name": "ens5", "vniType": "vxlan", "vniRange": "1000"},
    {"name": "ens6"},
    {"name": "nokia.k8s.io/sriov", "vniType": "vlan", "vniRange": "500"},
]
CONFIG = TenantConfig.from_dict(
    tenant_config(PROFILES, {"flannel": "flannel", "MacVlan": "mv-upper", "macvlan": "mv"})
)


def first(candidates):
    return candidates[0]


def last(candidates):
    return candidates[-1]


@pytest.mark.parametrize(
    ("options", "network_type", "pick", "expected"),
    [
        ({"host_device": "ens5"}, "ipvlan", first, "ens5"),
        ({"device_pool": "nokia.k8s.io/sriov"}, "sriov", first, "nokia.k8s.io/sriov"),
        ({}, "ipvlan", first, "ens4"),
        ({}, "ipvlan", last, "ens6"),  # NB: pools are never random candidates
    ],
)
def test_select_profile(options, network_type, pick, expected):
    net = model(network("TenantNetwork", network_type=network_type, **options))
    assert tenancy.select_profile(net, CONFIG, pick=pick).name == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"host_device": "ens99"}, "The provided physical interface is not allowed"),
        ({"host_device": "nokia.k8s.io/sriov"}, "The provided physical interface is not allowed"),
        ({"device_pool": "other/pool"}, "The provided physical interface is not allowed"),
    ],
)
def test_select_profile_denied(options, message):
    net = model(network("TenantNetwork", **options))
    with pytest.raises(rules.Denied, match=message):
        tenancy.select_profile(net, CONFIG, pick=first)


def test_no_random_candidates_denied():
    config = TenantConfig.from_dict(tenant_config([{"name": "a/b"}]))
    with pytest.raises(rules.Denied, match="There are no suitable interface profiles"):
        tenancy.select_profile(model(network("TenantNetwork")), config, pick=first)


@pytest.mark.parametrize(
    ("network_type", "expected"),
    [
        ("flannel", "flannel"),
        ("macvlan", "mv"),
        ("MacVlan", "mv-upper"),
        ("MACVLAN", "mv-upper"),
        ("calico", None),
    ],
)
def test_network_id_override_exact_case_first_then_sorted(network_type, expected):
    assert tenancy.override_network_id(CONFIG.network_ids, network_type) == expected


def test_plan_dynamic_with_vlan_profile():
    net = model(network("TenantNetwork", network_type="ipvlan", network_id="x", host_device="ens4"))
    plan = tenancy.plan_attachment(net, CONFIG, pick=first)
    assert (plan.host_device, plan.device_pool, plan.network_id) == ("ens4", "", "x")
    assert plan.profile is not None
    assert plan.profile.name == "ens4"
    assert plan.vni_type == "vlan"


def test_plan_random_profile_without_vni():
    net = model(network("TenantNetwork", network_type="macvlan", network_id="x"))
    plan = tenancy.plan_attachment(net, CONFIG, pick=last)
    assert (plan.host_device, plan.network_id, plan.profile, plan.vni_type) == (
        "ens6",
        "mv",
        None,
        "",
    )


def test_plan_static_type_only_overrides_network_id():
    net = model(network("TenantNetwork", network_type="flannel", network_id="whatever"))
    plan = tenancy.plan_attachment(net, CONFIG, pick=first)
    assert (plan.host_device, plan.network_id, plan.profile) == ("", "flannel", None)


def test_plan_sriov_keeps_device_pool_and_reserves_vlan():
    net = model(network("TenantNetwork", network_type="sriov", device_pool="nokia.k8s.io/sriov"))
    plan = tenancy.plan_attachment(net, CONFIG, pick=first)
    assert (plan.host_device, plan.device_pool, plan.vni_type) == ("", "nokia.k8s.io/sriov", "vlan")


def test_profile_of_network():
    assert tenancy.profile_of_network(model(network(host_device="ens4", vlan=5))) == (
        "ens4",
        "vlan",
        5,
    )
    assert tenancy.profile_of_network(
        model(network(network_type="sriov", device_pool="a/b", vxlan=7))
    ) == ("a/b", "vxlan", 7)
    assert tenancy.profile_of_network(model(network(host_device="ens4"))) is None


# ---- reservation in the stored TenantConfig


def _raw(alloc_vnis: Any = ()) -> Any:
    config = tenant_config(PROFILES)
    bits = BitArray.from_base64(vnis.new_vni_alloc())
    for taken in alloc_vnis:
        bits.set(taken)
    config["hostDevices"][0]["alloc"] = bits.to_base64()
    return config


def _taken(config: Any, index: int = 0) -> Any:
    bits = BitArray.from_base64(config["hostDevices"][index]["alloc"])
    return [v for v in range(1, 5001) if bits.get(v)]


def _pending(config: Any) -> Any:
    return json.loads(config["metadata"]["annotations"][tenancy.PENDING_ANNOTATION])


def reserve(config: Any, now: float = 1000.0, in_use: Any = None, network: str = "ns/a") -> Any:
    return tenancy.reserve_vni_in_config(
        config, profile_name="ens4", vni_type="vlan", network=network, now=now, in_use=in_use
    )


def test_reserve_lowest_free_and_record_pending():
    config, vni = reserve(_raw([200]))
    assert vni == 201
    assert _taken(config) == [200, 201]
    assert _pending(config) == [
        {"network": "ns/a", "profile": "ens4", "reservedAt": 1000.0, "vni": 201, "vniType": "vlan"}
    ]


def test_reserve_initialises_missing_alloc():
    config = tenant_config(PROFILES)
    updated, vni = reserve(config)
    assert vni == 200
    assert "alloc" not in config["hostDevices"][0], "the argument is left alone"
    assert _taken(updated) == [200]


def test_reserve_exhausted():
    with pytest.raises(VniExhausted, match="whole range is already reserved"):
        reserve(_raw([200, 201, 202]))


def test_reserve_unknown_profile():
    with pytest.raises(tenancy.ProfileNotFound):
        tenancy.reserve_vni_in_config(
            _raw(), profile_name="ens9", vni_type="vlan", network="n", now=0, in_use=None
        )


def test_reconcile_reclaims_leaked_vni_after_grace():
    leaked, _ = reserve(_raw(), now=1000.0, network="ns/never-stored")
    # NB: within the grace period the pending record protects the VNI...
    within, vni = reserve(leaked, now=1010.0, in_use=set(), network="ns/b")
    assert vni == 201
    # ...after it, no TenantNetwork holds 200, so it is handed out again.
    later = 1000.0 + tenancy.PENDING_GRACE_S + 1
    healed, vni = reserve(within, now=later, in_use={201}, network="ns/c")
    assert vni == 200
    assert _taken(healed) == [200, 201]
    assert [e["network"] for e in _pending(healed)] == ["ns/b", "ns/c"]


def test_reconcile_marks_vni_of_existing_network_taken_again():
    # NB: bit 200 was freed (a DELETE that later failed) but network ns/a still holds it.
    config, vni = reserve(_raw([]), in_use={200})
    assert vni == 201
    assert _taken(config) == [200, 201]


def test_free_clears_bit_and_pending_record():
    config, vni = reserve(_raw([202]))
    freed = tenancy.free_vni_in_config(
        config, profile_name="ens4", vni_type="vlan", vni=vni, now=1001.0
    )
    assert _taken(freed) == [202]
    assert tenancy.PENDING_ANNOTATION not in freed["metadata"].get("annotations", {})


def test_free_unknown_profile():
    with pytest.raises(tenancy.ProfileNotFound):
        tenancy.free_vni_in_config(_raw(), profile_name="x", vni_type="vlan", vni=1, now=0)


def test_vnis_in_use():
    networks = [
        network("TenantNetwork", host_device="ens4", vlan=200),
        network("TenantNetwork", network_type="sriov", device_pool="ens4", vlan=201),
        network("TenantNetwork", host_device="ens4", vxlan=5),
        network("TenantNetwork", host_device="ens5", vlan=202),
        {"spec": None},
    ]
    assert tenancy.vnis_in_use(networks, profile_name="ens4", vni_type="vlan") == {200, 201}


def test_garbage_pending_annotation_is_ignored():
    config = _raw()
    config["metadata"]["annotations"] = {tenancy.PENDING_ANNOTATION: "{broken"}
    _, vni = reserve(config, in_use=set())
    assert vni == 200
