"""TenantConfig: no spec wrapper, profiles list, loss-free round trips."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from common.model import (
    ClusterNetwork,
    HostDeviceProfile,
    ModelError,
    TenantConfig,
    new_metadata,
    object_from_dict,
)

GO_TENANTCONFIG: dict[str, Any] = {
    "apiVersion": "danm.k8s.io/v1",
    "kind": "TenantConfig",
    "metadata": {"name": "danm-tenant-config", "resourceVersion": "55", "uid": "u-tc"},
    "hostDevices": [
        {"name": "ens4", "vniType": "vlan", "vniRange": "2000-2500,2601", "alloc": "AAAA"},
        {"name": "ens5", "vniType": "vxlan", "vniRange": "1000-1100"},
        {"name": "nokia.k8s.io/sriov_ens1f0", "vniType": "vlan", "vniRange": "100-200"},
        {"name": "ens6"},
    ],
    "networkIds": {"flannel": "flannel_tenant", "calico": "cal"},
}

LATER_WITH_UNKNOWN: dict[str, Any] = {
    "apiVersion": "danm.k8s.io/v1",
    "kind": "TenantConfig",
    "metadata": {"name": "tc"},
    "hostDevices": [{"name": "ens4", "vniType": "", "extra": 1}],
    "allowedClusterNetworks": [{"name": "x", "privileges": ["use"]}],
}

CASES = {
    "go": GO_TENANTCONFIG,
    "later": LATER_WITH_UNKNOWN,
    "nulls": {"hostDevices": None, "networkIds": None},
    "empty": {},
}


@pytest.mark.parametrize("data", CASES.values(), ids=CASES.keys())
def test_round_trip_loses_nothing(data: dict[str, Any]) -> None:
    original = copy.deepcopy(data)
    out = TenantConfig.from_dict(data).to_dict()
    assert out == original
    assert json.dumps(out) == json.dumps(original)


def test_typed_view() -> None:
    tc = TenantConfig.from_dict(GO_TENANTCONFIG)
    assert tc.name == "danm-tenant-config"
    assert tc.namespace == ""
    assert [p.name for p in tc.host_devices] == [
        "ens4",
        "ens5",
        "nokia.k8s.io/sriov_ens1f0",
        "ens6",
    ]
    assert tc.host_devices[0] == HostDeviceProfile(
        name="ens4", vni_type="vlan", vni_range="2000-2500,2601", alloc="AAAA"
    )
    assert [p.is_device_pool for p in tc.host_devices] == [False, False, True, False]
    assert tc.network_ids == {"flannel": "flannel_tenant", "calico": "cal"}


def test_changing_one_profile_keeps_unknown_fields_of_it() -> None:
    tc = TenantConfig.from_dict(LATER_WITH_UNKNOWN)
    profile = tc.host_devices[0]
    updated = dataclasses.replace(tc, host_devices=(dataclasses.replace(profile, alloc="QUJD"),))
    out = updated.to_dict()
    assert out["hostDevices"] == [{"name": "ens4", "vniType": "", "extra": 1, "alloc": "QUJD"}]
    assert out["allowedClusterNetworks"] == LATER_WITH_UNKNOWN["allowedClusterNetworks"]


def test_created_tenantconfig() -> None:
    tc = TenantConfig(
        metadata=new_metadata("tc"),
        host_devices=(
            HostDeviceProfile(name="ens4", vni_type="vlan", vni_range="10-20"),
            HostDeviceProfile(name="ens5"),
        ),
    )
    assert tc.to_dict() == {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "TenantConfig",
        "metadata": {"name": "tc"},
        "hostDevices": [{"name": "ens4", "vniType": "vlan", "vniRange": "10-20"}, {"name": "ens5"}],
    }
    assert TenantConfig(metadata=new_metadata("tc")).to_dict() == {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "TenantConfig",
        "metadata": {"name": "tc"},
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"hostDevices": {"name": "ens4"}}, r"hostDevices: expected a list of objects, got object"),
        ({"hostDevices": ["ens4"]}, r'hostDevices\[0\]: expected an object, got string "ens4"'),
        (
            {"hostDevices": [{"name": "a"}, {"vniRange": 5}]},
            r"hostDevices\[1\]\.vniRange: expected a string, got number 5",
        ),
        (
            {"networkIds": {"flannel": 1}},
            r'networkIds\["flannel"\]: expected a string, got number 1',
        ),
        ({"kind": "DanmNet"}, r'kind: expected "TenantConfig", got string "DanmNet"'),
    ],
)
def test_type_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelError, match=r'^invalid TenantConfig "tc": ' + message):
        TenantConfig.from_dict({"metadata": {"name": "tc"}, **data})


def test_object_from_dict_dispatches_every_kind() -> None:
    assert isinstance(object_from_dict(GO_TENANTCONFIG), TenantConfig)
    assert isinstance(object_from_dict({"kind": "ClusterNetwork"}), ClusterNetwork)
    with pytest.raises(
        ModelError, match=r"kind: missing; expected one of DanmNet, .*, TenantConfig"
    ):
        object_from_dict({})
    with pytest.raises(ModelError, match="kind: 'Pod' is not a DANM kind"):
        object_from_dict({"kind": "Pod"})
