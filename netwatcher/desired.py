"""Which VLAN and VxLAN host interfaces a node should have, computed from the network objects.

Why a pure module: this is the whole policy of netwatcher (which network asks for which link,
what is shared, what conflicts, which names are refused) and it needs no kernel and no API server,
so it is table-tested on its own. The reconciler (``netwatcher.reconcile``) compares the result
with the node's links; it never looks at network objects itself.

Rules (danm-behaviour.md §9, with the original's bugs of §13.27 fixed):

* Only networks with a ``host_device`` and a ``vlan`` and/or ``vxlan`` want host links:
  ``<NetworkID>.<vlan>`` (802.1Q on ``host_device``) and ``vx_<NetworkID>`` (VxLAN whose VTEP
  device is ``host_device``). A network with both gets both.
* Two networks asking for the identical link share it: it exists while either still wants it.
* Conflicts are decided by age: the network created first keeps the link, every later one gets a
  problem (an Event on that object) and nothing else changes. A conflict is the same name with a
  different kind/parent/id, the same VxLAN VNI under another name (the kernel allows one device
  per VNI and port), or the same VLAN id on the same parent under another name.
* A name longer than 15 bytes is refused with a problem, never truncated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from common.model.constants import (
    API_GROUP_VERSION,
    MAX_IFNAME_LENGTH,
    MAX_VLAN_ID,
    MAX_VXLAN_ID,
    MIN_VLAN_ID,
    MIN_VXLAN_ID,
    VXLAN_HOST_IFNAME_PREFIX,
    NetworkKind,
)
from common.model.errors import ModelError
from common.model.network import network_from_dict
from common.rules.naming import InterfaceNameError, check_interface_name

LinkKind: TypeAlias = Literal["vlan", "vxlan"]

REASON_INVALID_NETWORK = "InvalidNetwork"
REASON_NAME_TOO_LONG = "HostInterfaceNameTooLong"
REASON_INVALID_NAME = "InvalidHostInterfaceName"
REASON_CONFLICT = "HostInterfaceConflict"

NETWORK_KINDS: tuple[NetworkKind, ...] = (
    NetworkKind.DANMNET,
    NetworkKind.TENANT_NETWORK,
    NetworkKind.CLUSTER_NETWORK,
)


@dataclass(frozen=True, order=True)
class NetworkRef:
    """Which network object something is about; ``namespace`` is ``""`` for ClusterNetworks.

    ``created`` (RFC 3339, sorts as text) and the identity decide who wins a conflict; ``uid``
    and ``resource_version`` only serve the Event's ``involvedObject``.
    """

    created: str
    kind: str
    namespace: str
    name: str
    uid: str = field(default="", compare=False)
    resource_version: str = field(default="", compare=False)
    api_version: str = field(default=API_GROUP_VERSION, compare=False)

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    @classmethod
    def of(cls, kind: str, body: Mapping[str, Any]) -> NetworkRef:
        raw = body.get("metadata")
        metadata: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}

        def text(key: str) -> str:
            value = metadata.get(key)
            return value if isinstance(value, str) else ""

        api_version = body.get("apiVersion")
        return cls(
            created=text("creationTimestamp"),
            kind=kind,
            namespace=text("namespace"),
            name=text("name"),
            uid=text("uid"),
            resource_version=text("resourceVersion"),
            api_version=api_version if isinstance(api_version, str) else API_GROUP_VERSION,
        )


@dataclass(frozen=True)
class HostLink:
    """One host interface as netwatcher wants it: ``link_id`` is the 802.1Q id or the VNI."""

    name: str
    kind: LinkKind
    parent: str
    link_id: int

    def describe(self) -> str:
        if self.kind == "vlan":
            return f"VLAN {self.link_id} on {self.parent}"
        return f"VxLAN VNI {self.link_id} on {self.parent}"


@dataclass(frozen=True)
class NetworkProblem:
    """Why (part of) a network cannot be served on this node; becomes a Warning Event."""

    network: NetworkRef
    reason: str
    message: str


@dataclass(frozen=True)
class DesiredState:
    """Every host link the node should have, who wants it, and what was refused."""

    links: Mapping[str, HostLink]
    users: Mapping[str, tuple[NetworkRef, ...]]
    problems: tuple[NetworkProblem, ...]


@dataclass(frozen=True)
class NetworkObject:
    """A network as read from the API: its kind (List items carry none) and its JSON body."""

    kind: str
    body: Mapping[str, Any]


class _Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _checked_name(name: str, network_id: str, what: str) -> str:
    length = len(name.encode())
    if length > MAX_IFNAME_LENGTH:
        raise _Refused(
            REASON_NAME_TOO_LONG,
            f"{what} host interface name {name!r} is {length} bytes long but Linux allows at "
            f"most {MAX_IFNAME_LENGTH}; it is not created (shorten NetworkID {network_id!r})",
        )
    try:
        return check_interface_name(name, f"{what} host interface")
    except InterfaceNameError as error:
        raise _Refused(REASON_INVALID_NAME, str(error)) from error


def links_of(kind: str, body: Mapping[str, Any]) -> list[HostLink]:
    """The host links one network asks for (``[]`` when it wants none).

    Raises ``_Refused`` for a network that asks for links but cannot have them; it is private
    because ``desired_state`` turns it into a ``NetworkProblem``.
    """
    try:
        spec = network_from_dict(body, kind=kind).spec
    except ModelError as error:
        raise _Refused(REASON_INVALID_NETWORK, str(error)) from error
    options = spec.options
    if not options.host_device or not (options.vlan or options.vxlan):
        return []
    if not spec.network_id:
        raise _Refused(REASON_INVALID_NETWORK, "spec.NetworkID is empty, so no host interface")
    try:
        parent = check_interface_name(options.host_device, "spec.Options.host_device")
    except InterfaceNameError as error:
        raise _Refused(REASON_INVALID_NETWORK, str(error)) from error
    links: list[HostLink] = []
    if options.vlan:
        if not MIN_VLAN_ID <= options.vlan <= MAX_VLAN_ID:
            raise _Refused(
                REASON_INVALID_NETWORK,
                f"spec.Options.vlan {options.vlan} is outside {MIN_VLAN_ID}-{MAX_VLAN_ID}",
            )
        name = _checked_name(f"{spec.network_id}.{options.vlan}", spec.network_id, "VLAN")
        links.append(HostLink(name=name, kind="vlan", parent=parent, link_id=options.vlan))
    if options.vxlan:
        if not MIN_VXLAN_ID <= options.vxlan <= MAX_VXLAN_ID:
            raise _Refused(
                REASON_INVALID_NETWORK,
                f"spec.Options.vxlan {options.vxlan} is outside {MIN_VXLAN_ID}-{MAX_VXLAN_ID}",
            )
        name = _checked_name(
            f"{VXLAN_HOST_IFNAME_PREFIX}{spec.network_id}", spec.network_id, "VxLAN"
        )
        links.append(HostLink(name=name, kind="vxlan", parent=parent, link_id=options.vxlan))
    return links


def _clash(
    wanted: HostLink, granted: Mapping[str, HostLink], claims: Mapping[tuple[str, ...], str]
) -> tuple[str, str] | None:
    """``(granted link name, why)`` when ``wanted`` cannot coexist with ``granted``, else None."""
    existing = granted.get(wanted.name)
    if existing is not None and existing != wanted:
        return wanted.name, f"{wanted.name} is already {existing.describe()}"
    holder = claims.get(_claim_key(wanted))
    if holder is not None and holder != wanted.name:
        if wanted.kind == "vxlan":
            why = f"VxLAN VNI {wanted.link_id} is already used by {holder} (one device per VNI)"
        else:
            why = f"VLAN {wanted.link_id} on {wanted.parent} is already used by {holder}"
        return holder, why
    return None


def _claim_key(link: HostLink) -> tuple[str, ...]:
    # NB: the kernel refuses a second VxLAN device with the same VNI and port whatever its
    # parent, and a second 802.1Q link with the same id on the same parent.
    if link.kind == "vxlan":
        return ("vxlan", str(link.link_id))
    return ("vlan", link.parent, str(link.link_id))


def desired_state(networks: Iterable[NetworkObject]) -> DesiredState:
    """All host links wanted by ``networks``; the oldest network wins every conflict."""
    ordered = sorted(((NetworkRef.of(n.kind, n.body), n) for n in networks), key=lambda p: p[0])
    links: dict[str, HostLink] = {}
    users: dict[str, list[NetworkRef]] = {}
    claims: dict[tuple[str, ...], str] = {}
    problems: list[NetworkProblem] = []
    for ref, network in ordered:
        try:
            wanted_links = links_of(network.kind, network.body)
        except _Refused as refused:
            problems.append(NetworkProblem(ref, refused.reason, refused.message))
            continue
        for wanted in wanted_links:
            clash = _clash(wanted, links, claims)
            if clash is not None:
                holder, why = clash
                owners = ", ".join(str(user) for user in users[holder])
                problems.append(
                    NetworkProblem(
                        ref,
                        REASON_CONFLICT,
                        f"cannot create {wanted.name} ({wanted.describe()}): {why}, "
                        f"wanted by {owners}",
                    )
                )
                continue
            links[wanted.name] = wanted
            claims[_claim_key(wanted)] = wanted.name
            users.setdefault(wanted.name, []).append(ref)
    return DesiredState(
        links=links,
        users={name: tuple(refs) for name, refs in users.items()},
        problems=tuple(problems),
    )
