"""Plain data and pure helpers of the kernel adapter (``common.io.netlink``).

Why a separate module: everything here is decided without a kernel (error classification, name
and address arithmetic, turning a network's ``routes`` map into validated route specs), so it is
unit-tested with no root and no pyroute2. ``common.io.netlink`` re-exports all of it; import from
there. The error tree is drawn in that module's docstring.
"""

from __future__ import annotations

import errno as errno_codes
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from common.rules.naming import InterfaceNameError, check_interface_name

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface: TypeAlias = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IpvlanMode: TypeAlias = Literal["l2", "l3", "l3s"]
IpFamily: TypeAlias = Literal[4, 6]

MAIN_TABLE = 254
"""The kernel's main routing table; DANM's "table 0" means this one."""
VXLAN_DEFAULT_PORT = 4789
"""IANA VxLAN port; the kernel's own default (8472) is Linux-legacy and is never used here."""
MAX_VNI = 2**24 - 1
IPVLAN_MODES: Mapping[IpvlanMode, int] = {"l2": 0, "l3": 1, "l3s": 2}
"""``IFLA_IPVLAN_MODE`` values (include/uapi/linux/if_link.h)."""
TEMPORARY_LINK_PREFIX = "dnm"
NETNS_RUN_DIR = "/var/run/netns"

_VXLAN_GROUP_BASE_V4 = ipaddress.IPv4Address("239.0.0.0")
_VXLAN_GROUP_BASE_V6 = ipaddress.IPv6Address("ff02::")


# --------------------------------------------------------------------------------------------
# Errors


class NetlinkFailure(Exception):
    """Something the kernel adapter was asked to do did not happen.

    ``operation`` names the step ("add address 10.0.0.5/24 to eth1 in /proc/42/ns/net"),
    ``errno`` is the kernel's (or the OS's) error number, or ``None`` when no syscall failed.
    """

    def __init__(self, operation: str, reason: str, *, errno: int | None = None) -> None:
        self.operation = operation
        self.reason = reason
        self.errno = errno
        super().__init__(f"cannot {operation}: {reason}")


class InvalidNetlinkRequest(NetlinkFailure, ValueError):
    """Refused by us before any syscall: the caller's input can never succeed."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(operation, reason, errno=errno_codes.EINVAL)


class InvalidLinkName(InvalidNetlinkRequest):
    """The interface name is empty, too long (> 15 bytes) or contains characters Linux refuses."""


class InvalidRouteSpec(InvalidNetlinkRequest):
    """A ``routes``/``routes6``/``proutes`` entry cannot be turned into a route."""


class NamespaceNotFound(NetlinkFailure):
    """The network-namespace path does not exist (any more) or is not a network namespace."""


class LinkNotFound(NetlinkFailure):
    """No such interface (ENODEV), or a name lookup found nothing."""


class LinkExists(NetlinkFailure):
    """An interface with that name already exists (EEXIST on link create or rename)."""


class AddressExists(NetlinkFailure):
    """The address is already configured on the interface (EEXIST)."""


class RouteExists(NetlinkFailure):
    """The route already exists in that table (EEXIST)."""


class RuleExists(NetlinkFailure):
    """An identical policy rule already exists (EEXIST)."""


class DeviceBusy(NetlinkFailure):
    """The device is busy (EBUSY), e.g. the parent already has a conflicting child."""


class GatewayUnreachable(NetlinkFailure):
    """The route's gateway is not reachable through the given device (ENETUNREACH)."""


class NotSupported(NetlinkFailure):
    """The kernel lacks the feature (EOPNOTSUPP), typically a link kind whose module is absent."""


class PermissionDenied(NetlinkFailure):
    """The process lacks CAP_NET_ADMIN / CAP_SYS_ADMIN (EPERM, EACCES)."""


class SysctlFailure(NetlinkFailure):
    """A sysctl could not be written inside the namespace (errno tells why; ENOENT: no such key)."""


OperationKind: TypeAlias = Literal["link", "address", "route", "rule", "other"]

_EEXIST_BY_KIND: Mapping[str, type[NetlinkFailure]] = {
    "link": LinkExists,
    "address": AddressExists,
    "route": RouteExists,
    "rule": RuleExists,
}
_BY_ERRNO: Mapping[int, type[NetlinkFailure]] = {
    errno_codes.ENODEV: LinkNotFound,
    errno_codes.EBUSY: DeviceBusy,
    errno_codes.ENETUNREACH: GatewayUnreachable,
    errno_codes.EOPNOTSUPP: NotSupported,
    errno_codes.EPERM: PermissionDenied,
    errno_codes.EACCES: PermissionDenied,
}


def failure_for_errno(
    code: int, *, operation: str, kind: OperationKind, reason: str | None = None
) -> NetlinkFailure:
    """Our exception for a kernel error number returned by the step ``operation`` of ``kind``."""
    text = reason or _strerror(code)
    if code == errno_codes.EEXIST and kind in _EEXIST_BY_KIND:
        return _EEXIST_BY_KIND[kind](operation, text, errno=code)
    if code == errno_codes.EOPNOTSUPP and kind == "link":
        text = f"{text} (is the kernel module for this link kind loaded?)"
    return _BY_ERRNO.get(code, NetlinkFailure)(operation, text, errno=code)


def _strerror(code: int) -> str:
    name = errno_codes.errorcode.get(code, "")
    try:
        message = os.strerror(code)
    except ValueError:
        message = "unknown error"
    return f"{message} ({name or code})"


# --------------------------------------------------------------------------------------------
# Observed state (what the adapter reads back)


@dataclass(frozen=True)
class VxlanParams:
    """The VxLAN attributes of a link as the kernel reports them."""

    vni: int
    parent_index: int | None
    local: IPAddress | None
    group: IPAddress | None
    port: int
    learning: bool
    l2miss: bool
    l3miss: bool


@dataclass(frozen=True)
class LinkInfo:
    """One interface of one namespace.

    ``parent_*`` is the lower device of a vlan/vxlan/macvlan/ipvlan/veth (``IFLA_LINK``, or the
    VxLAN VTEP device). ``parent_name`` is filled only when the parent lives in the same namespace;
    ``parent_netnsid`` is set instead when the kernel says it lives elsewhere (a moved ipvlan).
    ``master_*`` is the bridge/bond the link is enslaved to.
    """

    name: str
    index: int
    kind: str | None
    mtu: int
    up: bool
    oper_state: str
    mac: str | None
    parent_index: int | None = None
    parent_name: str | None = None
    parent_netnsid: int | None = None
    master_index: int | None = None
    master_name: str | None = None
    vlan_id: int | None = None
    ipvlan_mode: IpvlanMode | None = None
    vxlan: VxlanParams | None = None
    alias: str | None = None
    """``IFLA_IFALIAS`` (``ip link set X alias ...``); netwatcher marks its own links with it."""


ADDRESS_SCOPES: Mapping[int, str] = {0: "universe", 200: "site", 253: "link", 254: "host"}


@dataclass(frozen=True)
class AddressInfo:
    """One address on an interface (``interface`` carries the prefix length)."""

    link_index: int
    interface: IPInterface
    scope: str
    broadcast: ipaddress.IPv4Address | None
    flags: int
    """``IFA_F_*`` bits: 0x02 NODAD, 0x40 TENTATIVE, 0x80 PERMANENT ..."""

    @property
    def address(self) -> IPAddress:
        return self.interface.ip


@dataclass(frozen=True, order=True)
class RouteSpec:
    """A route to add: ``destination`` via ``gateway`` (the device is given when adding)."""

    destination: IPNetwork
    gateway: IPAddress

    @property
    def family(self) -> IpFamily:
        return 4 if self.destination.version == 4 else 6


@dataclass(frozen=True)
class RouteInfo:
    """One route read back from a table (``destination`` 0.0.0.0/0 or ::/0 for a default)."""

    destination: IPNetwork
    gateway: IPAddress | None
    device_index: int | None
    table: int


@dataclass(frozen=True)
class RuleInfo:
    """One policy rule read back (``source`` ``None`` means "from all")."""

    source: IPNetwork | IPInterface | None
    table: int
    priority: int | None
    family: IpFamily


# --------------------------------------------------------------------------------------------
# Pure helpers


def checked_link_name(name: str, *, operation: str) -> str:
    """``name`` if Linux accepts it as an interface name, else ``InvalidLinkName``."""
    try:
        return check_interface_name(name, "invalid name")
    except InterfaceNameError as error:
        raise InvalidLinkName(operation, str(error)) from error


def temporary_link_name(unique_id: str | None = None) -> str:
    """A 15-character host-side name for a link that is about to move into a Pod.

    Derived from ``unique_id`` (e.g. the DanmEp UUID) when given, so a retried ADD that left a
    link behind collides (``LinkExists``) instead of leaking a second one; random otherwise.
    The prefix keeps these recognisable on the host.
    """
    if unique_id is None:
        import secrets  # NB: lazily: a delegated ADD never names links, and this costs ~2 ms

        token = secrets.token_hex(6)
    else:
        import hashlib

        token = hashlib.sha256(unique_id.encode()).hexdigest()[:12]
    return f"{TEMPORARY_LINK_PREFIX}{token}"


def vxlan_group(vni: int, local: IPAddress) -> IPAddress:
    """The multicast group of VxLAN ``vni``: 239.0.0.0 + vni (IPv4 local), ff02:: + vni (IPv6)."""
    checked_vni(vni)
    if local.version == 4:
        return _VXLAN_GROUP_BASE_V4 + vni
    return _VXLAN_GROUP_BASE_V6 + vni


def checked_vni(vni: int) -> int:
    if not 1 <= vni <= MAX_VNI:
        raise InvalidNetlinkRequest(f"use VxLAN id {vni}", f"a VNI must be in 1..{MAX_VNI}")
    return vni


def checked_vlan_id(vlan_id: int) -> int:
    if not 1 <= vlan_id <= 4094:
        raise InvalidNetlinkRequest(f"use VLAN id {vlan_id}", "an 802.1Q id must be in 1..4094")
    return vlan_id


def checked_table(table: int) -> int:
    """Routing table id; DANM's 0 (and ``rt_tables`` up to 255) maps 0 to the main table."""
    if table == 0:
        return MAIN_TABLE
    if not 1 <= table < 2**32:
        raise InvalidNetlinkRequest(f"use routing table {table}", "table ids are 0..2^32-1")
    return table


def netns_path(netns: str) -> str:
    """The filesystem path of a namespace given as a path or as an ``ip netns`` name."""
    if not netns:
        raise InvalidNetlinkRequest("open network namespace ''", "the namespace path is empty")
    if "/" in netns:
        return netns
    return f"{NETNS_RUN_DIR}/{netns}"


def sysctl_path(*components: str) -> str:
    """``/proc/sys`` path of a sysctl given as components, e.g. ("net", "ipv6", "conf", if, key).

    Components are path segments, never split on ".", so an interface called ``eth0.100`` is one
    directory (the original joined with "." and broke on such names, §13.29).
    """
    for component in components:
        if not component or "/" in component or component in (".", ".."):
            raise InvalidNetlinkRequest(
                f"write sysctl {'/'.join(components)}",
                f"{component!r} is not a valid sysctl path component",
            )
    return "/proc/sys/" + "/".join(components)


def interface_sysctl_path(family: IpFamily, device: str, key: str) -> str:
    """``/proc/sys/net/ipv{4,6}/conf/<device>/<key>`` for a checked device name."""
    checked_link_name(device, operation=f"write sysctl {key} of {device!r}")
    return sysctl_path("net", f"ipv{family}", "conf", device, key)


def ipv6_interface_sysctls(enabled: bool) -> dict[str, str]:
    """Per-interface IPv6 settings DANM applies (§3.6 step 6).

    With an IPv6 address: IPv6 on, no SLAAC, no router advertisements (the address is managed by
    DANM). Without one: IPv6 off, so the interface gets no link-local address either.
    """
    if enabled:
        return {"disable_ipv6": "0", "autoconf": "0", "accept_ra": "0"}
    return {"disable_ipv6": "1"}


def route_specs(
    routes: Mapping[str, str] | None, *, family: IpFamily, field: str = "routes"
) -> list[RouteSpec]:
    """DANM's ``{destination CIDR: gateway}`` map as a sorted, validated list of route specs.

    The original silently skipped unparsable entries and added them in random map order
    (§13.30); here every bad entry is reported at once (``InvalidRouteSpec`` naming ``field``)
    and the result is sorted (by destination address, then prefix length) so the kernel sees the
    same sequence on every node. Destinations with host bits set are normalised to their network,
    as the original's CIDR parser did; two keys that normalise to the same network are an error.
    """
    if not routes:
        return []
    problems: list[str] = []
    specs: dict[IPNetwork, RouteSpec] = {}
    for raw_destination, raw_gateway in routes.items():
        entry = f"{raw_destination!r}: {raw_gateway!r}"
        try:
            destination = ipaddress.ip_network(str(raw_destination).strip(), strict=False)
        except ValueError:
            problems.append(f"{entry}: destination is not a CIDR")
            continue
        if "/" not in str(raw_destination):
            problems.append(f"{entry}: destination needs a prefix length (CIDR notation)")
            continue
        try:
            gateway = ipaddress.ip_address(str(raw_gateway).strip())
        except ValueError:
            problems.append(f"{entry}: gateway is not an IP address")
            continue
        if destination.version != family or gateway.version != family:
            problems.append(f"{entry}: {field} holds IPv{family} routes only")
            continue
        if destination in specs:
            problems.append(f"{entry}: destination {destination} is given twice")
            continue
        specs[destination] = RouteSpec(destination=destination, gateway=gateway)
    if problems:
        raise InvalidRouteSpec(f"use the {field} of the network", "; ".join(sorted(problems)))
    return sorted(specs.values(), key=_route_order)


def _route_order(spec: RouteSpec) -> tuple[int, int, int]:
    return (
        int(spec.destination.network_address),
        spec.destination.prefixlen,
        int(spec.gateway),
    )


def pick_vxlan_local_address(addresses: Sequence[AddressInfo]) -> IPAddress | None:
    """The VxLAN local address: first universe-scope IPv4, else first universe-scope IPv6."""
    for version in (4, 6):
        for info in addresses:
            if info.scope == "universe" and info.interface.version == version:
                return info.address
    return None


_BROADCAST_MAC = b"\xff" * 6
_ARP_HEADER = bytes.fromhex("000108000604")  # Ethernet, IPv4, hlen 6, plen 4
_ETHERTYPE_ARP = b"\x08\x06"
_MIN_ETHERNET_FRAME = 60


def mac_bytes(mac: str) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` as 6 bytes."""
    parts = mac.split(":")
    try:
        raw = bytes(int(part, 16) for part in parts)
    except ValueError:
        raw = b""
    if len(parts) != 6 or len(raw) != 6 or any(len(p) not in (1, 2) for p in parts):
        raise InvalidNetlinkRequest(f"use hardware address {mac!r}", "not a 48-bit MAC address")
    return raw


def gratuitous_arp_frames(mac: str, address: ipaddress.IPv4Address) -> list[bytes]:
    """Two broadcast Ethernet frames announcing that ``address`` is at ``mac``.

    First an ARP request with sender = target = ``address`` and an all-zero target MAC (the
    RFC 5227 announcement, what the kernel's own ``arp_notify`` sends), then the same as an ARP
    reply for peers that only update their caches from replies. Padded to the 60-byte minimum.
    """
    sender = mac_bytes(mac)
    ip = address.packed
    request = _ARP_HEADER + b"\x00\x01" + sender + ip + b"\x00" * 6 + ip
    reply = _ARP_HEADER + b"\x00\x02" + sender + ip + _BROADCAST_MAC + ip
    ethernet = _BROADCAST_MAC + sender + _ETHERTYPE_ARP
    return [(ethernet + arp).ljust(_MIN_ETHERNET_FRAME, b"\x00") for arp in (request, reply)]
