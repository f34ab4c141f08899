"""Small builders for network, TenantConfig and AdmissionReview dicts used by the webhook tests."""

from __future__ import annotations

import copy
import json
from typing import Any

from common.model import network_from_dict


def network(
    kind: str = "DanmNet",
    *,
    name: str = "net",
    namespace: str | None = "ns",
    network_id: str | None = "nid",
    network_type: str | None = None,
    spec_extra: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if network_id is not None:
        spec["NetworkID"] = network_id
    if network_type is not None:
        spec["NetworkType"] = network_type
    spec.update(spec_extra or {})
    spec["Options"] = options
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None and kind != "ClusterNetwork":
        metadata["namespace"] = namespace
    return {"apiVersion": "danm.k8s.io/v1", "kind": kind, "metadata": metadata, "spec": spec}


def model(obj: dict[str, Any]):
    return network_from_dict(obj)


def tenant_config(
    host_devices: list[dict[str, Any]] | None = None,
    network_ids: dict[str, str] | None = None,
    name: str = "tconf",
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "TenantConfig",
        "metadata": {"name": name},
    }
    if host_devices is not None:
        obj["hostDevices"] = copy.deepcopy(host_devices)
    if network_ids is not None:
        obj["networkIds"] = dict(network_ids)
    return obj


def review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    kind: str | None = None,
    dry_run: bool = False,
    api_version: str = "admission.k8s.io/v1",
    uid: str = "uid-1",
) -> dict[str, Any]:
    subject = obj if obj is not None else old
    assert subject is not None
    chosen = kind or subject["kind"]
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": "danm.k8s.io", "version": "v1", "kind": chosen},
        "resource": {"group": "danm.k8s.io", "version": "v1", "resource": "x"},
        "operation": operation,
        "name": subject["metadata"]["name"],
        "namespace": subject["metadata"].get("namespace", ""),
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
    }
    return {"apiVersion": api_version, "kind": "AdmissionReview", "request": request}


def body(obj: dict[str, Any] | None, **kwargs: Any) -> bytes:
    return json.dumps(review(obj, **kwargs)).encode()
