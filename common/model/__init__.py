"""DANM's API objects and the Pod annotation as typed, loss-free Python models.

Pure: no client, no I/O. Read objects with ``from_dict`` (or :func:`network_from_dict` /
:func:`object_from_dict` to choose the class by ``kind``), write them with ``to_dict``; whatever
the input had, including fields we do not model, comes back unchanged unless we changed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.model._base import copy_json, copy_json_object, new_metadata
from common.model.annotation import (
    NetworkConnection,
    default_connection,
    parse_interfaces,
    parse_interfaces_json,
    serialize_interfaces,
)
from common.model.constants import ALL_KINDS, KIND_DANMEP, KIND_TENANT_CONFIG, NetworkKind
from common.model.danmep import DanmEp, DanmEpInterface, DanmEpSpec
from common.model.errors import AnnotationError, ModelError
from common.model.network import (
    ClusterNetwork,
    DanmNet,
    IpPool,
    IpPoolV6,
    Network,
    NetworkOptions,
    NetworkSpec,
    TenantNetwork,
    canonical_network_type,
    is_builtin_ipvlan,
    is_dynamic_type,
    needs_delegation,
    network_class,
    network_from_dict,
)
from common.model.tenantconfig import HostDeviceProfile, TenantConfig

#: Any top-level DANM object.
DanmObject = DanmNet | TenantNetwork | ClusterNetwork | DanmEp | TenantConfig


def object_from_dict(data: Any, *, kind: str | None = None) -> Network | DanmEp | TenantConfig:
    """Read any of the five DANM kinds, choosing the class by ``kind`` (argument or field)."""
    found = data.get("kind") if isinstance(data, Mapping) else None
    chosen = kind or found
    if chosen not in ALL_KINDS:
        where = "kind: missing" if not chosen else f"kind: {chosen!r} is not a DANM kind"
        raise ModelError("DANM object", "", f"{where}; expected one of {', '.join(ALL_KINDS)}")
    if chosen == KIND_DANMEP:
        return DanmEp.from_dict(data)
    if chosen == KIND_TENANT_CONFIG:
        return TenantConfig.from_dict(data)
    return network_from_dict(data, kind=kind)


__all__ = [
    "AnnotationError",
    "ClusterNetwork",
    "DanmEp",
    "DanmEpInterface",
    "DanmEpSpec",
    "DanmNet",
    "DanmObject",
    "HostDeviceProfile",
    "IpPool",
    "IpPoolV6",
    "ModelError",
    "Network",
    "NetworkConnection",
    "NetworkKind",
    "NetworkOptions",
    "NetworkSpec",
    "TenantConfig",
    "TenantNetwork",
    "canonical_network_type",
    "copy_json",
    "copy_json_object",
    "default_connection",
    "is_builtin_ipvlan",
    "is_dynamic_type",
    "needs_delegation",
    "network_class",
    "network_from_dict",
    "new_metadata",
    "object_from_dict",
    "parse_interfaces",
    "parse_interfaces_json",
    "serialize_interfaces",
]
