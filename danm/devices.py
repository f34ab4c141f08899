"""Which device-plugin devices (SR-IOV VFs) a Pod got, and which connection uses which one.

An SR-IOV network names a device pool (``spec.Options.device_pool``, a Kubernetes extended
resource such as ``nokia.k8s.io/sriov_ens1f0``). The device plugin hands the Pod's containers
device IDs (PCI addresses) of that resource; DANM must give each SR-IOV connection a different
one. Two sources say which IDs a Pod got, both read by the caller and given here as data:

* the kubelet checkpoint file (danm-behaviour.md §4.5): ``{"Data": {"PodDeviceEntries": [
  {"PodUID", "ContainerName", "ResourceName", "DeviceIDs", "AllocResp"}], ...}, "Checksum"}``.
  ``DeviceIDs`` is a list in old kubelets and a map NUMA node → list since Kubernetes 1.20;
  both are read;
* the kubelet Pod Resources API (``Get``/``List``, spoken by ``common.io.podresources``), as the
  JSON form of one ``PodResources`` message: ``{"name", "namespace", "containers": [{"name",
  "devices": [{"resourceName", "deviceIds"}]}]}`` (``resource_name``/``device_ids`` accepted
  too). It names Pods by namespace and name, not UID, and is preferred when the kubelet offers
  it; ``danm.add.choose_devices`` decides which source is read.

Selection (:func:`select_devices`) is deterministic so that a repeated ADD picks the same
devices: each pool's IDs are de-duplicated and sorted, and connections take them in connection
order, so connection k of a pool gets that pool's k-th device. The seed popped from the end of
the file's order instead. One ID is never handed to two connections.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

DevicePools = Mapping[str, tuple[str, ...]]


class DeviceError(ValueError):
    """Device IDs cannot be read or are not enough for the Pod's SR-IOV connections."""


def _checkpoint_ids(value: Any, position: int) -> list[str]:
    if isinstance(value, list):
        groups: list[Any] = [value]
    elif isinstance(value, Mapping):
        # NB: k8s >= 1.20 keys DeviceIDs by NUMA node ("0", "1", ...); order nodes numerically.
        def numa_order(key: Any) -> tuple[int, str]:
            text = str(key)
            return (int(text), text) if text.isdigit() else (1 << 30, text)

        groups = [value[key] for key in sorted(value, key=numa_order)]
    elif value is None:
        groups = []
    else:
        raise DeviceError(
            f"kubelet checkpoint: PodDeviceEntries[{position}].DeviceIDs must be a list or a "
            f"map of NUMA node to list, got {type(value).__name__}"
        )
    ids: list[str] = []
    for group in groups:
        if group is None:
            continue
        if not isinstance(group, list) or not all(isinstance(i, str) for i in group):
            raise DeviceError(
                f"kubelet checkpoint: PodDeviceEntries[{position}].DeviceIDs holds something "
                "other than lists of device ID strings"
            )
        ids.extend(group)
    return ids


def pools_from_checkpoint(raw: bytes | str, pod_uid: str) -> dict[str, tuple[str, ...]]:
    """Device IDs per resource name allocated to the Pod ``pod_uid``, from the checkpoint file.

    All containers' IDs are pooled; IDs come back sorted and without duplicates.
    """
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DeviceError(f"kubelet checkpoint is not valid JSON: {error}") from None
    data = document.get("Data") if isinstance(document, Mapping) else None
    entries = data.get("PodDeviceEntries") if isinstance(data, Mapping) else None
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise DeviceError("kubelet checkpoint: Data.PodDeviceEntries must be a list")
    pools: dict[str, list[str]] = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise DeviceError(f"kubelet checkpoint: PodDeviceEntries[{position}] is not an object")
        if entry.get("PodUID") != pod_uid:
            continue
        resource = entry.get("ResourceName")
        if not isinstance(resource, str) or not resource:
            raise DeviceError(
                f"kubelet checkpoint: PodDeviceEntries[{position}] has no ResourceName"
            )
        pools.setdefault(resource, []).extend(_checkpoint_ids(entry.get("DeviceIDs"), position))
    return {resource: tuple(sorted(set(ids))) for resource, ids in pools.items()}


def _either(item: Mapping[str, Any], camel: str, snake: str) -> Any:
    return item.get(camel) if camel in item else item.get(snake)


def pools_from_pod_resources(pod_resources: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Device IDs per resource name from one Pod Resources API ``PodResources`` message."""
    containers = pod_resources.get("containers")
    containers = [] if containers is None else containers
    if not isinstance(containers, list):
        raise DeviceError("Pod Resources API: 'containers' must be a list")
    pools: dict[str, list[str]] = {}
    for container in containers:
        devices = container.get("devices") if isinstance(container, Mapping) else None
        if not isinstance(devices, list | type(None)):
            raise DeviceError("Pod Resources API: 'containers[].devices' must be a list")
        for device in devices or []:
            if not isinstance(device, Mapping):
                raise DeviceError("Pod Resources API: a device entry is not an object")
            resource = _either(device, "resourceName", "resource_name")
            ids = _either(device, "deviceIds", "device_ids") or []
            if not isinstance(resource, str) or not resource:
                raise DeviceError("Pod Resources API: a device entry has no resource name")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise DeviceError(
                    f"Pod Resources API: device IDs of {resource} must be a list of strings"
                )
            pools.setdefault(resource, []).extend(ids)
    return {resource: tuple(sorted(set(ids))) for resource, ids in pools.items()}


def select_devices(
    pools: DevicePools, requests: Iterable[tuple[int, str]], *, pod: str = ""
) -> dict[int, str]:
    """A distinct device ID for every ``(connection index, device pool)`` request.

    Raises :class:`DeviceError` when the Pod has no devices at all, has none from a requested
    pool, or has fewer devices in a pool than connections asking for it.
    """
    wanted = sorted(requests)
    if not wanted:
        return {}
    of_pod = f" {pod}" if pod else ""
    if not any(pools.values()):
        raise DeviceError(
            f"there were no Devices allocated for the Pod{of_pod}, but its connections need "
            f"devices from {', '.join(sorted({pool for _, pool in wanted}))}; request the "
            "resource in a container's resources.limits"
        )
    by_pool: dict[str, list[int]] = {}
    for index, pool in wanted:
        by_pool.setdefault(pool, []).append(index)
    chosen: dict[int, str] = {}
    for pool, indices in by_pool.items():
        available = sorted(set(pools.get(pool, ())))
        if not available:
            held = ", ".join(sorted(r for r, ids in pools.items() if ids))
            raise DeviceError(
                f"failed to retrieve resources of DevicePool {pool} for the Pod{of_pod}: it "
                f"holds devices only of {held}; request {pool} in a container's "
                "resources.limits"
            )
        if len(indices) > len(available):
            numbers = ", ".join(str(i) for i in indices)
            raise DeviceError(
                f"devicePool {pool} is exhausted for the Pod{of_pod}: connections no.:{numbers} "
                f"need {len(indices)} devices but the Pod was given {len(available)}"
            )
        chosen.update(zip(indices, available, strict=False))
    return chosen
