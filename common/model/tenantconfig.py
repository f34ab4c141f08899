"""TenantConfig: the cluster administrator's list of physical profiles for TenantNetworks.

Unlike the other kinds it has no ``spec``: ``hostDevices`` and ``networkIds`` sit at the top of the
object (danm-behaviour.md §1.4). Only the first TenantConfig in a cluster is used; that policy
belongs to the webhook, not here.

Serialisation of objects built in code: ``apiVersion``, ``kind``, ``metadata`` and each profile's
``name`` are always written; ``hostDevices``, ``networkIds`` and the profile's ``vniType``,
``vniRange``, ``alloc`` only when set (all ``omitempty`` in the original).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from common.model._base import (
    METADATA,
    STR,
    STR_MAP,
    JsonField,
    JsonModel,
    TopLevelMixin,
    const_str,
    nested_list,
    object_ref,
    updated_metadata,
)
from common.model.constants import API_GROUP_VERSION, KIND_TENANT_CONFIG


@dataclass(frozen=True, kw_only=True)
class HostDeviceProfile(JsonModel):
    """One ``hostDevices[]`` entry: a host NIC, or a device pool when ``name`` contains ``/``.

    ``vni_type`` is ``vlan``/``vxlan`` or ``""``; ``vni_range`` uses the list syntax
    ``"2000-2500,2601"``; ``alloc`` is the base64 bit array of reserved VNIs.
    """

    name: str = ""
    vni_type: str = ""
    vni_range: str = ""
    alloc: str = ""

    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("name", "name", STR, always=True),
        JsonField("vniType", "vni_type", STR),
        JsonField("vniRange", "vni_range", STR),
        JsonField("alloc", "alloc", STR),
    )

    @property
    def is_device_pool(self) -> bool:
        """Whether the profile names a device-plugin resource rather than a host NIC."""
        return "/" in self.name


@dataclass(frozen=True, kw_only=True)
class TenantConfig(TopLevelMixin, JsonModel):
    """Cluster-scoped physical profiles (``host_devices``) and NetworkType→NetworkID overrides."""

    KIND: ClassVar[str] = KIND_TENANT_CONFIG
    NAMESPACED: ClassVar[bool] = False

    api_version: str = API_GROUP_VERSION
    kind: str = field(default=KIND_TENANT_CONFIG, init=False)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    host_devices: tuple[HostDeviceProfile, ...] = ()
    network_ids: Mapping[str, str] = field(default_factory=dict)

    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("apiVersion", "api_version", STR, always=True),
        JsonField("kind", "kind", const_str(KIND_TENANT_CONFIG), always=True),
        JsonField("metadata", "metadata", METADATA, always=True),
        JsonField("hostDevices", "host_devices", nested_list(HostDeviceProfile)),
        JsonField("networkIds", "network_ids", STR_MAP),
    )

    @classmethod
    def object_ref_for(cls, data: Any) -> str:
        return object_ref(KIND_TENANT_CONFIG, data)

    def with_metadata(self, **updates: Any) -> Self:
        """A copy with top-level ``metadata`` keys set by JSON name; ``None`` removes a key."""
        return dataclasses.replace(self, metadata=updated_metadata(self.metadata, updates))
