"""DanmEp: DANM's record of one interface it provisioned into a Pod.

The CNI writes one per connection on ADD and finds them again on DEL; svcwatcher turns them into
Endpoints. JSON keys per danm-behaviour.md §1.3, plus the later ``PodUID`` (§12).

``apiType`` names the kind of network the endpoint belongs to. The original's typed client often
left it ``""`` for DanmNets (§13.8); reading maps ``""`` to ``DanmNet`` so every reader agrees,
while an object read with ``""`` is still written back with ``""``. Objects we build always carry
it.

Serialisation of objects built in code: ``NetworkName``, ``NetworkType``, ``EndpointID``,
``Interface``, ``Pod``, ``apiType`` and, inside ``Interface``, ``Name``, ``Address``,
``AddressIPv6``, ``MacAddress``, ``proutes`` and ``proutes6`` are always written (``proutes`` as
``{}`` rather than Go's ``null``); ``Host``, ``PodUID``, ``CID``, ``netns`` and ``DeviceID`` only
when set.
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
    Codec,
    JsonField,
    JsonModel,
    TopLevelMixin,
    Where,
    const_str,
    describe,
    nested,
    object_ref,
    updated_metadata,
)
from common.model.constants import API_GROUP_VERSION, KIND_DANMEP, NetworkKind


def _parse_api_type(value: Any, where: Where) -> NetworkKind:
    if value is None or value == "":
        return NetworkKind.DANMNET
    if isinstance(value, str):
        try:
            return NetworkKind(value)
        except ValueError:
            pass
    known = ", ".join(kind.value for kind in NetworkKind)
    raise where.error(f'expected one of {known} (or "" for DanmNet), got {describe(value)}')


API_TYPE: Codec[NetworkKind] = Codec(_parse_api_type, lambda value: value.value)


@dataclass(frozen=True, kw_only=True)
class DanmEpInterface(JsonModel):
    """``spec.Interface``: the container-side view of the interface.

    ``address``/``address_ipv6`` are CIDR strings (``10.0.0.5/24``) or ``""``.
    """

    name: str = ""
    address: str = ""
    address_ipv6: str = ""
    mac_address: str = ""
    proutes: Mapping[str, str] = field(default_factory=dict)
    proutes6: Mapping[str, str] = field(default_factory=dict)
    device_id: str = ""

    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("Name", "name", STR, always=True),
        JsonField("Address", "address", STR, always=True),
        JsonField("AddressIPv6", "address_ipv6", STR, always=True),
        JsonField("MacAddress", "mac_address", STR, always=True),
        JsonField("proutes", "proutes", STR_MAP, always=True),
        JsonField("proutes6", "proutes6", STR_MAP, always=True),
        JsonField("DeviceID", "device_id", STR),
    )


@dataclass(frozen=True, kw_only=True)
class DanmEpSpec(JsonModel):
    """``spec`` of a DanmEp. ``cid`` is the Pod's infra (sandbox) container id, DEL's key."""

    network_name: str = ""
    network_type: str = ""
    endpoint_id: str = ""
    interface: DanmEpInterface = field(default_factory=DanmEpInterface)
    host: str = ""
    pod: str = ""
    pod_uid: str = ""
    cid: str = ""
    netns: str = ""
    api_type: NetworkKind = NetworkKind.DANMNET

    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("NetworkName", "network_name", STR, always=True),
        JsonField("NetworkType", "network_type", STR, always=True),
        JsonField("EndpointID", "endpoint_id", STR, always=True),
        JsonField("Interface", "interface", nested(DanmEpInterface), always=True),
        JsonField("Host", "host", STR),
        JsonField("Pod", "pod", STR, always=True),
        JsonField("PodUID", "pod_uid", STR),
        JsonField("CID", "cid", STR),
        JsonField("netns", "netns", STR),
        JsonField("apiType", "api_type", API_TYPE, always=True),
    )


@dataclass(frozen=True, kw_only=True)
class DanmEp(TopLevelMixin, JsonModel):
    """One provisioned Pod interface. ``metadata.name`` is the EndpointID (a UUIDv4)."""

    KIND: ClassVar[str] = KIND_DANMEP
    NAMESPACED: ClassVar[bool] = True

    api_version: str = API_GROUP_VERSION
    kind: str = field(default=KIND_DANMEP, init=False)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    spec: DanmEpSpec = field(default_factory=DanmEpSpec)

    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("apiVersion", "api_version", STR, always=True),
        JsonField("kind", "kind", const_str(KIND_DANMEP), always=True),
        JsonField("metadata", "metadata", METADATA, always=True),
        JsonField("spec", "spec", nested(DanmEpSpec), always=True),
    )

    @classmethod
    def object_ref_for(cls, data: Any) -> str:
        return object_ref(KIND_DANMEP, data)

    @property
    def network_kind(self) -> NetworkKind:
        """Kind of the network this endpoint belongs to (``""`` in the object reads as DanmNet)."""
        return self.spec.api_type

    @property
    def interface(self) -> DanmEpInterface:
        return self.spec.interface

    def with_spec(self, **changes: Any) -> Self:
        """A copy with ``spec`` fields replaced (attribute names, e.g. ``netns=``)."""
        return dataclasses.replace(self, spec=dataclasses.replace(self.spec, **changes))

    def with_interface(self, **changes: Any) -> Self:
        """A copy with ``spec.Interface`` fields replaced (attribute names, e.g. ``address=``)."""
        return self.with_spec(interface=dataclasses.replace(self.spec.interface, **changes))

    def with_metadata(self, **updates: Any) -> Self:
        """A copy with top-level ``metadata`` keys set by JSON name; ``None`` removes a key."""
        return dataclasses.replace(self, metadata=updated_metadata(self.metadata, updates))
