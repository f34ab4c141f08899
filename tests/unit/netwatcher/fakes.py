"""An in-memory node for netwatcher's unit tests: links, addresses and injectable failures.

It follows the kernel rules netwatcher relies on (checked against the real kernel in
tests/netns/netwatcher): a create of a taken name is ``LinkExists``, a missing parent is
``LinkNotFound``, one VxLAN device per VNI, one 802.1Q link per (parent, id), the alias given on
create is ignored, and deleting a parent takes its VLAN children with it.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress

from common.io.netlink_model import (
    VXLAN_DEFAULT_PORT,
    IPAddress,
    LinkExists,
    LinkInfo,
    LinkNotFound,
    NetlinkFailure,
    VxlanParams,
    vxlan_group,
)
from netwatcher.reconcile import HostNetlink


class FakeHostNetlink:
    def __init__(self) -> None:
        self.links: dict[str, LinkInfo] = {}
        self.addresses: dict[str, IPAddress | None] = {}
        self.failures: dict[tuple[str, str], NetlinkFailure] = {}
        """``(operation, link name) -> error`` raised once by that call."""
        self.calls: list[tuple[str, str]] = []
        self._next_index = 100

    # -- test set-up
    def add_device(self, name: str, *, up: bool = True, address: str | None = "10.0.0.1") -> None:
        self._next_index += 1
        self.links[name] = LinkInfo(
            name=name,
            index=self._next_index,
            kind="veth",
            mtu=1500,
            up=up,
            oper_state="UP" if up else "DOWN",
            mac="02:00:00:00:00:01",
        )
        self.addresses[name] = None if address is None else ipaddress.ip_address(address)

    def fail(self, operation: str, name: str, error: NetlinkFailure | None = None) -> None:
        self.failures[(operation, name)] = error or NetlinkFailure(
            f"{operation} {name}", "injected failure", errno=errno.EIO
        )

    def _call(self, operation: str, name: str) -> None:
        self.calls.append((operation, name))
        failure = self.failures.pop((operation, name), None)
        if failure is not None:
            raise failure

    def _get(self, name: str, operation: str) -> LinkInfo:
        try:
            return self.links[name]
        except KeyError:
            raise LinkNotFound(operation, "No such device", errno=errno.ENODEV) from None

    def _add(self, link: LinkInfo) -> LinkInfo:
        if link.name in self.links:
            raise LinkExists(f"create {link.name}", "File exists", errno=errno.EEXIST)
        self._next_index += 1
        link = dataclasses.replace(link, index=self._next_index)
        self.links[link.name] = link
        return link

    # -- HostNetlink
    def list_links(self, *, netns: str | None = None) -> list[LinkInfo]:
        self._call("list", "")
        return list(self.links.values())

    def vxlan_local_address(self, device: str, *, netns: str | None = None) -> IPAddress | None:
        self._call("addresses", device)
        self._get(device, "list addresses")
        return self.addresses.get(device)

    def create_vlan(
        self, name: str, *, parent: str, vlan_id: int, up: bool = True, netns: str | None = None
    ) -> LinkInfo:
        self._call("create", name)
        lower = self._get(parent, f"create vlan {name}")
        for link in self.links.values():
            if link.kind == "vlan" and link.parent_name == parent and link.vlan_id == vlan_id:
                raise LinkExists(f"create {name}", "vlan id in use", errno=errno.EEXIST)
        return self._add(
            LinkInfo(
                name=name,
                index=0,
                kind="vlan",
                mtu=lower.mtu,
                up=up,
                oper_state="UNKNOWN",
                mac=None,
                parent_index=lower.index,
                parent_name=parent,
                vlan_id=vlan_id,
            )
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
        self._call("create", name)
        lower = self._get(parent, f"create vxlan {name}")
        for link in self.links.values():
            if link.vxlan is not None and link.vxlan.vni == vni:
                raise LinkExists(f"create {name}", "VNI in use", errno=errno.EEXIST)
        params = VxlanParams(
            vni=vni,
            parent_index=lower.index,
            local=local,
            group=group or vxlan_group(vni, local),
            port=port,
            learning=learning,
            l2miss=l2miss,
            l3miss=l3miss,
        )
        return self._add(
            LinkInfo(
                name=name,
                index=0,
                kind="vxlan",
                mtu=lower.mtu - 50,
                up=up,
                oper_state="UNKNOWN",
                mac=None,
                parent_index=lower.index,
                parent_name=parent,
                vxlan=params,
            )
        )

    def set_link_alias(self, name: str, alias: str, *, netns: str | None = None) -> None:
        self._call("alias", name)
        link = self._get(name, "set alias")
        self.links[name] = dataclasses.replace(link, alias=alias or None)

    def set_link_up(self, name: str, *, netns: str | None = None) -> None:
        self._call("up", name)
        link = self._get(name, "set up")
        self.links[name] = dataclasses.replace(link, up=True)

    def set_link_down(self, name: str) -> None:
        self.links[name] = dataclasses.replace(self.links[name], up=False)

    def delete_link(self, name: str, *, netns: str | None = None) -> None:
        self._call("delete", name)
        link = self._get(name, "delete")
        del self.links[name]
        for child in list(self.links.values()):
            if child.kind == "vlan" and child.parent_index == link.index:
                del self.links[child.name]


_check: HostNetlink = FakeHostNetlink()
