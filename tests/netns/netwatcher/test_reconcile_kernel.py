"""Reconcile passes straight against the host kernel (no API): what only a real kernel shows."""

from __future__ import annotations

import errno

import pytest

from common.io.netlink import PyrouteNetlink
from netwatcher.desired import NetworkObject, desired_state
from netwatcher.plan import OWNER_ALIAS
from netwatcher.reconcile import REASON_NETLINK_FAILURE, Outcome, reconcile
from tests.netns.netwatcher.harness import Node, info, is_up, node_with_parents
from tests.netns_helpers import requires_netns

pytestmark = [pytest.mark.netns, requires_netns]


def net(name: str, **options: object) -> NetworkObject:
    return NetworkObject(
        "ClusterNetwork",
        {"metadata": {"name": name}, "spec": {"NetworkID": name, "Options": options}},
    )


def run(node: Node, *networks: NetworkObject) -> Outcome:
    with PyrouteNetlink() as netlink:
        return reconcile(netlink, desired_state(networks), netns=node.path)


def test_the_ownership_mark_is_written_and_read_back_by_the_adapter():
    with node_with_parents({"parent0": "10.77.0.1/24"}) as node:
        assert run(node, net("a", host_device="parent0", vxlan=5)).applied == ["create vx_a"]
        (link,) = [x for x in PyrouteNetlink().list_links(netns=node.path) if x.name == "vx_a"]
        assert link.alias == OWNER_ALIAS
        assert node.links()["vx_a"]["ifalias"] == OWNER_ALIAS
        assert PyrouteNetlink().get_link("parent0", netns=node.path).alias is None


def test_ipv6_only_parent_gets_an_ipv6_vxlan_and_a_second_pass_changes_nothing():
    with node_with_parents({"parent0": "fd77::1/64"}) as node:
        network = net("six", host_device="parent0", vxlan=300)
        assert run(node, network).applied == ["create vx_six"]
        link = node.links()["vx_six"]
        assert is_up(link)
        assert (info(link)["local6"], info(link)["group6"]) == ("fd77::1", "ff02::12c")
        assert run(node, network).applied == []


def test_the_multicast_membership_limit_is_reported_with_what_to_do():
    with node_with_parents({"parent0": "10.77.0.1/24"}, igmp_max_memberships=1) as node:
        outcome = run(
            node, net("a", host_device="parent0", vxlan=1), net("b", host_device="parent0", vxlan=2)
        )
        assert outcome.applied == ["create vx_a"]
        (problem,) = outcome.problems
        assert (problem.network.name, problem.reason) == ("b", REASON_NETLINK_FAILURE)
        assert "net.ipv4.igmp_max_memberships" in problem.message
        assert errno.errorcode[errno.ENOBUFS] in problem.message
        assert outcome.should_retry
