"""DanmEp: round trips of Go-written endpoints, apiType normalisation, serialisation of new ones."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from common.model import (
    DanmEp,
    DanmEpInterface,
    DanmEpSpec,
    ModelError,
    NetworkKind,
    new_metadata,
    object_from_dict,
)

# NB: what the seed CNI wrote through the typed client: TypeMeta cleared, so apiType is "".
GO_SEED_EP: dict[str, Any] = {
    "apiVersion": "danm.k8s.io/v1",
    "kind": "DanmEp",
    "metadata": {
        "name": "0b6d3c3e-8f7a-4c5e-9c1a-2a8e0b7f6d11",
        "namespace": "default",
        "labels": {"app": "web"},
        "resourceVersion": "881",
        "uid": "c0ffee00-0000-4000-8000-000000000002",
    },
    "spec": {
        "NetworkName": "internal",
        "NetworkType": "ipvlan",
        "EndpointID": "0b6d3c3e-8f7a-4c5e-9c1a-2a8e0b7f6d11",
        "Interface": {
            "Name": "int1",
            "Address": "10.100.20.5/24",
            "AddressIPv6": "",
            "MacAddress": "fa:16:3e:01:02:03",
            "proutes": None,
            "proutes6": None,
        },
        "Host": "worker-1",
        "Pod": "web-0",
        "CID": "4f1e2d3c4b5a",
        "netns": "/proc/4242/ns/net",
        "apiType": "",
    },
}

LATER_EP: dict[str, Any] = {
    "apiVersion": "danm.k8s.io/v1",
    "kind": "DanmEp",
    "metadata": {"name": "e2", "namespace": "tenant-a"},
    "spec": {
        "NetworkName": "sriov-a",
        "NetworkType": "sriov",
        "EndpointID": "e2",
        "Interface": {
            "Name": "eth1",
            "Address": "192.168.1.65/26",
            "AddressIPv6": "2001:db8::5/64",
            "MacAddress": "",
            "proutes": {"10.0.0.0/8": "192.168.1.1"},
            "proutes6": {},
            "DeviceID": "0000:af:06.0",
            "Mtu": 9000,
        },
        "Pod": "dpdk-0",
        "PodUID": "7d1b5e2a-0000-4000-8000-000000000003",
        "CID": "abc",
        "apiType": "TenantNetwork",
        "Creator": "someone",
    },
}

LIST_ITEM: dict[str, Any] = {
    "metadata": {"name": "e3", "namespace": "default"},
    "spec": {"NetworkName": "n", "Interface": {"Name": "eth0"}, "Pod": "p"},
}

CASES = {"go_seed": GO_SEED_EP, "later": LATER_EP, "list_item": LIST_ITEM, "empty": {}}


@pytest.mark.parametrize("data", CASES.values(), ids=CASES.keys())
def test_round_trip_loses_nothing(data: dict[str, Any]) -> None:
    original = copy.deepcopy(data)
    out = DanmEp.from_dict(data).to_dict()
    assert out == original
    assert json.dumps(out) == json.dumps(original)


def test_typed_view() -> None:
    ep = DanmEp.from_dict(LATER_EP)
    assert ep.name == "e2"
    assert ep.namespace == "tenant-a"
    assert ep.spec.pod_uid == "7d1b5e2a-0000-4000-8000-000000000003"
    assert ep.network_kind is NetworkKind.TENANT_NETWORK
    assert ep.interface == DanmEpInterface(
        name="eth1",
        address="192.168.1.65/26",
        address_ipv6="2001:db8::5/64",
        proutes={"10.0.0.0/8": "192.168.1.1"},
        device_id="0000:af:06.0",
    )
    assert ep.interface.unknown_fields == {"Mtu": 9000}
    assert ep.spec.unknown_fields == {"Creator": "someone"}


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("", NetworkKind.DANMNET),
        (None, NetworkKind.DANMNET),
        ("DanmNet", NetworkKind.DANMNET),
        ("TenantNetwork", NetworkKind.TENANT_NETWORK),
        ("ClusterNetwork", NetworkKind.CLUSTER_NETWORK),
    ],
)
def test_api_type_reads_empty_as_danmnet(raw: str | None, kind: NetworkKind) -> None:
    data = {"spec": {"apiType": raw}}
    ep = DanmEp.from_dict(data)
    assert ep.network_kind is kind
    assert ep.to_dict() == data, "the stored spelling is written back untouched"


def test_api_type_absent_reads_as_danmnet_and_is_not_invented() -> None:
    ep = DanmEp.from_dict({"spec": {"Pod": "p"}})
    assert ep.network_kind is NetworkKind.DANMNET
    assert ep.to_dict() == {"spec": {"Pod": "p"}}


@pytest.mark.parametrize("raw", ["danmnet", "Foo", 3])
def test_api_type_unknown_value_is_an_error(raw: Any) -> None:
    with pytest.raises(
        ModelError,
        match=r'^invalid DanmEp "ns/e": spec\.apiType: expected one of DanmNet, TenantNetwork, '
        r"ClusterNetwork",
    ):
        DanmEp.from_dict({"metadata": {"name": "e", "namespace": "ns"}, "spec": {"apiType": raw}})


def test_created_endpoint_serialises_every_always_key() -> None:
    ep = DanmEp(
        metadata=new_metadata("u1", "default", labels={"app": "web"}),
        spec=DanmEpSpec(
            network_name="internal",
            network_type="ipvlan",
            endpoint_id="u1",
            interface=DanmEpInterface(
                name="eth0", address="10.0.0.5/24", mac_address="fa:16:3e:00:00:01"
            ),
            host="worker-1",
            pod="web-0",
            cid="sandbox",
            netns="/var/run/netns/x",
        ),
    )
    assert ep.to_dict() == {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "DanmEp",
        "metadata": {"name": "u1", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "NetworkName": "internal",
            "NetworkType": "ipvlan",
            "EndpointID": "u1",
            "Interface": {
                "Name": "eth0",
                "Address": "10.0.0.5/24",
                "AddressIPv6": "",
                "MacAddress": "fa:16:3e:00:00:01",
                "proutes": {},
                "proutes6": {},
            },
            "Host": "worker-1",
            "Pod": "web-0",
            "CID": "sandbox",
            "netns": "/var/run/netns/x",
            "apiType": "DanmNet",
        },
    }


def test_created_endpoint_writes_optional_keys_when_set() -> None:
    ep = DanmEp(
        spec=DanmEpSpec(
            pod_uid="uid-1",
            api_type=NetworkKind.CLUSTER_NETWORK,
            interface=DanmEpInterface(device_id="0000:af:06.0"),
        )
    )
    spec = ep.to_dict()["spec"]
    assert spec["PodUID"] == "uid-1"
    assert spec["apiType"] == "ClusterNetwork"
    assert type(spec["apiType"]) is str
    assert spec["Interface"]["DeviceID"] == "0000:af:06.0"


def test_changing_labels_and_address_keeps_the_rest() -> None:
    ep = DanmEp.from_dict(GO_SEED_EP)
    changed = ep.with_metadata(labels={"app": "web", "tier": "1"}).with_interface(
        address="10.100.20.6/24"
    )
    expected = copy.deepcopy(GO_SEED_EP)
    expected["metadata"]["labels"] = {"app": "web", "tier": "1"}
    expected["spec"]["Interface"]["Address"] = "10.100.20.6/24"
    assert changed.to_dict() == expected
    assert ep.with_metadata(labels=None).to_dict()["metadata"].get("labels") is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"Interface": "eth0"}, r'spec\.Interface: expected an object, got string "eth0"'),
        (
            {"Interface": {"proutes": ["x"]}},
            r"spec\.Interface\.proutes: expected an object of strings, got list",
        ),
        ({"Interface": {"Name": 0}}, r"spec\.Interface\.Name: expected a string, got number 0"),
        ({"PodUID": 12}, r"spec\.PodUID: expected a string, got number 12"),
        ({"netns": False}, r"spec\.netns: expected a string, got boolean false"),
    ],
)
def test_type_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        DanmEp.from_dict(
            {"kind": "DanmEp", "metadata": {"name": "e", "namespace": "ns"}, "spec": spec}
        )


def test_object_from_dict_dispatches_danmep() -> None:
    assert isinstance(object_from_dict(GO_SEED_EP), DanmEp)
    assert isinstance(object_from_dict(LIST_ITEM, kind="DanmEp"), DanmEp)
