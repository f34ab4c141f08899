"""``PyrouteNetlink``: the ``Netlink`` protocol implemented on pyroute2's ``IPRoute``.

Why it is built this way:

* pyroute2 is imported on first use, never at module import: its package ``__init__`` alone costs
  ~0.2 s, and the CNI binary is started once per Pod interface.
* Namespaces are opened with ``IPRoute(netns=path, flags=0)``. pyroute2 creates the netlink socket
  in a forked child that ``setns()``es and hands the descriptor back, so this process never
  changes namespace (the hazard containernetworking's ``pkg/ns/README.md`` describes), and
  ``flags=0`` means a wrong path fails instead of silently creating a fresh namespace.
* Writing per-namespace sysctls needs a process *inside* the namespace (``/proc/sys/net`` shows
  the namespace of the task that opens it), so those writes run in a short-lived forked child
  (``common.io.netns_exec``, stdlib only, so sysctl-only callers never import pyroute2).
  Gratuitous ARP uses a packet socket created in a pyroute2 child like the netlink sockets.
* Every pyroute2/OS error is re-raised as our own ``NetlinkFailure`` subclass ``from`` the
  original (see ``common.io.netlink`` for the tree).

Sockets: outside a ``with PyrouteNetlink() as netlink:`` block every call opens its socket(s) and
closes them before returning. Inside the block, one socket per namespace is opened on first use
and reused until the block ends (opening one into another namespace forks, ~15 ms), which is what
a CNI ADD wants: a dozen steps in the same Pod namespace.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import ipaddress
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from types import SimpleNamespace, TracebackType
from typing import Any, Self

from common.io.netlink_model import (
    ADDRESS_SCOPES,
    IPVLAN_MODES,
    MAIN_TABLE,
    VXLAN_DEFAULT_PORT,
    AddressInfo,
    InvalidNetlinkRequest,
    IPAddress,
    IpFamily,
    IPInterface,
    IPNetwork,
    IpvlanMode,
    LinkInfo,
    LinkNotFound,
    NamespaceNotFound,
    NetlinkFailure,
    OperationKind,
    PermissionDenied,
    RouteInfo,
    RouteSpec,
    RuleInfo,
    SysctlFailure,
    VxlanParams,
    checked_link_name,
    checked_table,
    checked_vlan_id,
    checked_vni,
    failure_for_errno,
    gratuitous_arp_frames,
    interface_sysctl_path,
    netns_path,
    pick_vxlan_local_address,
    sysctl_path,
    temporary_link_name,
    vxlan_group,
)
from common.io.netns_exec import NetnsHelperError, write_files_in_netns

_NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3), linux/nsfs.h
_CLONE_NEWNET = 0x40000000
_IFF_UP = 0x1
_IFA_F_NODAD = 0x02
_ETH_P_ARP = 0x0806
_DUMP_ATTEMPTS = 5
_CHILD_TIMEOUT_SECONDS = 10


@functools.cache
def _pyroute2() -> SimpleNamespace:
    """The pyroute2 names we use, imported on first call (start-up cost, see module docstring)."""
    import pyroute2.netns
    from pyroute2.iproute.linux import IPRoute
    from pyroute2.netlink.exceptions import NetlinkDumpInterrupted, NetlinkError

    return SimpleNamespace(
        IPRoute=IPRoute,
        NetlinkError=NetlinkError,
        NetlinkDumpInterrupted=NetlinkDumpInterrupted,
        netns=pyroute2.netns,
    )


def _where(path: str | None) -> str:
    return "" if path is None else f" in netns {path}"


def _open_netns_fd(path: str, operation: str) -> int:
    """An O_RDONLY descriptor of the network namespace at ``path`` (caller closes it).

    Checked with ``NS_GET_NSTYPE`` so a leftover plain file (an unmounted ``/var/run/netns``
    entry) or a mount/pid namespace is reported as such, without ever entering it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as error:
        raise NamespaceNotFound(operation, f"{path} does not exist", errno=error.errno) from error
    except PermissionError as error:
        raise PermissionDenied(operation, f"cannot open {path}", errno=error.errno) from error
    except OSError as error:
        raise NamespaceNotFound(
            operation, f"cannot open {path}: {error.strerror}", errno=error.errno
        ) from error
    try:
        namespace_type = fcntl.ioctl(fd, _NS_GET_NSTYPE)
    except OSError as error:
        os.close(fd)
        raise NamespaceNotFound(
            operation, f"{path} is not a namespace", errno=error.errno
        ) from error
    if namespace_type != _CLONE_NEWNET:
        os.close(fd)
        raise NamespaceNotFound(operation, f"{path} is not a network namespace", errno=errno.EINVAL)
    return fd


def _check_netns(path: str, operation: str) -> None:
    os.close(_open_netns_fd(path, operation))


@contextmanager
def _translated(operation: str, kind: OperationKind) -> Iterator[None]:
    """Re-raise pyroute2's and the OS's errors as ours, chained ``from`` the original."""
    lib = _pyroute2()
    try:
        yield
    except lib.NetlinkError as error:
        raise failure_for_errno(error.code, operation=operation, kind=kind) from error
    except OSError as error:
        if error.errno is None:
            raise NetlinkFailure(operation, str(error)) from error
        raise failure_for_errno(error.errno, operation=operation, kind=kind) from error


def _dump(operation: str, request: Callable[[], Any]) -> list[Any]:
    """Run a dump, repeating it when the kernel says it was interrupted by a concurrent change."""
    lib = _pyroute2()
    for _ in range(_DUMP_ATTEMPTS - 1):
        try:
            with _translated(operation, "other"):
                return list(request())
        except NetlinkFailure as failure:
            if not isinstance(failure.__cause__, lib.NetlinkDumpInterrupted):
                raise
    with _translated(operation, "other"):
        return list(request())


def _ip(value: Any) -> IPAddress | None:
    return None if value in (None, "") else ipaddress.ip_address(value)


def _link_from_message(msg: Any) -> LinkInfo:
    """Our ``LinkInfo`` from an ``ifinfmsg`` (parent/master names are filled in by the caller)."""
    kind = msg.get(("linkinfo", "kind"))
    data = msg.get(("linkinfo", "data"))
    parent_index = msg.get("link")
    vlan_id = ipvlan_mode = vxlan = None
    if data is not None and kind == "vlan":
        vlan_id = data.get("vlan_id")
    elif data is not None and kind == "ipvlan":
        mode_value = data.get("ipvlan_mode")
        ipvlan_mode = next((m for m, v in IPVLAN_MODES.items() if v == mode_value), None)
    elif data is not None and kind == "vxlan":
        vxlan = VxlanParams(
            vni=data.get("vxlan_id"),
            parent_index=data.get("vxlan_link") or None,
            local=_ip(data.get("vxlan_local") or data.get("vxlan_local6")),
            group=_ip(data.get("vxlan_group") or data.get("vxlan_group6")),
            port=data.get("vxlan_port"),
            learning=bool(data.get("vxlan_learning")),
            l2miss=bool(data.get("vxlan_l2miss")),
            l3miss=bool(data.get("vxlan_l3miss")),
        )
        parent_index = parent_index or vxlan.parent_index
    return LinkInfo(
        name=msg.get("ifname"),
        index=msg["index"],
        kind=kind,
        mtu=msg.get("mtu"),
        up=bool(msg["flags"] & _IFF_UP),
        oper_state=msg.get("operstate") or "UNKNOWN",
        mac=msg.get("address"),
        parent_index=parent_index or None,
        parent_netnsid=msg.get("link_netnsid"),
        master_index=msg.get("master") or None,
        vlan_id=vlan_id,
        ipvlan_mode=ipvlan_mode,
        vxlan=vxlan,
        alias=msg.get("ifalias") or None,
    )


def _with_names(link: LinkInfo, names_by_index: Mapping[int, str]) -> LinkInfo:
    parent_name = None
    if link.parent_index is not None and link.parent_netnsid is None:
        parent_name = names_by_index.get(link.parent_index)
    master_name = None if link.master_index is None else names_by_index.get(link.master_index)
    return replace(link, parent_name=parent_name, master_name=master_name)


def _address_from_message(msg: Any) -> AddressInfo:
    address = msg.get("address")
    broadcast = msg.get("broadcast")
    flags = msg.get("IFA_FLAGS")
    return AddressInfo(
        link_index=msg["index"],
        interface=ipaddress.ip_interface(f"{address}/{msg['prefixlen']}"),
        scope=ADDRESS_SCOPES.get(msg["scope"], str(msg["scope"])),
        broadcast=ipaddress.IPv4Address(broadcast) if broadcast else None,
        flags=msg["flags"] if flags is None else flags,
    )


def _family_number(family: IpFamily | None) -> int:
    if family is None:
        return socket.AF_UNSPEC
    return socket.AF_INET if family == 4 else socket.AF_INET6


class PyrouteNetlink:
    """The real kernel adapter. See the module docstring for the socket life cycle."""

    def __init__(self) -> None:
        self._sockets: dict[str | None, Any] | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._sockets = {}
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every socket kept by a ``with`` block (a no-op outside one)."""
        sockets, self._sockets = self._sockets, None
        for ipr in (sockets or {}).values():
            ipr.close()

    @contextmanager
    def _ipr(self, netns: str | None, operation: str) -> Iterator[Any]:
        path = None if netns is None else netns_path(netns)
        if self._sockets is not None and path in self._sockets:
            yield self._sockets[path]
            return
        ipr = self._open(path, operation)
        if self._sockets is not None:
            self._sockets[path] = ipr
            yield ipr
            return
        try:
            yield ipr
        finally:
            ipr.close()

    @staticmethod
    def _open(path: str | None, operation: str) -> Any:
        lib = _pyroute2()
        if path is None:
            with _translated(operation, "other"):
                return lib.IPRoute()
        _check_netns(path, operation)
        try:
            return lib.IPRoute(netns=path, flags=0)
        except FileNotFoundError as error:
            # NB: the namespace vanished between our check and pyroute2's child opening it.
            raise NamespaceNotFound(
                operation, f"{path} does not exist", errno=error.errno
            ) from error
        except OSError as error:
            if error.errno == errno.EINVAL:
                raise NamespaceNotFound(
                    operation, f"{path} is not a network namespace", errno=error.errno
                ) from error
            raise failure_for_errno(error.errno or 0, operation=operation, kind="other") from error

    # -- links --------------------------------------------------------------------------------

    def _link_message(self, ipr: Any, name: str, operation: str) -> Any:
        with _translated(operation, "link"):
            (msg,) = ipr.link("get", ifname=name)
        return msg

    def _index_name(self, ipr: Any, index: int) -> str | None:
        lib = _pyroute2()
        try:
            (msg,) = ipr.link("get", index=index)
        except lib.NetlinkError:
            return None
        name: str = msg.get("ifname")
        return name

    def _read_link(self, ipr: Any, name: str, operation: str) -> LinkInfo:
        link = _link_from_message(self._link_message(ipr, name, operation))
        names: dict[int, str] = {}
        for index in (link.parent_index, link.master_index):
            if index is not None and (index != link.parent_index or link.parent_netnsid is None):
                found = self._index_name(ipr, index)
                if found is not None:
                    names[index] = found
        return _with_names(link, names)

    def get_link(self, name: str, *, netns: str | None = None) -> LinkInfo:
        operation = f"look up link {name}{_where(netns)}"
        checked_link_name(name, operation=operation)
        with self._ipr(netns, operation) as ipr:
            return self._read_link(ipr, name, operation)

    def list_links(self, *, netns: str | None = None) -> list[LinkInfo]:
        operation = f"list links{_where(netns)}"
        with self._ipr(netns, operation) as ipr:
            links = [_link_from_message(m) for m in _dump(operation, lambda: ipr.link("dump"))]
        names = {link.index: link.name for link in links}
        return [_with_names(link, names) for link in links]

    def set_link_up(self, name: str, *, netns: str | None = None) -> None:
        self._set_link(name, netns, f"set link {name} up{_where(netns)}", state="up")

    def set_link_down(self, name: str, *, netns: str | None = None) -> None:
        self._set_link(name, netns, f"set link {name} down{_where(netns)}", state="down")

    def set_link_alias(self, name: str, alias: str, *, netns: str | None = None) -> None:
        """Set the link's ``IFLA_IFALIAS`` (``""`` clears it).

        NB: the kernel ignores an alias in the create request itself, hence a separate call.
        """
        operation = f"set alias {alias!r} on link {name}{_where(netns)}"
        if len(alias.encode()) > 255:
            raise InvalidNetlinkRequest(operation, "an interface alias is at most 255 bytes")
        self._set_link(name, netns, operation, ifalias=alias)

    def rename_link(self, name: str, new_name: str, *, netns: str | None = None) -> None:
        """Rename a (down) link; ``LinkExists`` if ``new_name`` is taken, ``DeviceBusy`` if up."""
        operation = f"rename link {name} to {new_name}{_where(netns)}"
        checked_link_name(new_name, operation=operation)
        self._set_link(name, netns, operation, ifname=new_name)

    def _set_link(self, name: str, netns: str | None, operation: str, **changes: Any) -> None:
        checked_link_name(name, operation=operation)
        with self._ipr(netns, operation) as ipr:
            index = self._link_message(ipr, name, operation)["index"]
            with _translated(operation, "link"):
                ipr.link("set", index=index, **changes)

    def delete_link(self, name: str, *, netns: str | None = None) -> None:
        """Delete a link; ``LinkNotFound`` if absent, ``NamespaceNotFound`` if the netns is gone."""
        operation = f"delete link {name}{_where(netns)}"
        checked_link_name(name, operation=operation)
        with self._ipr(netns, operation) as ipr:
            index = self._link_message(ipr, name, operation)["index"]
            with _translated(operation, "link"):
                ipr.link("del", index=index)

    def _create_child_link(
        self,
        *,
        kind: str,
        parent: str,
        name: str,
        netns: str | None,
        up: bool,
        **attributes: Any,
    ) -> LinkInfo:
        operation = f"create {kind} link {name} on {parent}{_where(netns)}"
        checked_link_name(name, operation=operation)
        checked_link_name(parent, operation=operation)
        with self._ipr(netns, operation) as ipr:
            try:
                parent_msg = self._link_message(ipr, parent, operation)
            except LinkNotFound as missing:
                raise LinkNotFound(
                    operation, f"parent device {parent} does not exist", errno=missing.errno
                ) from missing
            if kind in ("ipvlan", "macvlan"):
                # NB: the child inherits the parent's MTU explicitly, as the original did, so a
                # parent with a non-default MTU (e.g. a VxLAN at 1450) never gets a larger child.
                attributes.setdefault("mtu", parent_msg.get("mtu"))
            if kind == "vxlan":
                attributes["vxlan_link"] = parent_msg["index"]
            else:
                attributes["link"] = parent_msg["index"]
            if up:
                attributes["state"] = "up"
            with _translated(operation, "link"):
                ipr.link("add", ifname=name, kind=kind, **attributes)
            return self._read_link(ipr, name, operation)

    def create_ipvlan(
        self,
        parent: str,
        *,
        mode: IpvlanMode = "l2",
        name: str | None = None,
        netns: str | None = None,
    ) -> LinkInfo:
        """A down IPVLAN child of ``parent`` with its MTU, called ``name`` or a temporary name."""
        if mode not in IPVLAN_MODES:
            raise InvalidNetlinkRequest(
                f"create ipvlan on {parent}", f"mode {mode!r} is not one of {sorted(IPVLAN_MODES)}"
            )
        return self._create_child_link(
            kind="ipvlan",
            parent=parent,
            name=name or temporary_link_name(),
            netns=netns,
            up=False,
            ipvlan_mode=IPVLAN_MODES[mode],
        )

    def create_macvlan(
        self,
        parent: str,
        *,
        mode: str = "bridge",
        name: str | None = None,
        netns: str | None = None,
    ) -> LinkInfo:
        """A down MACVLAN child of ``parent`` (MTU = parent's); the host-kernel test stand-in."""
        return self._create_child_link(
            kind="macvlan",
            parent=parent,
            name=name or temporary_link_name(),
            netns=netns,
            up=False,
            macvlan_mode=mode,
        )

    def create_vlan(
        self, name: str, *, parent: str, vlan_id: int, up: bool = True, netns: str | None = None
    ) -> LinkInfo:
        """An 802.1Q link ``name`` with ``vlan_id`` on ``parent`` (netwatcher's host interface)."""
        return self._create_child_link(
            kind="vlan",
            parent=parent,
            name=name,
            netns=netns,
            up=up,
            vlan_id=checked_vlan_id(vlan_id),
        )

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
    ) -> LinkInfo:
        """A VxLAN link (VTEP device ``parent``, source ``local``, multicast ``group``).

        ``group`` defaults to ``vxlan_group(vni, local)`` (239.0.0.0+vni or ff02::+vni).
        """
        checked_vni(vni)
        group = vxlan_group(vni, local) if group is None else group
        if group.version != local.version:
            raise InvalidNetlinkRequest(
                f"create vxlan link {name}", f"group {group} and local {local} differ in family"
            )
        suffix = "" if local.version == 4 else "6"
        return self._create_child_link(
            kind="vxlan",
            parent=parent,
            name=name,
            netns=netns,
            up=up,
            vxlan_id=vni,
            vxlan_port=port,
            vxlan_learning=int(learning),
            vxlan_l2miss=int(l2miss),
            vxlan_l3miss=int(l3miss),
            **{f"vxlan_local{suffix}": str(local), f"vxlan_group{suffix}": str(group)},
        )

    def move_link(
        self,
        name: str,
        target_netns: str,
        *,
        new_name: str | None = None,
        netns: str | None = None,
    ) -> None:
        """Move link ``name`` into ``target_netns`` (renaming it on the way if ``new_name``).

        On failure the link is deleted, so a half-done ADD leaves nothing in the source namespace;
        a taken ``new_name`` in the target raises ``LinkExists``.
        """
        target = netns_path(target_netns)
        operation = f"move link {name}{_where(netns)} into netns {target}" + (
            f" as {new_name}" if new_name else ""
        )
        checked_link_name(name, operation=operation)
        changes: dict[str, Any] = {}
        if new_name is not None:
            changes["ifname"] = checked_link_name(new_name, operation=operation)
        lib = _pyroute2()
        with self._ipr(netns, operation) as ipr:
            index = self._link_message(ipr, name, operation)["index"]
            try:
                target_fd = _open_netns_fd(target, operation)
            except NetlinkFailure:
                self._delete_quietly(ipr, index)
                raise
            try:
                ipr.link("set", index=index, net_ns_fd=target_fd, **changes)
            except lib.NetlinkError as error:
                self._delete_quietly(ipr, index)
                raise failure_for_errno(error.code, operation=operation, kind="link") from error
            finally:
                os.close(target_fd)

    @staticmethod
    def _delete_quietly(ipr: Any, index: int) -> None:
        lib = _pyroute2()
        try:
            ipr.link("del", index=index)
        except lib.NetlinkError:
            pass  # NB: best effort; the caller reports the original failure.

    # -- addresses ----------------------------------------------------------------------------

    def add_address(
        self, device: str, address: IPInterface | str, *, netns: str | None = None
    ) -> None:
        """Add ``address`` (with prefix length) to ``device``.

        IPv4 gets the subnet broadcast (none for /31 and /32); IPv6 is added with IFA_F_NODAD so
        it is usable at once instead of staying tentative during duplicate address detection.
        """
        operation = f"add address {address} to {device}{_where(netns)}"
        interface = _interface(address, operation)
        checked_link_name(device, operation=operation)
        request: dict[str, Any] = {
            "address": str(interface.ip),
            "prefixlen": interface.network.prefixlen,
        }
        if interface.version == 4:
            if interface.network.prefixlen < 31:
                request["broadcast"] = str(interface.network.broadcast_address)
        else:
            request["flags"] = _IFA_F_NODAD
        with self._ipr(netns, operation) as ipr:
            index = self._link_message(ipr, device, operation)["index"]
            with _translated(operation, "address"):
                ipr.addr("add", index=index, **request)

    def list_addresses(
        self, device: str, *, family: IpFamily | None = None, netns: str | None = None
    ) -> list[AddressInfo]:
        """The addresses of ``device`` in kernel order (the order ``ip addr`` shows)."""
        operation = f"list addresses of {device}{_where(netns)}"
        checked_link_name(device, operation=operation)
        with self._ipr(netns, operation) as ipr:
            index = self._link_message(ipr, device, operation)["index"]
            messages = _dump(
                operation,
                lambda: ipr.addr("dump", index=index, family=_family_number(family)),
            )
        return [_address_from_message(m) for m in messages if m["index"] == index]

    def vxlan_local_address(self, device: str, *, netns: str | None = None) -> IPAddress | None:
        """First universe-scope address of ``device``: IPv4 preferred, else IPv6, else None."""
        return pick_vxlan_local_address(self.list_addresses(device, netns=netns))

    # -- sysctls ------------------------------------------------------------------------------

    def write_sysctls(self, settings: Mapping[str, str], *, netns: str | None = None) -> None:
        """Write sysctls given as ``/``-separated paths under /proc/sys, in one child process.

        Keys use ``/`` separators ("net/ipv6/conf/all/disable_ipv6"): dotted names are refused
        because an interface component such as ``eth0.100`` makes them ambiguous (§13.29).
        """
        items = [(sysctl_path(*_sysctl_components(key)), str(v)) for key, v in settings.items()]
        self._write_proc_sys(items, netns, f"write sysctls {sorted(settings)}{_where(netns)}")

    def set_interface_sysctls(
        self,
        device: str,
        settings: Mapping[str, str],
        *,
        family: IpFamily = 6,
        netns: str | None = None,
    ) -> None:
        """Write ``net.ipv{family}.conf.<device>.<key>`` for each key, in one child process.

        ``ipv6_interface_sysctls(enabled)`` gives DANM's per-interface IPv6 settings.
        """
        items = [(interface_sysctl_path(family, device, k), str(v)) for k, v in settings.items()]
        operation = f"write ipv{family} sysctls {sorted(settings)} of {device}{_where(netns)}"
        self._write_proc_sys(items, netns, operation)

    def _write_proc_sys(
        self, items: list[tuple[str, str]], netns: str | None, operation: str
    ) -> None:
        if netns is None:
            try:
                _write_sysctls_here(items)
            except OSError as error:
                raise SysctlFailure(operation, str(error), errno=error.errno) from error
            return
        # NB: a stdlib fork + setns child, not pyroute2's: a delegated ADD needs nothing else
        # from the kernel, so it never pays pyroute2's import (see common.io.netns_exec).
        fd = _open_netns_fd(netns_path(netns), operation)
        try:
            write_files_in_netns(fd, items, timeout_s=_CHILD_TIMEOUT_SECONDS)
        except OSError as error:
            raise SysctlFailure(operation, str(error), errno=error.errno) from error
        except NetnsHelperError as error:
            raise SysctlFailure(operation, f"helper process failed: {error}") from error
        finally:
            os.close(fd)

    # -- routes and rules ---------------------------------------------------------------------

    def add_routes(
        self,
        routes: Sequence[RouteSpec],
        *,
        device: str,
        table: int = 0,
        netns: str | None = None,
    ) -> None:
        """Add each route via its gateway *through* ``device`` into ``table`` (0 = main), in order.

        Stops at the first failure (``RouteExists``, ``GatewayUnreachable`` ...); the routes added
        before it stay (they go away with the device).
        """
        table_id = checked_table(table)
        operation = f"add routes through {device} to table {table_id}{_where(netns)}"
        checked_link_name(device, operation=operation)
        if not routes:
            return
        with self._ipr(netns, operation) as ipr:
            index = self._link_message(ipr, device, operation)["index"]
            for route in routes:
                step = (
                    f"add route {route.destination} via {route.gateway} dev {device} "
                    f"table {table_id}{_where(netns)}"
                )
                if route.gateway.version != route.destination.version:
                    raise InvalidNetlinkRequest(step, "gateway and destination differ in family")
                with _translated(step, "route"):
                    ipr.route(
                        "add",
                        family=_family_number(route.family),
                        dst=str(route.destination.network_address),
                        dst_len=route.destination.prefixlen,
                        gateway=str(route.gateway),
                        oif=index,
                        table=table_id,
                    )

    def list_routes(
        self, *, table: int = 0, family: IpFamily | None = None, netns: str | None = None
    ) -> list[RouteInfo]:
        """Unicast routes of ``table`` (0 = main), kernel order."""
        table_id = checked_table(table)
        operation = f"list routes of table {table_id}{_where(netns)}"
        with self._ipr(netns, operation) as ipr:
            messages = _dump(
                operation,
                lambda: ipr.route("dump", family=_family_number(family), table=table_id),
            )
        routes = []
        for msg in messages:
            if msg.get("table") != table_id or msg.get("type") != 1:  # RTN_UNICAST
                continue
            default = "0.0.0.0" if msg["family"] == socket.AF_INET else "::"
            routes.append(
                RouteInfo(
                    destination=ipaddress.ip_network(
                        f"{msg.get('dst') or default}/{msg['dst_len']}"
                    ),
                    gateway=_ip(msg.get("gateway")),
                    device_index=msg.get("oif"),
                    table=table_id,
                )
            )
        return routes

    def add_rule(
        self,
        source: IPNetwork | IPInterface,
        *,
        table: int,
        priority: int | None = None,
        netns: str | None = None,
    ) -> None:
        """Policy rule ``from <source> lookup <table>`` (IPv4 or IPv6 by ``source``).

        ``priority`` defaults to pyroute2's 32000, i.e. before the main table's 32766.
        """
        table_id = checked_table(table)
        operation = f"add rule from {source} lookup {table_id}{_where(netns)}"
        if table_id == MAIN_TABLE:
            raise InvalidNetlinkRequest(operation, "a policy rule needs a table other than main")
        if isinstance(source, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
            address, prefixlen = source.ip, source.network.prefixlen
        else:
            address, prefixlen = source.network_address, source.prefixlen
        request: dict[str, Any] = {
            "family": _family_number(4 if address.version == 4 else 6),
            "src": str(address),
            "src_len": prefixlen,
            "table": table_id,
        }
        if priority is not None:
            request["priority"] = priority
        with self._ipr(netns, operation) as ipr, _translated(operation, "rule"):
            ipr.rule("add", **request)

    def list_rules(
        self, *, family: IpFamily | None = None, netns: str | None = None
    ) -> list[RuleInfo]:
        """IPv4/IPv6 policy rules in kernel (priority) order."""
        operation = f"list rules{_where(netns)}"
        with self._ipr(netns, operation) as ipr:
            messages = _dump(operation, lambda: ipr.rule("dump", family=_family_number(family)))
        rules = []
        for msg in messages:
            if msg["family"] not in (socket.AF_INET, socket.AF_INET6):
                continue
            version: IpFamily = 4 if msg["family"] == socket.AF_INET else 6
            src = msg.get("src")
            source = None if src is None else ipaddress.ip_interface(f"{src}/{msg['src_len']}")
            rules.append(
                RuleInfo(
                    source=source,
                    table=msg.get("FRA_TABLE") or msg.get("table"),
                    priority=msg.get("priority"),
                    family=version,
                )
            )
        return rules

    # -- neighbours ---------------------------------------------------------------------------

    def announce_ipv4(
        self, device: str, address: ipaddress.IPv4Address, *, netns: str | None = None
    ) -> None:
        """Send gratuitous ARP (an RFC 5227 announcement, then a reply) for ``address``.

        The packet socket is created inside the namespace by a forked child and handed back, so
        this process never enters it. Best effort by nature: callers log a failure, not abort.
        """
        operation = f"announce {address} on {device}{_where(netns)}"
        link = self.get_link(device, netns=netns)
        if not link.mac:
            raise InvalidNetlinkRequest(operation, f"{device} has no hardware address")
        frames = gratuitous_arp_frames(link.mac, address)
        lib = _pyroute2()
        path = None if netns is None else netns_path(netns)
        with _translated(operation, "other"):
            if path is None:
                packet_socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            else:
                _check_netns(path, operation)
                packet_socket = lib.netns.create_socket(
                    netns=path, family=socket.AF_PACKET, socket_type=socket.SOCK_RAW, flags=0
                )
            with packet_socket:
                for frame in frames:
                    packet_socket.sendto(frame, (device, _ETH_P_ARP))


def _interface(address: IPInterface | str, operation: str) -> IPInterface:
    if isinstance(address, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return address
    if "/" not in str(address):
        raise InvalidNetlinkRequest(operation, "the address needs a prefix length (a.b.c.d/nn)")
    try:
        return ipaddress.ip_interface(address)
    except ValueError as error:
        raise InvalidNetlinkRequest(operation, str(error)) from error


def _sysctl_components(key: str) -> tuple[str, ...]:
    if "/" not in key:
        raise InvalidNetlinkRequest(
            f"write sysctl {key}",
            "give the sysctl as a '/'-separated path (net/ipv6/conf/all/disable_ipv6): dotted "
            "names are ambiguous for interfaces whose names contain '.'",
        )
    return tuple(key.strip("/").split("/"))


def _write_sysctls_here(items: list[tuple[str, str]]) -> None:
    for path, value in items:
        try:
            with open(path, "w") as handle:
                handle.write(value)
        except OSError as error:
            raise OSError(error.errno, f"{path}: {error.strerror}") from error
