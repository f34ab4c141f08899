"""One reconciliation pass: read the node's links, plan the difference, apply it step by step.

Why it is separate from the controller: a pass needs only a netlink adapter and the desired
state, so the host-kernel tests and the benchmark drive it directly, and the controller stays a
thin loop around it. Steps are applied independently: a failing step (a busy VNI, a parent that
vanished) is reported against the networks that want that link and the pass goes on, so one bad
network never holds up the others. Only a failure to list the links aborts the pass.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from common.io.netlink_model import (
    VXLAN_DEFAULT_PORT,
    IPAddress,
    LinkInfo,
    LinkNotFound,
    NetlinkFailure,
)
from netwatcher.desired import DesiredState, NetworkProblem
from netwatcher.plan import (
    OWNER_ALIAS,
    CreateLink,
    DeleteLink,
    LinkProblem,
    SetLinkUp,
    Step,
    plan_changes,
)

REASON_NETLINK_FAILURE = "HostInterfaceFailed"

log = logging.getLogger(__name__)


class HostNetlink(Protocol):
    """What netwatcher needs from the kernel; ``PyrouteNetlink`` implements it."""

    def list_links(self, *, netns: str | None = None) -> list[LinkInfo]: ...

    def vxlan_local_address(self, device: str, *, netns: str | None = None) -> IPAddress | None: ...

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

    def set_link_alias(self, name: str, alias: str, *, netns: str | None = None) -> None: ...

    def set_link_up(self, name: str, *, netns: str | None = None) -> None: ...

    def delete_link(self, name: str, *, netns: str | None = None) -> None: ...


@dataclass
class Outcome:
    """What a pass did and what it could not do."""

    applied: list[str] = field(default_factory=list)
    failures: list[LinkProblem] = field(default_factory=list)
    problems: list[NetworkProblem] = field(default_factory=list)
    """Every problem of the pass (desired state, plan, failed steps), per network."""
    node_problems: int = 0
    """Plan problems plus failed steps: trouble on the node that a later pass may not meet."""
    foreign_in_use: tuple[str, ...] = ()

    @property
    def should_retry(self) -> bool:
        """Whether a sooner pass may succeed where this one did not (node-side trouble)."""
        return self.node_problems > 0


def _local_addresses(
    netlink: HostNetlink, desired: DesiredState, observed: Sequence[LinkInfo], netns: str | None
) -> dict[str, IPAddress | None]:
    present = {link.name for link in observed}
    parents = {
        link.parent
        for link in desired.links.values()
        if link.kind == "vxlan" and link.parent in present
    }
    found: dict[str, IPAddress | None] = {}
    for parent in sorted(parents):
        try:
            found[parent] = netlink.vxlan_local_address(parent, netns=netns)
        except LinkNotFound:
            found[parent] = None  # NB: vanished since the listing; the plan reports it next pass.
        except NetlinkFailure as failure:
            log.warning(
                "cannot read the addresses of a VxLAN parent",
                extra={"interface": parent, "error": str(failure)},
            )
            found[parent] = None
    return found


def _apply(netlink: HostNetlink, step: Step, netns: str | None) -> None:
    if isinstance(step, DeleteLink):
        netlink.delete_link(step.name, netns=netns)
        return
    if isinstance(step, SetLinkUp):
        netlink.set_link_up(step.name, netns=netns)
        return
    link = step.link
    if link.kind == "vlan":
        netlink.create_vlan(
            link.name, parent=link.parent, vlan_id=link.link_id, up=False, netns=netns
        )
    else:
        if step.local is None:  # NB: plan_changes never emits this; guard the type anyway.
            raise NetlinkFailure(f"create {link.name}", f"{link.parent} has no source address")
        netlink.create_vxlan(
            link.name,
            parent=link.parent,
            vni=link.link_id,
            local=step.local,
            up=False,
            netns=netns,
        )
    # NB: the kernel ignores an alias in the create request, so the mark is a second call; the
    # link stays down until it is marked, and an unmarkable link is removed again.
    try:
        netlink.set_link_alias(link.name, OWNER_ALIAS, netns=netns)
    except NetlinkFailure:
        try:
            netlink.delete_link(link.name, netns=netns)
        except NetlinkFailure:
            pass  # NB: the original failure is what gets reported.
        raise
    netlink.set_link_up(link.name, netns=netns)


def _hint(failure: NetlinkFailure) -> str:
    """What the operator can do about a failure whose cause is not obvious from errno alone."""
    if failure.errno == errno.ENOBUFS:
        # NB: every VxLAN device on port 4789 joins its multicast group through one shared kernel
        # socket, and a socket may join at most net.ipv4.igmp_max_memberships groups (20 by
        # default), so the 21st VxLAN host interface cannot be brought up.
        return (
            " (the node's multicast membership limit is probably reached: each VxLAN host "
            "interface joins its group on one shared socket; raise the sysctl "
            "net.ipv4.igmp_max_memberships, 20 by default, above the number of VxLAN networks)"
        )
    return ""


def _describe(step: Step) -> tuple[str, str]:
    if isinstance(step, DeleteLink):
        return "delete", step.name
    if isinstance(step, SetLinkUp):
        return "set up", step.name
    return "create", step.link.name


def reconcile(netlink: HostNetlink, desired: DesiredState, *, netns: str | None = None) -> Outcome:
    """Make the links of ``netns`` (``None``: this process's namespace) match ``desired``.

    Raises ``NetlinkFailure`` only when the links cannot even be listed.
    """
    observed = netlink.list_links(netns=netns)
    plan = plan_changes(desired, observed, _local_addresses(netlink, desired, observed, netns))
    outcome = Outcome(problems=list(desired.problems), foreign_in_use=plan.foreign_in_use)
    failed_deletes: set[str] = set()
    for step in plan.steps:
        action, name = _describe(step)
        if isinstance(step, CreateLink) and name in failed_deletes:
            continue  # NB: the outdated link is still there; its delete failure is reported.
        try:
            _apply(netlink, step, netns)
        except NetlinkFailure as failure:
            if isinstance(step, DeleteLink) and isinstance(failure, LinkNotFound):
                continue  # NB: already gone, which is all a delete wants.
            if isinstance(step, DeleteLink):
                failed_deletes.add(name)
            message = f"cannot {action} {name}: {failure}{_hint(failure)}"
            outcome.failures.append(LinkProblem(name, REASON_NETLINK_FAILURE, message))
            continue
        outcome.applied.append(f"{action} {name}")
        log.info(
            f"{action} host interface",
            extra={"interface": name, "action": action, "why": step.why},
        )
    outcome.node_problems = len(plan.problems) + len(outcome.failures)
    for problem in (*plan.problems, *outcome.failures):
        users = desired.users.get(problem.link_name, ())
        if not users:
            # NB: e.g. a link no network wants could not be deleted; no Event can carry that.
            log.warning(problem.message, extra={"interface": problem.link_name})
        for network in users:
            outcome.problems.append(NetworkProblem(network, problem.reason, problem.message))
    return outcome
