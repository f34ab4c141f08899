"""API objects as a cluster holds them, built for svcwatcher tests (unit and e2e share them)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any


def service(
    name: str,
    namespace: str = "vnf",
    *,
    selector: Mapping[str, str] | str | None = None,
    network: str | None = None,
    tenant_network: str | None = None,
    cluster_network: str | None = None,
    ports: Sequence[Mapping[str, Any]] = ({"name": "diameter", "port": 3868, "protocol": "TCP"},),
    labels: Mapping[str, str] | None = None,
    spec_selector: Mapping[str, str] | None = None,
    extra_annotations: Mapping[str, str] | None = None,
    uid: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    annotations: dict[str, str] = dict(extra_annotations or {})
    if selector is not None:
        annotations["danm.k8s.io/selector"] = (
            selector if isinstance(selector, str) else json.dumps(dict(selector))
        )
    for key, value in (
        ("danm.k8s.io/network", network),
        ("danm.k8s.io/tenantNetwork", tenant_network),
        ("danm.k8s.io/clusterNetwork", cluster_network),
    ):
        if value is not None:
            annotations[key] = value
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "annotations": annotations}
    if labels:
        metadata["labels"] = dict(labels)
    if uid:
        metadata["uid"] = uid
    body: dict[str, Any] = {"clusterIP": "None", "ports": [dict(p) for p in ports], **spec}
    if spec_selector:
        body["selector"] = dict(spec_selector)
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": body}


def pod(
    name: str,
    namespace: str = "vnf",
    *,
    labels: Mapping[str, str] | None = None,
    ready: bool = True,
    node: str = "node-1",
    container_ports: Sequence[Mapping[str, Any]] = (),
    uid: str | None = None,
    deleting: bool = False,
    phase: str = "Running",
    **spec: Any,
) -> dict[str, Any]:
    """A Pod with status; ``pod_spec`` and ``pod_status`` split it for the API's create/status."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": dict(labels or {}),
        "uid": uid or str(uuid.uuid4()),
    }
    if deleting:
        metadata["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "main", "image": "busybox", "ports": [dict(p) for p in container_ports]}
            ],
            **spec,
        },
        "status": pod_status(ready, phase),
    }


def pod_status(ready: bool, phase: str = "Running") -> dict[str, Any]:
    return {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }


def danmep(
    pod_name: str,
    network: str,
    namespace: str = "vnf",
    *,
    ipv4: str = "",
    ipv6: str = "",
    api_type: str = "",
    ifname: str = "eth1",
    pod_uid: str = "",
    name: str | None = None,
) -> dict[str, Any]:
    ep_name = name or str(uuid.uuid4())
    spec: dict[str, Any] = {
        "NetworkName": network,
        "NetworkType": "ipvlan",
        "EndpointID": ep_name,
        "Interface": {
            "Name": ifname,
            "Address": ipv4,
            "AddressIPv6": ipv6,
            "MacAddress": "fa:16:3e:00:00:01",
            "proutes": {},
            "proutes6": {},
        },
        "Host": "node-1",
        "Pod": pod_name,
        "apiType": api_type,
    }
    if pod_uid:
        spec["PodUID"] = pod_uid
    return {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "DanmEp",
        "metadata": {"name": ep_name, "namespace": namespace},
        "spec": spec,
    }
