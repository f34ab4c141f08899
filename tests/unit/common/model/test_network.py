"""DanmNet / TenantNetwork / ClusterNetwork: loss-free round trips, serialisation, type errors."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from common.model import (
    ClusterNetwork,
    DanmNet,
    IpPool,
    IpPoolV6,
    ModelError,
    Network,
    NetworkKind,
    NetworkOptions,
    NetworkSpec,
    TenantNetwork,
    canonical_network_type,
    is_builtin_ipvlan,
    is_dynamic_type,
    needs_delegation,
    network_class,
    network_from_dict,
    new_metadata,
)

# NB: shaped like what the API server returns for an object the seed's Go code wrote.
GO_DANMNET: dict[str, Any] = {
    "apiVersion": "danm.k8s.io/v1",
    "kind": "DanmNet",
    "metadata": {
        "creationTimestamp": "2019-09-10T12:00:00Z",
        "generation": 3,
        "name": "internal",
        "namespace": "default",
        "resourceVersion": "12345",
        "selfLink": "/apis/danm.k8s.io/v1/namespaces/default/danmnets/internal",
        "uid": "6b1a3f2e-0000-4000-8000-000000000001",
        "labels": {"team": "core"},
    },
    "spec": {
        "NetworkID": "internal",
        "NetworkType": "ipvlan",
        "Options": {
            "host_device": "ens4",
            "cidr": "10.100.20.0/24",
            "alloc": "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=",
            "allocation_pool": {"start": "10.100.20.1", "end": "10.100.20.254"},
            "container_prefix": "int",
            "routes": {"10.20.0.0/24": "10.100.20.254"},
            "rt_tables": 10,
            "vlan": 500,
        },
    },
}

# NB: the Go `omitEmpty` typo makes the seed write an empty pool on every network.
GO_EMPTY_POOL: dict[str, Any] = {
    "apiVersion": "danm.k8s.io/v1",
    "kind": "DanmNet",
    "metadata": {"name": "flannel", "namespace": "kube-system"},
    "spec": {
        "NetworkID": "flannel",
        "NetworkType": "flannel",
        "Options": {"allocation_pool": {"start": "", "end": ""}},
    },
}

KUBECTL_MINIMAL: dict[str, Any] = {
    "apiVersion": "danm.k8s.io/v1",
    "kind": "TenantNetwork",
    "metadata": {"name": "t1", "namespace": "tenant-a"},
    "spec": {"Options": {"cidr": "10.0.0.0/24"}},
}

ZERO_VALUES: dict[str, Any] = {
    "kind": "DanmNet",
    "metadata": {"name": "zero", "namespace": "default"},
    "spec": {
        "NetworkID": "",
        "NetworkType": "",
        "AllowedTenants": [],
        "Options": {
            "host_device": "",
            "vlan": 0,
            "vxlan": 0,
            "rt_tables": 0,
            "routes": None,
            "routes6": {},
            "allocation_pool": {"start": "", "end": ""},
            "allocation_pool_v6": {"cidr": ""},
        },
    },
}

NULLS: dict[str, Any] = {
    "apiVersion": "danm.k8s.io/v1",
    "kind": "ClusterNetwork",
    "metadata": {"name": "nulls", "labels": None},
    "spec": {"NetworkID": None, "AllowedTenants": None, "Options": None},
}

LATER_FIELDS: dict[str, Any] = {
    "apiVersion": "danm.k8s.io/v1",
    "kind": "ClusterNetwork",
    "metadata": {"name": "dual"},
    "spec": {
        "NetworkID": "dual",
        "NetworkType": "macvlan",
        "AllowedTenants": ["default", "kube-system"],
        "Options": {
            "host_device": "ens5",
            "cidr": "192.168.1.0/24",
            "allocation_pool": {
                "start": "192.168.1.10",
                "end": "192.168.1.20",
                "lastIp": "192.168.1.12",
            },
            "net6": "2001:db8::/64",
            "alloc6": "AAAA",
            "allocation_pool_v6": {
                "start": "2001:db8::1:0",
                "end": "2001:db8::1:ff",
                "lastIp": "2001:db8::1:3",
                "cidr": "2001:db8::1:0/120",
            },
            "routes6": {"2001:db8:1::/64": "2001:db8::1"},
            "vxlan": 60,
        },
    },
}

UNKNOWN_EVERYWHERE: dict[str, Any] = {
    "apiVersion": "danm.k8s.io/v1",
    "kind": "DanmNet",
    "metadata": {"name": "odd", "namespace": "default", "managedFields": [{"manager": "kubectl"}]},
    "spec": {
        "NetworkID": "odd",
        "Validation": True,
        "Options": {
            "host_device": "ens3",
            "mtu": 9000,
            "allocation_pool": {"start": "", "end": "", "future": {"x": [1, 2]}},
            "allocation_pool_v6": {"cidr": "", "comment": "v6"},
        },
        "Future": {"nested": None},
    },
    "status": {"reservedIPs": [{"objects": ["a"], "namespace": "default"}]},
}

LIST_ITEM_WITHOUT_TYPE_META: dict[str, Any] = {
    "metadata": {"name": "item", "namespace": "default", "resourceVersion": "7"},
    "spec": {"NetworkID": "item", "Options": {"host_device": "ens3"}},
}

ROUND_TRIP_CASES = {
    "go_danmnet": (DanmNet, GO_DANMNET),
    "go_empty_pool": (DanmNet, GO_EMPTY_POOL),
    "kubectl_minimal": (TenantNetwork, KUBECTL_MINIMAL),
    "zero_values": (DanmNet, ZERO_VALUES),
    "nulls": (ClusterNetwork, NULLS),
    "later_fields": (ClusterNetwork, LATER_FIELDS),
    "unknown_everywhere": (DanmNet, UNKNOWN_EVERYWHERE),
    "list_item": (DanmNet, LIST_ITEM_WITHOUT_TYPE_META),
    "empty": (TenantNetwork, {}),
}


@pytest.mark.parametrize(("cls", "data"), ROUND_TRIP_CASES.values(), ids=ROUND_TRIP_CASES.keys())
def test_round_trip_loses_nothing(cls: type[Network], data: dict[str, Any]) -> None:
    original = copy.deepcopy(data)
    net = cls.from_dict(data)
    out = net.to_dict()
    assert out == original
    # NB: same key order too, so a diff of the JSON text shows only real changes.
    assert json.dumps(out) == json.dumps(original)
    assert data == original, "from_dict must not mutate its input"


@pytest.mark.parametrize(("cls", "data"), ROUND_TRIP_CASES.values(), ids=ROUND_TRIP_CASES.keys())
def test_round_trip_through_dispatch(cls: type[Network], data: dict[str, Any]) -> None:
    net = network_from_dict(data, kind=cls.KIND)
    assert type(net) is cls
    assert net.to_dict() == data


def test_output_is_independent_of_the_model() -> None:
    net = DanmNet.from_dict(GO_DANMNET)
    out = net.to_dict()
    out["spec"]["Options"]["routes"]["1.2.3.0/24"] = "x"
    out["metadata"]["labels"]["new"] = "y"
    assert net.to_dict() == GO_DANMNET


def test_typed_view_of_go_object() -> None:
    net = DanmNet.from_dict(GO_DANMNET)
    assert net.name == "internal"
    assert net.namespace == "default"
    assert net.resource_version == "12345"
    assert net.uid == "6b1a3f2e-0000-4000-8000-000000000001"
    assert net.labels == {"team": "core"}
    assert net.network_kind is NetworkKind.DANMNET
    assert net.network_id == "internal"
    assert net.spec.network_type == "ipvlan"
    assert net.options.host_device == "ens4"
    assert net.options.vlan == 500
    assert net.options.rt_tables == 10
    assert net.options.routes == {"10.20.0.0/24": "10.100.20.254"}
    assert net.options.allocation_pool == IpPool(start="10.100.20.1", end="10.100.20.254")


def test_later_fields_are_typed() -> None:
    options = ClusterNetwork.from_dict(LATER_FIELDS).options
    assert options.allocation_pool.last_ip == "192.168.1.12"
    assert options.alloc6 == "AAAA"
    assert options.allocation_pool_v6 == IpPoolV6(
        start="2001:db8::1:0",
        end="2001:db8::1:ff",
        last_ip="2001:db8::1:3",
        cidr="2001:db8::1:0/120",
    )
    assert ClusterNetwork.from_dict(LATER_FIELDS).spec.allowed_tenants == ("default", "kube-system")


def test_unknown_fields_are_visible() -> None:
    net = DanmNet.from_dict(UNKNOWN_EVERYWHERE)
    assert net.unknown_fields == {"status": UNKNOWN_EVERYWHERE["status"]}
    assert net.spec.unknown_fields == {"Validation": True, "Future": {"nested": None}}
    assert net.options.unknown_fields == {"mtu": 9000}


def test_change_is_written_and_everything_else_kept() -> None:
    net = DanmNet.from_dict(UNKNOWN_EVERYWHERE)
    changed = net.with_options(alloc="AAAB", vlan=7).with_metadata(resourceVersion="9")
    expected = copy.deepcopy(UNKNOWN_EVERYWHERE)
    expected["spec"]["Options"]["alloc"] = "AAAB"
    expected["spec"]["Options"]["vlan"] = 7
    expected["metadata"]["resourceVersion"] = "9"
    assert changed.to_dict() == expected
    assert net.to_dict() == UNKNOWN_EVERYWHERE, "the original object is not modified"


def test_changed_known_key_is_rewritten_in_place() -> None:
    net = DanmNet.from_dict(GO_DANMNET)
    out = net.with_options(
        allocation_pool=IpPool(start="10.100.20.1", end="10.100.20.254", last_ip="10.100.20.5")
    ).to_dict()
    assert out["spec"]["Options"]["allocation_pool"] == {
        "start": "10.100.20.1",
        "end": "10.100.20.254",
        "lastIp": "10.100.20.5",
    }
    assert list(out["spec"]["Options"]) == list(GO_DANMNET["spec"]["Options"])


def test_null_stays_null_until_changed() -> None:
    net = ClusterNetwork.from_dict(NULLS)
    assert net.spec.options == NetworkOptions()
    assert net.to_dict()["spec"]["Options"] is None
    changed = net.with_options(host_device="ens3").to_dict()
    assert changed["spec"]["Options"] == {"host_device": "ens3"}
    assert changed["spec"]["NetworkID"] is None


def test_zero_value_kept_when_unchanged_and_defaults_not_invented() -> None:
    net = TenantNetwork.from_dict(KUBECTL_MINIMAL)
    # NB: the webhook setting NetworkType adds exactly that key, nothing Go would also write.
    out = net.with_spec(network_type="ipvlan").to_dict()
    assert out["spec"] == {"Options": {"cidr": "10.0.0.0/24"}, "NetworkType": "ipvlan"}


def test_created_network_serialises_like_the_original() -> None:
    net = DanmNet(
        metadata=new_metadata("n1", "default"),
        spec=NetworkSpec(network_id="n1", options=NetworkOptions(host_device="ens3", vlan=10)),
    )
    assert net.to_dict() == {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "DanmNet",
        "metadata": {"name": "n1", "namespace": "default"},
        "spec": {
            "NetworkID": "n1",
            "Options": {
                "host_device": "ens3",
                "allocation_pool": {"start": "", "end": ""},
                "vlan": 10,
            },
        },
    }


def test_created_network_with_v6_pool_writes_its_cidr() -> None:
    net = ClusterNetwork(
        metadata=new_metadata("c"),
        spec=NetworkSpec(
            network_id="c",
            network_type="ipvlan",
            allowed_tenants=("a",),
            options=NetworkOptions(
                net6="2001:db8::/64",
                alloc6="AA==",
                allocation_pool_v6=IpPoolV6(cidr="2001:db8::/120", last_ip="2001:db8::1"),
            ),
        ),
    )
    assert net.to_dict()["spec"] == {
        "NetworkID": "c",
        "NetworkType": "ipvlan",
        "AllowedTenants": ["a"],
        "Options": {
            "allocation_pool": {"start": "", "end": ""},
            "net6": "2001:db8::/64",
            "alloc6": "AA==",
            "allocation_pool_v6": {"lastIp": "2001:db8::1", "cidr": "2001:db8::/120"},
        },
    }


def test_to_body_adds_type_meta_to_list_items() -> None:
    item = DanmNet.from_dict(LIST_ITEM_WITHOUT_TYPE_META)
    body = item.to_body()
    assert list(body)[:2] == ["apiVersion", "kind"]
    assert body == {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "DanmNet",
        **LIST_ITEM_WITHOUT_TYPE_META,
    }
    assert DanmNet.from_dict(GO_DANMNET).to_body() == GO_DANMNET


def test_created_object_round_trips() -> None:
    net = TenantNetwork(metadata=new_metadata("t", "ns"), spec=NetworkSpec(network_id="t"))
    again = TenantNetwork.from_dict(net.to_dict())
    assert again == net
    assert again.to_dict() == net.to_dict()


def test_equality_ignores_source_but_not_values() -> None:
    assert DanmNet.from_dict(GO_DANMNET) == DanmNet.from_dict(copy.deepcopy(GO_DANMNET))
    assert DanmNet.from_dict(GO_DANMNET) != DanmNet.from_dict(GO_DANMNET).with_options(vlan=1)


def test_kind_mismatch_between_class_and_data() -> None:
    with pytest.raises(
        ModelError,
        match=r'invalid ClusterNetwork "default/internal": kind: expected "ClusterNetwork", '
        r'got string "DanmNet"',
    ):
        ClusterNetwork.from_dict(GO_DANMNET)


def test_network_base_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Network()


@pytest.mark.parametrize(
    ("data", "kind", "message"),
    [
        ({"metadata": {"name": "x"}}, None, r"^invalid network \"x\": kind: missing; cannot tell"),
        (
            {"kind": "Pod"},
            None,
            r'kind: expected one of DanmNet, TenantNetwork, ClusterNetwork, got string "Pod"',
        ),
        ({"kind": 5}, None, r"kind: expected a string, got number 5"),
        ({"kind": "DanmNet"}, "ClusterNetwork", r"kind: expected 'ClusterNetwork' for this object"),
    ],
)
def test_dispatch_errors(data: dict[str, Any], kind: str | None, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        network_from_dict(data, kind=kind)


@pytest.mark.parametrize("kind", list(NetworkKind))
def test_dispatch_by_kind_field(kind: NetworkKind) -> None:
    net = network_from_dict({"kind": kind.value, "metadata": {"name": "x"}})
    assert net.network_kind is kind
    assert type(net) is network_class(kind.value)
    assert net.kind == kind.value


def _with(path: str, value: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "DanmNet",
        "metadata": {"name": "bad", "namespace": "ns1"},
        "spec": {"NetworkID": "bad", "Options": {}},
    }
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return data


TYPE_ERRORS = [
    ("spec.Options.vlan", "abc", r'spec\.Options\.vlan: expected an integer, got string "abc"'),
    ("spec.Options.vxlan", 1.5, r"spec\.Options\.vxlan: expected an integer, got number 1\.5"),
    (
        "spec.Options.rt_tables",
        True,
        r"spec\.Options\.rt_tables: expected an integer, got boolean true",
    ),
    ("spec.Options", "x", r'spec\.Options: expected an object, got string "x"'),
    ("spec.Options", [], r"spec\.Options: expected an object, got list"),
    ("spec", 3, r"spec: expected an object, got number 3"),
    ("spec.NetworkID", 42, r"spec\.NetworkID: expected a string, got number 42"),
    ("spec.NetworkType", {}, r"spec\.NetworkType: expected a string, got object"),
    (
        "spec.AllowedTenants",
        "default",
        r'spec\.AllowedTenants: expected a list of strings, got string "default"',
    ),
    (
        "spec.AllowedTenants",
        ["a", 1],
        r"spec\.AllowedTenants\[1\]: expected a string, got number 1",
    ),
    (
        "spec.Options.routes",
        ["x"],
        r"spec\.Options\.routes: expected an object of strings, got list",
    ),
    (
        "spec.Options.routes6",
        {"::/0": None},
        r'spec\.Options\.routes6\["::/0"\]: expected a string, got null',
    ),
    (
        "spec.Options.allocation_pool",
        "10.0.0.1-10.0.0.9",
        r"spec\.Options\.allocation_pool: expected an object",
    ),
    (
        "spec.Options.allocation_pool.start",
        10,
        r"spec\.Options\.allocation_pool\.start: expected a string",
    ),
    (
        "spec.Options.allocation_pool_v6.lastIp",
        [],
        r"spec\.Options\.allocation_pool_v6\.lastIp: expected a string",
    ),
    ("metadata", "m", r'metadata: expected an object, got string "m"'),
    ("metadata.labels", {"a": 1}, r'metadata\.labels\["a"\]: expected a string, got number 1'),
    ("metadata.resourceVersion", 5, r"metadata\.resourceVersion: expected a string, got number 5"),
    ("apiVersion", 1, r"apiVersion: expected a string, got number 1"),
]


@pytest.mark.parametrize(("path", "value", "message"), TYPE_ERRORS, ids=[c[0] for c in TYPE_ERRORS])
def test_type_errors_name_object_and_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(ModelError, match=message) as caught:
        network_from_dict(_with(path, value))
    error = caught.value
    assert str(error).startswith('invalid DanmNet "ns1/bad": ') or path == "metadata"
    assert error.field_path.split("[")[0] == path or error.field_path.startswith(path)


def test_type_error_without_metadata_names_the_kind() -> None:
    with pytest.raises(
        ModelError, match=r"^invalid DanmNet: spec\.Options\.vlan: expected an integer"
    ):
        DanmNet.from_dict({"spec": {"Options": {"vlan": "1"}}})


@pytest.mark.parametrize("value", [[], "x", 5, None])
def test_top_level_not_an_object(value: Any) -> None:
    if value is None:
        assert DanmNet.from_dict(value).to_dict() == {}
        return
    with pytest.raises(ModelError, match=r"^invalid DanmNet: expected an object"):
        DanmNet.from_dict(value)


@pytest.mark.parametrize(
    ("network_type", "builtin", "dynamic", "canonical"),
    [
        ("", True, True, "ipvlan"),
        ("ipvlan", True, True, "ipvlan"),
        ("IPVLAN", True, True, "ipvlan"),
        ("IpVlan", True, True, "ipvlan"),
        ("sriov", False, True, "sriov"),
        ("SRIOV", False, True, "SRIOV"),
        ("macvlan", False, True, "macvlan"),
        ("flannel", False, False, "flannel"),
        ("Calico", False, False, "Calico"),
    ],
)
def test_network_type_helpers(
    network_type: str, builtin: bool, dynamic: bool, canonical: str
) -> None:
    assert is_builtin_ipvlan(network_type) is builtin
    assert needs_delegation(network_type) is not builtin
    assert is_dynamic_type(network_type) is dynamic
    assert canonical_network_type(network_type) == canonical


def test_kind_constants() -> None:
    assert (DanmNet.NAMESPACED, TenantNetwork.NAMESPACED, ClusterNetwork.NAMESPACED) == (
        True,
        True,
        False,
    )
    assert DanmNet().to_dict()["apiVersion"] == "danm.k8s.io/v1"
