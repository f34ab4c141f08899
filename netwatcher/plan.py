"""The steps that turn the node's links into the desired ones: the diff half of reconciliation.

Why a pure module: deciding what to delete is where a controller does harm, so the rules live in
one function over plain data (desired links, the links the kernel listed, the VxLAN source
addresses) and are table-tested without root. ``netwatcher.reconcile`` executes the steps.

Ownership: every link netwatcher creates carries the alias ``OWNER_ALIAS`` (``IFLA_IFALIAS``,
what ``ip link set X alias ...`` sets). Only links with that mark are ever deleted or recreated.
A link without it that already matches what a network wants is used as it is (brought up if it
is down) and never deleted; one that differs is reported, never touched. After a restart the
marked links are simply found again: adoption needs no state beyond the kernel's own.

Order of the steps: deletions first (an unneeded or outdated link may hold the VNI or VLAN id a
new link needs), then parents up, then creations, then links up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from common.io.netlink_model import VXLAN_DEFAULT_PORT, IPAddress, LinkInfo, vxlan_group
from netwatcher.desired import DesiredState, HostLink

OWNER_ALIAS = "danm-netwatcher"

REASON_HOST_DEVICE_MISSING = "HostDeviceMissing"
REASON_HOST_DEVICE_WITHOUT_ADDRESS = "HostDeviceWithoutAddress"
REASON_FOREIGN_INTERFACE = "ForeignHostInterface"


@dataclass(frozen=True)
class DeleteLink:
    name: str
    why: str


@dataclass(frozen=True)
class CreateLink:
    """Create ``link`` (down), mark it as ours, bring it up; ``local`` is the VxLAN source."""

    link: HostLink
    local: IPAddress | None
    why: str


@dataclass(frozen=True)
class SetLinkUp:
    name: str
    why: str


Step: TypeAlias = DeleteLink | CreateLink | SetLinkUp


@dataclass(frozen=True)
class LinkProblem:
    """Why a desired link cannot be made right now; reported on every network that wants it."""

    link_name: str
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    problems: tuple[LinkProblem, ...]
    foreign_in_use: tuple[str, ...]
    """Desired links that exist without our mark and are used as they are."""


def is_owned(link: LinkInfo) -> bool:
    return link.alias == OWNER_ALIAS


def mismatch(wanted: HostLink, link: LinkInfo, local: IPAddress | None) -> str:
    """How the existing ``link`` differs from ``wanted`` ("" when it is what is wanted).

    ``local`` is the VxLAN source address the parent has now; ``None`` (no address, or the
    parent is missing) leaves the source and the group out of the comparison.
    """
    if link.kind != wanted.kind:
        return f"it is a {link.kind or 'plain'} link, not {wanted.kind}"
    if link.parent_name != wanted.parent:
        return f"its parent is {link.parent_name or 'unknown'}, not {wanted.parent}"
    if wanted.kind == "vlan":
        if link.vlan_id != wanted.link_id:
            return f"its VLAN id is {link.vlan_id}, not {wanted.link_id}"
        return ""
    vxlan = link.vxlan
    if vxlan is None:
        return "the kernel reported no VxLAN attributes for it"
    if vxlan.vni != wanted.link_id:
        return f"its VNI is {vxlan.vni}, not {wanted.link_id}"
    if vxlan.port != VXLAN_DEFAULT_PORT:
        return f"its UDP port is {vxlan.port}, not {VXLAN_DEFAULT_PORT}"
    if not (vxlan.learning and vxlan.l2miss and vxlan.l3miss):
        return "learning, l2miss and l3miss are not all on"
    if local is not None:
        if vxlan.local != local:
            return f"its source address is {vxlan.local}, but {wanted.parent} has {local}"
        group = vxlan_group(wanted.link_id, local)
        if vxlan.group != group:
            return f"its group is {vxlan.group}, not {group}"
    return ""


def plan_changes(
    desired: DesiredState,
    observed: Sequence[LinkInfo],
    local_addresses: Mapping[str, IPAddress | None],
) -> Plan:
    """The steps from ``observed`` to ``desired``, and what stands in the way.

    ``local_addresses`` maps a VxLAN parent to its source address (absent or ``None``: none).
    """
    by_name = {link.name: link for link in observed}
    deletes: list[Step] = []
    parents_up: list[Step] = []
    creates: list[Step] = []
    links_up: list[Step] = []
    problems: list[LinkProblem] = []
    foreign: list[str] = []
    parents_seen: set[str] = set()

    for link in observed:
        if is_owned(link) and link.name not in desired.links:
            deletes.append(DeleteLink(link.name, "no network wants it any more"))

    for name, wanted in sorted(desired.links.items()):
        parent = by_name.get(wanted.parent)
        if parent is None:
            problems.append(
                LinkProblem(
                    name,
                    REASON_HOST_DEVICE_MISSING,
                    f"cannot set up {name} ({wanted.describe()}): host device {wanted.parent} "
                    "is not present on this node",
                )
            )
            continue
        local = local_addresses.get(wanted.parent) if wanted.kind == "vxlan" else None
        if wanted.kind == "vxlan" and local is None:
            current = by_name.get(name)
            if current is None or mismatch(wanted, current, None):
                problems.append(
                    LinkProblem(
                        name,
                        REASON_HOST_DEVICE_WITHOUT_ADDRESS,
                        f"cannot set up {name} ({wanted.describe()}): host device "
                        f"{wanted.parent} has no global IPv4 or IPv6 address for the VxLAN "
                        "source",
                    )
                )
                continue
        if not parent.up and wanted.parent not in parents_seen:
            parents_up.append(SetLinkUp(wanted.parent, f"parent of {name}"))
        parents_seen.add(wanted.parent)

        current = by_name.get(name)
        if current is None:
            creates.append(CreateLink(wanted, local, "missing"))
            continue
        difference = mismatch(wanted, current, local)
        if difference and is_owned(current):
            deletes.append(DeleteLink(name, f"to recreate it: {difference}"))
            creates.append(CreateLink(wanted, local, f"recreated: {difference}"))
            continue
        if difference:
            problems.append(
                LinkProblem(
                    name,
                    REASON_FOREIGN_INTERFACE,
                    f"cannot set up {name} ({wanted.describe()}): an interface of that name "
                    f"exists, was not created by netwatcher and differs ({difference}); "
                    "it is left alone",
                )
            )
            continue
        if not is_owned(current):
            foreign.append(name)
        if not current.up:
            links_up.append(SetLinkUp(name, "it is down"))

    return Plan(
        steps=(*deletes, *parents_up, *creates, *links_up),
        problems=tuple(problems),
        foreign_in_use=tuple(foreign),
    )
