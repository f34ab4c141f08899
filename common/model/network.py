"""DanmNet, TenantNetwork and ClusterNetwork: three kinds, one shape.

The original declares one Go type (``DanmNetSpec``) for all three network APIs and tells them apart
only by ``kind`` and scope, so we do the same: :class:`NetworkSpec` and :class:`NetworkOptions` are
shared, and the three classes differ only in their ``KIND``/``NAMESPACED`` class constants.
``AllowedTenants`` is parsed for every kind; only the webhook decides that it is meaningful on a
ClusterNetwork alone. JSON keys are the original's, mixed case included (danm-behaviour.md §1.2,
later fields from §12).

Serialisation of objects built in code (see ``common.model._base``): ``apiVersion``, ``kind``,
``metadata``, ``spec``, ``spec.NetworkID``, ``spec.Options`` and ``Options.allocation_pool`` with
its ``start``/``end`` are always written, as the original Go types do; every other key only when
set. ``allocation_pool_v6`` (later than seed) is written only when set, and then with its ``cidr``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from common.model._base import (
    INT,
    METADATA,
    STR,
    STR_LIST,
    STR_MAP,
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
from common.model.constants import (
    API_GROUP_VERSION,
    DYNAMIC_NETWORK_TYPES,
    NETWORK_TYPE_IPVLAN,
    NetworkKind,
)


def is_builtin_ipvlan(network_type: str) -> bool:
    """Whether DANM's own IPVLAN plugin serves this type: ``""`` or ``ipvlan`` in any case."""
    return network_type.lower() in ("", NETWORK_TYPE_IPVLAN)


def needs_delegation(network_type: str) -> bool:
    """Whether interfaces of this type are made by another CNI binary (§4.1)."""
    return not is_builtin_ipvlan(network_type)


def is_dynamic_type(network_type: str) -> bool:
    """Whether DANM generates the backend configuration itself (ipvlan, sriov, macvlan)."""
    return network_type.lower() in DYNAMIC_NETWORK_TYPES


def canonical_network_type(network_type: str) -> str:
    """The spelling to store: the built-in IPVLAN as ``ipvlan``, every other type unchanged.

    NB: only the built-in type is folded; a static delegate's type names a binary, whose case
    matters on disk.
    """
    return NETWORK_TYPE_IPVLAN if is_builtin_ipvlan(network_type) else network_type


@dataclass(frozen=True, kw_only=True)
class IpPool(JsonModel):
    """``allocation_pool``: the inclusive IPv4 range for dynamic allocation.

    ``last_ip`` (``lastIp``, later than seed) is where round-robin allocation resumes.
    """

    start: str = ""
    end: str = ""
    last_ip: str = ""

    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("start", "start", STR, always=True),
        JsonField("end", "end", STR, always=True),
        JsonField("lastIp", "last_ip", STR),
    )


@dataclass(frozen=True, kw_only=True)
class IpPoolV6(JsonModel):
    """``allocation_pool_v6`` (later than seed): the IPv6 sub-range tracked by ``alloc6``."""

    start: str = ""
    end: str = ""
    last_ip: str = ""
    cidr: str = ""

    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("start", "start", STR),
        JsonField("end", "end", STR),
        JsonField("lastIp", "last_ip", STR),
        JsonField("cidr", "cidr", STR, always=True),
    )


@dataclass(frozen=True, kw_only=True)
class NetworkOptions(JsonModel):
    """``spec.Options``. Integers use 0 and strings ``""`` for "not set", as the original does."""

    host_device: str = ""
    device_pool: str = ""
    vxlan: int = 0
    container_prefix: str = ""
    cidr: str = ""
    routes: Mapping[str, str] = field(default_factory=dict)
    alloc: str = ""
    allocation_pool: IpPool = field(default_factory=IpPool)
    net6: str = ""
    routes6: Mapping[str, str] = field(default_factory=dict)
    alloc6: str = ""
    allocation_pool_v6: IpPoolV6 = field(default_factory=IpPoolV6)
    rt_tables: int = 0
    vlan: int = 0

    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("host_device", "host_device", STR),
        JsonField("device_pool", "device_pool", STR),
        JsonField("vxlan", "vxlan", INT),
        JsonField("container_prefix", "container_prefix", STR),
        JsonField("cidr", "cidr", STR),
        JsonField("routes", "routes", STR_MAP),
        JsonField("alloc", "alloc", STR),
        # NB: the Go tag is `omitEmpty` (ineffective), so the original always writes the pool.
        JsonField("allocation_pool", "allocation_pool", nested(IpPool), always=True),
        JsonField("net6", "net6", STR),
        JsonField("routes6", "routes6", STR_MAP),
        JsonField("alloc6", "alloc6", STR),
        JsonField("allocation_pool_v6", "allocation_pool_v6", nested(IpPoolV6)),
        JsonField("rt_tables", "rt_tables", INT),
        JsonField("vlan", "vlan", INT),
    )


@dataclass(frozen=True, kw_only=True)
class NetworkSpec(JsonModel):
    """``spec`` of all three network kinds."""

    network_id: str = ""
    network_type: str = ""
    allowed_tenants: tuple[str, ...] = ()
    options: NetworkOptions = field(default_factory=NetworkOptions)

    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = (
        JsonField("NetworkID", "network_id", STR, always=True),
        JsonField("NetworkType", "network_type", STR),
        JsonField("AllowedTenants", "allowed_tenants", STR_LIST),
        JsonField("Options", "options", nested(NetworkOptions), always=True),
    )


def _network_fields(kind: str) -> tuple[JsonField, ...]:
    return (
        JsonField("apiVersion", "api_version", STR, always=True),
        JsonField("kind", "kind", const_str(kind), always=True),
        JsonField("metadata", "metadata", METADATA, always=True),
        JsonField("spec", "spec", nested(NetworkSpec), always=True),
    )


@dataclass(frozen=True, kw_only=True)
class Network(TopLevelMixin, JsonModel):
    """Common base of :class:`DanmNet`, :class:`TenantNetwork` and :class:`ClusterNetwork`.

    Not instantiated itself; use a subclass or :func:`network_from_dict`.
    """

    KIND: ClassVar[NetworkKind]
    NAMESPACED: ClassVar[bool]

    api_version: str = API_GROUP_VERSION
    kind: str = field(default="", init=False)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    spec: NetworkSpec = field(default_factory=NetworkSpec)

    def __post_init__(self) -> None:
        if type(self) is Network:
            raise TypeError("Network is abstract; build a DanmNet, TenantNetwork or ClusterNetwork")

    @classmethod
    def object_ref_for(cls, data: Any) -> str:
        return object_ref(cls.KIND.value, data)

    @property
    def network_kind(self) -> NetworkKind:
        return self.KIND

    @property
    def network_id(self) -> str:
        return self.spec.network_id

    @property
    def network_type(self) -> str:
        return self.spec.network_type

    @property
    def options(self) -> NetworkOptions:
        return self.spec.options

    def with_spec(self, **changes: Any) -> Self:
        """A copy with ``spec`` fields replaced (attribute names, e.g. ``network_type=``)."""
        return dataclasses.replace(self, spec=dataclasses.replace(self.spec, **changes))

    def with_options(self, **changes: Any) -> Self:
        """A copy with ``spec.Options`` fields replaced (attribute names, e.g. ``alloc=``)."""
        options = dataclasses.replace(self.spec.options, **changes)
        return self.with_spec(options=options)

    def with_metadata(self, **updates: Any) -> Self:
        """A copy with top-level ``metadata`` keys set by JSON name; ``None`` removes a key."""
        return dataclasses.replace(self, metadata=updated_metadata(self.metadata, updates))


@dataclass(frozen=True, kw_only=True)
class DanmNet(Network):
    """Namespaced network of the lightweight API; Pods reference it with ``"network"``."""

    KIND: ClassVar[NetworkKind] = NetworkKind.DANMNET
    NAMESPACED: ClassVar[bool] = True
    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = _network_fields(NetworkKind.DANMNET.value)

    kind: str = field(default=NetworkKind.DANMNET.value, init=False)


@dataclass(frozen=True, kw_only=True)
class TenantNetwork(Network):
    """Namespaced tenant network; the webhook fills its physical attributes from TenantConfig."""

    KIND: ClassVar[NetworkKind] = NetworkKind.TENANT_NETWORK
    NAMESPACED: ClassVar[bool] = True
    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = _network_fields(NetworkKind.TENANT_NETWORK.value)

    kind: str = field(default=NetworkKind.TENANT_NETWORK.value, init=False)


@dataclass(frozen=True, kw_only=True)
class ClusterNetwork(Network):
    """Cluster-scoped network; ``spec.AllowedTenants`` may restrict which namespaces connect."""

    KIND: ClassVar[NetworkKind] = NetworkKind.CLUSTER_NETWORK
    NAMESPACED: ClassVar[bool] = False
    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = _network_fields(
        NetworkKind.CLUSTER_NETWORK.value
    )

    kind: str = field(default=NetworkKind.CLUSTER_NETWORK.value, init=False)


NETWORK_CLASSES: dict[NetworkKind, type[Network]] = {
    NetworkKind.DANMNET: DanmNet,
    NetworkKind.TENANT_NETWORK: TenantNetwork,
    NetworkKind.CLUSTER_NETWORK: ClusterNetwork,
}


def network_class(kind: str) -> type[Network]:
    """The model class of a network ``kind`` string; :class:`ModelError` for anything else."""
    return _network_class_at(kind, Where("network", "kind"))


def _network_class_at(kind: str, where: Where) -> type[Network]:
    try:
        return NETWORK_CLASSES[NetworkKind(kind)]
    except ValueError:
        known = ", ".join(k.value for k in NetworkKind)
        raise where.error(f"expected one of {known}, got {describe(kind)}") from None


def network_from_dict(data: Any, *, kind: str | None = None) -> Network:
    """Read any network object, choosing the class by its ``kind``.

    ``kind`` names the kind when ``data`` lacks it (items of a List response carry no ``kind``);
    if both are given they must agree.
    """
    where = Where(object_ref("network", data), "kind")
    found = data.get("kind") if isinstance(data, Mapping) else None
    if found is not None and not isinstance(found, str):
        raise where.error(f"expected a string, got {describe(found)}")
    if kind and found and found != kind:
        raise where.error(f"expected {kind!r} for this object, got {describe(found)}")
    chosen = kind or found
    if not chosen:
        raise where.error(
            "missing; cannot tell whether this is a DanmNet, TenantNetwork or ClusterNetwork"
        )
    return _network_class_at(chosen, where).from_dict(data)
