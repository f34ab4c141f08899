"""The one door to the kernel's network configuration: links, addresses, routes, rules, sysctls.

Why it exists: the ``danm`` CNI (built-in IPVLAN, routes and policy routing inside the Pod) and
``netwatcher`` (VLAN/VxLAN host interfaces) need a handful of rtnetlink operations, in the host
namespace and in Pod namespaces, with errors they can branch on without knowing pyroute2. Callers
depend on the ``Netlink`` protocol below; ``PyrouteNetlink`` (``common.io.netlink_pyroute``) is the
real implementation and fakes are type-checked against the protocol. Importing this module does
not import pyroute2 (CNI start-up cost); the implementation imports it on first use.

Every method that acts "somewhere" takes ``netns``: ``None`` for this process's own namespace, or
a namespace path (``/proc/<pid>/ns/net``, ``/var/run/netns/<name>``; a bare name means
``/var/run/netns/<name>``). A namespace is never created by opening it, and this process never
``setns()``es (pyroute2 and our helpers fork a child for that).

Error vocabulary (every error is raised ``from`` the pyroute2/OS error that caused it, and carries
``.operation``, ``.reason`` and ``.errno``)::

    NetlinkFailure                  the kernel (or we) refused an operation; .errno may be None
    ├── InvalidNetlinkRequest       refused before any syscall: bad input (also a ValueError) fatal
    │   ├── InvalidLinkName         empty, > 15 bytes, or '/', ':', whitespace in a link name fatal
    │   └── InvalidRouteSpec        unparsable/mixed-family/duplicate routes map entries     fatal
    ├── NamespaceNotFound           netns path missing, or not a network namespace
    │                               (CNI DEL treats this as success: the Pod is gone)
    ├── LinkNotFound      ENODEV    no such interface (lookups by name too); callers decide
    │                               whether that is fine (DEL, netwatcher delete)
    ├── LinkExists        EEXIST    link create/rename/move to a name that is taken
    ├── AddressExists     EEXIST    address already on the interface
    ├── RouteExists       EEXIST    route already in that table
    ├── RuleExists        EEXIST    identical policy rule exists
    ├── DeviceBusy        EBUSY     e.g. rename of an up link, conflicting child on the parent
    ├── GatewayUnreachable ENETUNREACH  gateway not on a subnet of the given device
    ├── NotSupported      EOPNOTSUPP  kernel lacks the link kind (module not loaded: ipvlan, 8021q)
    ├── PermissionDenied  EPERM/EACCES  no CAP_NET_ADMIN / CAP_SYS_ADMIN
    └── SysctlFailure               a sysctl write failed (ENOENT: no such key/interface)

Any other errno is a plain ``NetlinkFailure``. Nothing here retries except dumps interrupted by a
concurrent change (repeated a few times, as containernetworking's netlinksafe does).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Protocol

from common.io.netlink_model import (
    ADDRESS_SCOPES,
    IPVLAN_MODES,
    MAIN_TABLE,
    MAX_VNI,
    NETNS_RUN_DIR,
    TEMPORARY_LINK_PREFIX,
    VXLAN_DEFAULT_PORT,
    AddressExists,
    AddressInfo,
    DeviceBusy,
    GatewayUnreachable,
    InvalidLinkName,
    InvalidNetlinkRequest,
    InvalidRouteSpec,
    IPAddress,
    IpFamily,
    IPInterface,
    IPNetwork,
    IpvlanMode,
    LinkExists,
    LinkInfo,
    LinkNotFound,
    NamespaceNotFound,
    NetlinkFailure,
    NotSupported,
    PermissionDenied,
    RouteExists,
    RouteInfo,
    RouteSpec,
    RuleExists,
    RuleInfo,
    SysctlFailure,
    VxlanParams,
    checked_link_name,
    checked_table,
    failure_for_errno,
    gratuitous_arp_frames,
    interface_sysctl_path,
    ipv6_interface_sysctls,
    netns_path,
    pick_vxlan_local_address,
    route_specs,
    sysctl_path,
    temporary_link_name,
    vxlan_group,
)
from common.io.netlink_pyroute import PyrouteNetlink

__all__ = [
    "ADDRESS_SCOPES",
    "IPVLAN_MODES",
    "MAIN_TABLE",
    "MAX_VNI",
    "NETNS_RUN_DIR",
    "TEMPORARY_LINK_PREFIX",
    "VXLAN_DEFAULT_PORT",
    "AddressExists",
    "AddressInfo",
    "DeviceBusy",
    "GatewayUnreachable",
    "IPAddress",
    "IPInterface",
    "IPNetwork",
    "InvalidLinkName",
    "InvalidNetlinkRequest",
    "InvalidRouteSpec",
    "IpFamily",
    "IpvlanMode",
    "LinkExists",
    "LinkInfo",
    "LinkNotFound",
    "NamespaceNotFound",
    "Netlink",
    "NetlinkFailure",
    "NotSupported",
    "PermissionDenied",
    "PyrouteNetlink",
    "RouteExists",
    "RouteInfo",
    "RouteSpec",
    "RuleExists",
    "RuleInfo",
    "SysctlFailure",
    "VxlanParams",
    "checked_link_name",
    "checked_table",
    "failure_for_errno",
    "gratuitous_arp_frames",
    "interface_sysctl_path",
    "ipv6_interface_sysctls",
    "netns_path",
    "pick_vxlan_local_address",
    "route_specs",
    "sysctl_path",
    "temporary_link_name",
    "vxlan_group",
]


class Netlink(Protocol):
    """What DANM needs from the kernel. ``netns=None`` means this process's own namespace."""

    # -- links
    def get_link(self, name: str, *, netns: str | None = None) -> LinkInfo: ...

    def list_links(self, *, netns: str | None = None) -> list[LinkInfo]: ...

    def set_link_up(self, name: str, *, netns: str | None = None) -> None: ...

    def set_link_down(self, name: str, *, netns: str | None = None) -> None: ...

    def rename_link(self, name: str, new_name: str, *, netns: str | None = None) -> None: ...

    def delete_link(self, name: str, *, netns: str | None = None) -> None: ...

    def create_ipvlan(
        self,
        parent: str,
        *,
        mode: IpvlanMode = "l2",
        name: str | None = None,
        netns: str | None = None,
    ) -> LinkInfo: ...

    def create_macvlan(
        self,
        parent: str,
        *,
        mode: str = "bridge",
        name: str | None = None,
        netns: str | None = None,
    ) -> LinkInfo: ...

    def create_vlan(
        self, name: str, *, parent: str, vlan_id: int, up: bool = True, netns: str | None = None
    ) -> LinkInfo: ...

    def create_vxlan(
        self,
        name: str,
        *,
        parent: str,
        vni: int,
        local: IPAddress,
        group: IPAddress | None = None,
        port: int = VXLAN_DEFAULT_PORT,
        learning: bool = True,
        l2miss: bool = True,
        l3miss: bool = True,
        up: bool = True,
        netns: str | None = None,
    ) -> LinkInfo: ...

    def move_link(
        self,
        name: str,
        target_netns: str,
        *,
        new_name: str | None = None,
        netns: str | None = None,
    ) -> None: ...

    # -- addresses
    def add_address(
        self, device: str, address: IPInterface | str, *, netns: str | None = None
    ) -> None: ...

    def list_addresses(
        self, device: str, *, family: IpFamily | None = None, netns: str | None = None
    ) -> list[AddressInfo]: ...

    def vxlan_local_address(self, device: str, *, netns: str | None = None) -> IPAddress | None: ...

    # -- sysctls
    def write_sysctls(self, settings: Mapping[str, str], *, netns: str | None = None) -> None: ...

    def set_interface_sysctls(
        self,
        device: str,
        settings: Mapping[str, str],
        *,
        family: IpFamily = 6,
        netns: str | None = None,
    ) -> None: ...

    # -- routes and rules
    def add_routes(
        self,
        routes: Sequence[RouteSpec],
        *,
        device: str,
        table: int = 0,
        netns: str | None = None,
    ) -> None: ...

    def list_routes(
        self, *, table: int = 0, family: IpFamily | None = None, netns: str | None = None
    ) -> list[RouteInfo]: ...

    def add_rule(
        self,
        source: IPNetwork | IPInterface,
        *,
        table: int,
        priority: int | None = None,
        netns: str | None = None,
    ) -> None: ...

    def list_rules(
        self, *, family: IpFamily | None = None, netns: str | None = None
    ) -> list[RuleInfo]: ...

    # -- neighbours
    def announce_ipv4(
        self, device: str, address: ipaddress.IPv4Address, *, netns: str | None = None
    ) -> None: ...


_check: Netlink = PyrouteNetlink()
