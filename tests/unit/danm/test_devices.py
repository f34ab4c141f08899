"""Device pools from the kubelet checkpoint / Pod Resources API and distinct selection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from danm.devices import (
    DeviceError,
    pools_from_checkpoint,
    pools_from_pod_resources,
    select_devices,
)

POOL_A, POOL_B = "nokia.k8s.io/sriov_ens1f0", "nokia.k8s.io/sriov_ens1f1"


def checkpoint(*entries: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "Data": {"PodDeviceEntries": list(entries), "RegisteredDevices": {POOL_A: ["x"]}},
            "Checksum": 1234,
        }
    ).encode()


def entry(uid: str, resource: str, ids: Any, container: str = "c") -> dict[str, Any]:
    return {
        "PodUID": uid,
        "ContainerName": container,
        "ResourceName": resource,
        "DeviceIDs": ids,
        "AllocResp": "CgQKAA==",
    }


def test_old_list_shape_grouped_by_resource_for_one_pod():
    raw = checkpoint(
        entry("pod-1", POOL_A, ["0000:af:06.3", "0000:af:06.1"], "c1"),
        entry("pod-2", POOL_A, ["0000:af:06.7"]),
        entry("pod-1", POOL_B, ["0000:b0:02.0"], "c1"),
        entry("pod-1", POOL_A, ["0000:af:06.2", "0000:af:06.1"], "c2"),
    )
    assert pools_from_checkpoint(raw, "pod-1") == {
        POOL_A: ("0000:af:06.1", "0000:af:06.2", "0000:af:06.3"),
        POOL_B: ("0000:b0:02.0",),
    }
    assert pools_from_checkpoint(raw, "pod-3") == {}


def test_numa_map_shape():
    raw = checkpoint(
        entry("pod-1", POOL_A, {"1": ["0000:d8:02.1"], "0": ["0000:af:06.0"], "-1": None})
    )
    assert pools_from_checkpoint(raw, "pod-1") == {POOL_A: ("0000:af:06.0", "0000:d8:02.1")}


@pytest.mark.parametrize(
    "raw",
    [b"{}", b'{"Data": {}}', b'{"Data": {"PodDeviceEntries": null}}', checkpoint()],
)
def test_checkpoint_without_entries(raw):
    assert pools_from_checkpoint(raw, "pod-1") == {}


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"not json", "not valid JSON"),
        (b'{"Data": {"PodDeviceEntries": {}}}', "must be a list"),
        (b'{"Data": {"PodDeviceEntries": [1]}}', r"PodDeviceEntries\[0\] is not an object"),
        (checkpoint(entry("pod-1", "", ["a"])), "has no ResourceName"),
        (checkpoint(entry("pod-1", POOL_A, "0000:af:06.0")), "must be a list or a map"),
        (checkpoint(entry("pod-1", POOL_A, [1, 2])), "lists of device ID strings"),
        (checkpoint(entry("pod-1", POOL_A, {"0": "x"})), "lists of device ID strings"),
    ],
)
def test_corrupt_checkpoint(raw, text):
    with pytest.raises(DeviceError, match=text):
        pools_from_checkpoint(raw, "pod-1")


def test_other_pods_entries_are_not_validated_beyond_shape():
    raw = checkpoint(entry("pod-2", "", "garbage"), entry("pod-1", POOL_A, ["a"]))
    assert pools_from_checkpoint(raw, "pod-1") == {POOL_A: ("a",)}


@pytest.mark.parametrize(
    ("names", "message"),
    [(("resourceName", "deviceIds"), "camel"), (("resource_name", "device_ids"), "snake")],
)
def test_pod_resources(names, message):
    resource_key, ids_key = names
    pod = {
        "name": "web-0",
        "namespace": "prod",
        "containers": [
            {"name": "a", "devices": [{resource_key: POOL_A, ids_key: ["2", "1"]}]},
            {"name": "b", "devices": None},
            {"name": "c", "devices": [{resource_key: POOL_A, ids_key: ["3", "1"]}]},
            {"name": "d"},
        ],
    }
    assert pools_from_pod_resources(pod) == {POOL_A: ("1", "2", "3")}, message


@pytest.mark.parametrize(
    ("pod", "text"),
    [
        ({"containers": {}}, "'containers' must be a list"),
        ({"containers": [{"devices": "x"}]}, "must be a list"),
        ({"containers": [{"devices": [1]}]}, "not an object"),
        ({"containers": [{"devices": [{"deviceIds": ["1"]}]}]}, "no resource name"),
        (
            {"containers": [{"devices": [{"resourceName": "r", "deviceIds": "1"}]}]},
            "list of strings",
        ),
    ],
)
def test_pod_resources_errors(pod, text):
    with pytest.raises(DeviceError, match=text):
        pools_from_pod_resources(pod)


POOLS = {POOL_A: ("0000:af:06.0", "0000:af:06.1"), POOL_B: ("0000:b0:02.0",)}


@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        ([], {}),
        ([(1, POOL_A)], {1: "0000:af:06.0"}),
        (
            [(3, POOL_A), (1, POOL_A), (2, POOL_B)],
            {1: "0000:af:06.0", 2: "0000:b0:02.0", 3: "0000:af:06.1"},
        ),
    ],
)
def test_select_devices(requests, expected):
    chosen = select_devices(POOLS, requests)
    assert chosen == expected
    assert len(set(chosen.values())) == len(chosen)


def test_selection_is_independent_of_pool_order():
    shuffled = {POOL_A: ("0000:af:06.1", "0000:af:06.0", "0000:af:06.1")}
    assert select_devices(shuffled, [(0, POOL_A), (1, POOL_A)]) == {
        0: "0000:af:06.0",
        1: "0000:af:06.1",
    }


def test_no_requests_needs_no_devices():
    assert select_devices({}, []) == {}


@pytest.mark.parametrize(
    ("pools", "requests", "text"),
    [
        ({}, [(0, POOL_A)], "there were no Devices allocated for the Pod prod/web-0"),
        ({POOL_A: ()}, [(0, POOL_A)], "there were no Devices allocated"),
        (
            {POOL_B: ("x",)},
            [(0, POOL_A)],
            f"failed to retrieve resources of DevicePool {POOL_A} for the Pod prod/web-0: it "
            f"holds devices only of {POOL_B}",
        ),
        (
            POOLS,
            [(0, POOL_B), (4, POOL_B)],
            f"devicePool {POOL_B} is exhausted for the Pod prod/web-0: connections no.:0, 4 "
            "need 2 devices but the Pod was given 1",
        ),
    ],
)
def test_select_devices_errors(pools, requests, text):
    with pytest.raises(DeviceError) as caught:
        select_devices(pools, requests, pod="prod/web-0")
    assert text in str(caught.value)
