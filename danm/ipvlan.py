"""The built-in IPVLAN backend, and the interface set-up every DANM interface gets afterwards.

Two things the ADD workers do with the kernel, over the ``common.io.netlink.Netlink`` protocol
(so unit tests run them against a recording fake and the guest tier against a real kernel):

* :func:`create_ipvlan_interface` (danm-behaviour.md §5.2): an L2-mode IPVLAN child of the
  parent host device is created in the host namespace under a temporary name derived from the
  DanmEp UUID, moved into the Pod namespace and renamed there in one step (the adapter deletes it
  if the move fails, so nothing is left on the host), given its addresses (IPv6 with NODAD, so
  the address is usable at once), set up, and announced with gratuitous ARP (best effort). The
  seed named the result interface after the UUID and reported a random MAC (§13.5); the caller
  reports the link's real MAC read back here.
* :func:`configure_interface` (§5.3, §3.6 step 6, applied to *every* backend as the later
  original does): per-interface IPv6 sysctls, the network's ``routes``/``routes6`` through the
  interface in the main table, and policy routing (``from <address> lookup <rt_tables>`` plus the
  connection's ``proutes``/``proutes6`` in that table). Routes of a family are only installed
  when the interface has an address of that family (a route via a gateway needs a connected
  subnet), and bad entries are errors naming the field, not silently skipped (§13.30).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping

from common.io.netlink import (
    InvalidNetlinkRequest,
    IpFamily,
    LinkExists,
    LinkInfo,
    LinkNotFound,
    Netlink,
    NetlinkFailure,
    ipv6_interface_sysctls,
    route_specs,
    temporary_link_name,
)
from common.model import NetworkSpec

log = logging.getLogger("danm")


def ensure_parent(netlink: Netlink, *, parent: str, spec: NetworkSpec) -> None:
    """Make sure the host parent ``parent`` exists; create a missing VLAN/VxLAN one (§9).

    netwatcher normally creates ``<NetworkID>.<vlan>`` and ``vx_<NetworkID>`` on every node when
    the network appears; a Pod scheduled before it got there (or after someone deleted the link)
    would otherwise fail. A plain ``host_device`` is never created. Two ADDs racing to create the
    same link are fine: the loser's ``LinkExists`` means the link is there.
    """
    options = spec.options
    if not (options.vlan or options.vxlan) or not options.host_device:
        return
    try:
        netlink.get_link(parent)
        return
    except LinkNotFound:
        pass
    log.info("host interface %s is missing; creating it on %s", parent, options.host_device)
    try:
        if options.vxlan:
            local = netlink.vxlan_local_address(options.host_device)
            if local is None:
                raise InvalidNetlinkRequest(
                    f"create VxLAN interface {parent}",
                    f"host device {options.host_device} has no IP address to use as VTEP source",
                )
            netlink.create_vxlan(parent, parent=options.host_device, vni=options.vxlan, local=local)
        else:
            netlink.create_vlan(parent, parent=options.host_device, vlan_id=options.vlan)
    except LinkExists:
        pass


def create_ipvlan_interface(
    netlink: Netlink,
    *,
    parent: str,
    netns: str,
    ifname: str,
    endpoint_id: str,
    ip4: str = "",
    ip6: str = "",
) -> LinkInfo:
    """Make ``ifname`` in ``netns`` as an L2 IPVLAN on ``parent``; return the link as created.

    Raises the adapter's ``NetlinkFailure`` subclasses (``LinkNotFound`` for a missing parent,
    ``NamespaceNotFound``, ``NotSupported`` on a kernel without ipvlan ...). A link left in the
    Pod namespace by a failure after the move is the caller's to delete (it knows ``ifname``).
    """
    temporary = temporary_link_name(endpoint_id)
    try:
        netlink.create_ipvlan(parent, mode="l2", name=temporary)
    except LinkExists:
        # NB: the name derives from the UUID: a crashed earlier attempt of this very endpoint.
        netlink.delete_link(temporary)
        netlink.create_ipvlan(parent, mode="l2", name=temporary)
    netlink.move_link(temporary, netns, new_name=ifname)
    for address in (ip4, ip6):
        if address:
            netlink.add_address(ifname, address, netns=netns)
    netlink.set_link_up(ifname, netns=netns)
    if ip4:
        try:
            netlink.announce_ipv4(ifname, ipaddress.IPv4Interface(ip4).ip, netns=netns)
        except NetlinkFailure as error:
            log.warning("gratuitous ARP for %s on %s failed: %s", ip4, ifname, error)
    return netlink.get_link(ifname, netns=netns)


def configure_interface(
    netlink: Netlink,
    *,
    netns: str,
    ifname: str,
    ip4: str,
    ip6: str,
    routes: Mapping[str, str],
    routes6: Mapping[str, str],
    rt_tables: int,
    proutes: Mapping[str, str],
    proutes6: Mapping[str, str],
) -> None:
    """IPv6 sysctls, routes and policy routes of one Pod interface (see the module docstring)."""
    netlink.set_interface_sysctls(ifname, ipv6_interface_sysctls(bool(ip6)), netns=netns)
    if ip4:
        _routes_of_family(netlink, netns, ifname, ip4, 4, routes, rt_tables, proutes)
    if ip6:
        _routes_of_family(netlink, netns, ifname, ip6, 6, routes6, rt_tables, proutes6)


def _routes_of_family(
    netlink: Netlink,
    netns: str,
    ifname: str,
    address: str,
    family: IpFamily,
    main_routes: Mapping[str, str],
    rt_tables: int,
    policy_routes: Mapping[str, str],
) -> None:
    suffix = "" if family == 4 else "6"
    specs = route_specs(main_routes, family=family, field=f"routes{suffix}")
    if specs:
        netlink.add_routes(specs, device=ifname, netns=netns)
    if rt_tables and policy_routes:
        policy = route_specs(policy_routes, family=family, field=f"proutes{suffix}")
        netlink.add_rule(ipaddress.ip_interface(address), table=rt_tables, netns=netns)
        netlink.add_routes(policy, device=ifname, table=rt_tables, netns=netns)


def delete_interface(netlink: Netlink, *, netns: str, ifname: str) -> None:
    """Delete ``ifname`` in ``netns`` (the caller decides whether "already gone" is fine)."""
    netlink.delete_link(ifname, netns=netns)
