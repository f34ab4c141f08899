"""Diff and apply: the steps ``plan_changes`` picks and what ``reconcile`` does with them."""

from __future__ import annotations

import dataclasses
import errno
import ipaddress

import pytest

from common.io.netlink import PyrouteNetlink
from common.io.netlink_model import DeviceBusy, LinkInfo, LinkNotFound, NetlinkFailure, VxlanParams
from netwatcher.desired import DesiredState, HostLink, NetworkObject, desired_state
from netwatcher.plan import (
    OWNER_ALIAS,
    REASON_FOREIGN_INTERFACE,
    REASON_HOST_DEVICE_MISSING,
    REASON_HOST_DEVICE_WITHOUT_ADDRESS,
    CreateLink,
    DeleteLink,
    SetLinkUp,
    mismatch,
    plan_changes,
)
from netwatcher.reconcile import REASON_NETLINK_FAILURE, HostNetlink, reconcile
from tests.unit.netwatcher.fakes import FakeHostNetlink
from tests.unit.netwatcher.test_desired import net

_real: HostNetlink = PyrouteNetlink()
LOCAL = ipaddress.ip_address("10.0.0.1")


def state(*networks: NetworkObject) -> DesiredState:
    return desired_state(networks)


@pytest.fixture
def node() -> FakeHostNetlink:
    fake = FakeHostNetlink()
    fake.add_device("eth0")
    fake.add_device("eth1", address="10.1.0.1")
    return fake


def owned(fake: FakeHostNetlink) -> dict[str, LinkInfo]:
    return {n: link for n, link in fake.links.items() if link.alias == OWNER_ALIAS}


# -- mismatch -----------------------------------------------------------------------------------

VX = HostLink("vx_a", "vxlan", "eth0", 5)
GOOD_VXLAN = LinkInfo(
    name="vx_a", index=9, kind="vxlan", mtu=1450, up=True, oper_state="UNKNOWN", mac=None,
    parent_index=2, parent_name="eth0",
    vxlan=VxlanParams(vni=5, parent_index=2, local=LOCAL, group=ipaddress.ip_address("239.0.0.5"),
                      port=4789, learning=True, l2miss=True, l3miss=True),
)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "local", "expected"),
    [
        ({}, LOCAL, ""),
        ({}, None, ""),
        ({"kind": "macvlan"}, LOCAL, "macvlan link, not vxlan"),
        ({"kind": None}, LOCAL, "plain link"),
        ({"parent_name": "eth1"}, LOCAL, "parent is eth1, not eth0"),
        ({"vxlan": None}, LOCAL, "no VxLAN attributes"),
        ({"vni": 6}, LOCAL, "VNI is 6, not 5"),
        ({"port": 8472}, LOCAL, "UDP port is 8472"),
        ({"l3miss": False}, LOCAL, "l3miss"),
        ({}, ipaddress.ip_address("10.9.9.9"), "source address is 10.0.0.1, but eth0 has 10.9.9.9"),
        ({"group": ipaddress.ip_address("239.0.0.6")}, LOCAL, "group is 239.0.0.6, not 239.0.0.5"),
        ({"group": ipaddress.ip_address("239.0.0.6")}, None, ""),
    ],
)
def test_vxlan_mismatch(change: dict[str, object], local, expected: str):
    vxlan_fields = {k: v for k, v in change.items() if k in ("vni", "port", "l3miss", "group")}
    link_fields = {k: v for k, v in change.items() if k not in vxlan_fields}
    link = dataclasses.replace(GOOD_VXLAN, **link_fields)  # type: ignore[arg-type]
    if vxlan_fields and link.vxlan is not None:
        link = dataclasses.replace(link, vxlan=dataclasses.replace(link.vxlan, **vxlan_fields))  # type: ignore[arg-type]
    difference = mismatch(VX, link, local)
    assert expected in difference
    assert bool(expected) == bool(difference)


def test_vlan_mismatch_on_id():
    wanted = HostLink("a.5", "vlan", "eth0", 5)
    link = dataclasses.replace(GOOD_VXLAN, name="a.5", kind="vlan", vxlan=None, vlan_id=5)
    assert mismatch(wanted, link, None) == ""
    assert "VLAN id is 6" in mismatch(wanted, dataclasses.replace(link, vlan_id=6), None)


# -- plan ---------------------------------------------------------------------------------------


def test_plan_creates_missing_links_and_brings_a_down_parent_up_once(node: FakeHostNetlink):
    node.set_link_down("eth0")
    desired = state(net("a", host_device="eth0", vxlan=5), net("b", host_device="eth0", vlan=7))
    plan = plan_changes(desired, node.list_links(), {"eth0": LOCAL})
    assert plan.steps == (
        SetLinkUp("eth0", "parent of b.7"),
        CreateLink(HostLink("b.7", "vlan", "eth0", 7), None, "missing"),
        CreateLink(HostLink("vx_a", "vxlan", "eth0", 5), LOCAL, "missing"),
    )
    assert plan.problems == ()


def test_plan_reports_missing_parent_and_parent_without_address(node: FakeHostNetlink):
    desired = state(net("a", host_device="eth9", vlan=5), net("b", host_device="eth1", vxlan=6))
    plan = plan_changes(desired, node.list_links(), {"eth1": None})
    assert plan.steps == ()
    reasons = {p.link_name: p.reason for p in plan.problems}
    assert reasons == {
        "a.5": REASON_HOST_DEVICE_MISSING,
        "vx_b": REASON_HOST_DEVICE_WITHOUT_ADDRESS,
    }


def test_plan_never_touches_a_foreign_link(node: FakeHostNetlink):
    node.create_vlan("a.5", parent="eth0", vlan_id=5, up=False)  # made by hand: no alias
    node.create_vlan("b.6", parent="eth0", vlan_id=99)  # right name, wrong id
    node.create_vlan("other.8", parent="eth0", vlan_id=8)  # nobody wants it
    desired = state(net("a", host_device="eth0", vlan=5), net("b", host_device="eth0", vlan=6))
    plan = plan_changes(desired, node.list_links(), {})
    assert plan.steps == (SetLinkUp("a.5", "it is down"),)
    assert plan.foreign_in_use == ("a.5",)
    (problem,) = plan.problems
    assert (problem.link_name, problem.reason) == ("b.6", REASON_FOREIGN_INTERFACE)
    assert "VLAN id is 99, not 6" in problem.message


def test_plan_deletes_owned_unneeded_and_recreates_owned_outdated(node: FakeHostNetlink):
    for name, vni in (("vx_gone", 1), ("vx_a", 2)):
        node.create_vxlan(name, parent="eth0", vni=vni, local=LOCAL)
        node.set_link_alias(name, OWNER_ALIAS)
    desired = state(net("a", host_device="eth1", vxlan=2))
    plan = plan_changes(desired, node.list_links(), {"eth1": ipaddress.ip_address("10.1.0.1")})
    kinds = [(type(s).__name__, getattr(s, "name", None) or s.link.name) for s in plan.steps]  # type: ignore[union-attr]
    assert kinds == [("DeleteLink", "vx_gone"), ("DeleteLink", "vx_a"), ("CreateLink", "vx_a")]
    assert "parent is eth0, not eth1" in plan.steps[1].why


def test_plan_keeps_a_matching_vxlan_when_its_parent_lost_its_address(node: FakeHostNetlink):
    node.create_vxlan("vx_a", parent="eth0", vni=5, local=LOCAL)
    node.set_link_alias("vx_a", OWNER_ALIAS)
    plan = plan_changes(state(net("a", host_device="eth0", vxlan=5)), node.list_links(), {})
    assert plan.steps == ()
    assert plan.problems == ()


# -- reconcile ----------------------------------------------------------------------------------


def test_reconcile_creates_marks_and_brings_up_then_is_idempotent(node: FakeHostNetlink):
    desired = state(net("a", host_device="eth0", vxlan=5), net("b", host_device="eth1", vlan=7))
    outcome = reconcile(node, desired)
    assert outcome.applied == ["create b.7", "create vx_a"]
    assert not outcome.should_retry
    links = owned(node)
    assert sorted(links) == ["b.7", "vx_a"]
    assert all(link.up for link in links.values())
    vxlan = links["vx_a"].vxlan
    assert vxlan is not None
    assert vxlan.local == LOCAL
    node.calls.clear()
    again = reconcile(node, desired)
    assert again.applied == []
    assert [c for c in node.calls if c[0] not in ("list", "addresses")] == []


def test_reconcile_repairs_drift_and_deletes_only_its_own_links(node: FakeHostNetlink):
    desired = state(net("a", host_device="eth0", vxlan=5), net("b", host_device="eth0", vlan=7))
    reconcile(node, desired)
    node.delete_link("vx_a")
    node.set_link_down("b.7")
    node.create_vlan("admin.9", parent="eth0", vlan_id=9)
    assert reconcile(node, desired).applied == ["create vx_a", "set up b.7"]
    outcome = reconcile(node, state())
    assert sorted(outcome.applied) == ["delete b.7", "delete vx_a"]
    assert sorted(node.links) == ["admin.9", "eth0", "eth1"]


def test_reconcile_recreates_on_host_device_and_vni_change(node: FakeHostNetlink):
    reconcile(node, state(net("a", host_device="eth0", vxlan=5)))
    outcome = reconcile(node, state(net("a", host_device="eth1", vxlan=6)))
    assert outcome.applied == ["delete vx_a", "create vx_a"]
    vxlan = node.links["vx_a"].vxlan
    assert vxlan is not None
    assert (vxlan.vni, str(vxlan.local)) == (6, "10.1.0.1")


def test_reconcile_moves_a_vni_from_a_deleted_network_to_a_new_name(node: FakeHostNetlink):
    reconcile(node, state(net("a", host_device="eth0", vxlan=5)))
    outcome = reconcile(node, state(net("b", host_device="eth0", vxlan=5)))
    assert outcome.applied == ["delete vx_a", "create vx_b"]


def test_one_failing_link_does_not_stop_the_others_and_asks_for_a_retry(node: FakeHostNetlink):
    node.fail("create", "vx_a", DeviceBusy("create vx_a", "busy", errno=errno.EBUSY))
    desired = state(net("a", host_device="eth0", vxlan=5), net("b", host_device="eth0", vlan=7))
    outcome = reconcile(node, desired)
    assert outcome.applied == ["create b.7"]
    assert outcome.should_retry
    (problem,) = outcome.problems
    assert (problem.network.name, problem.reason) == ("a", REASON_NETLINK_FAILURE)
    assert reconcile(node, desired).applied == ["create vx_a"]


def test_a_link_that_cannot_be_marked_is_removed_again(node: FakeHostNetlink):
    node.fail("alias", "vx_a")
    outcome = reconcile(node, state(net("a", host_device="eth0", vxlan=5)))
    assert outcome.applied == []
    assert outcome.should_retry
    assert "vx_a" not in node.links


def test_a_failed_delete_skips_the_recreate_and_a_vanished_link_is_fine(node: FakeHostNetlink):
    reconcile(
        node, state(net("a", host_device="eth0", vxlan=5), net("b", host_device="eth0", vlan=7))
    )
    node.fail("delete", "vx_a")
    node.fail("delete", "b.7", LinkNotFound("delete b.7", "gone", errno=errno.ENODEV))
    node.calls.clear()
    outcome = reconcile(node, state(net("a", host_device="eth1", vxlan=5)))
    assert ("create", "vx_a") not in node.calls
    assert [f.link_name for f in outcome.failures] == ["vx_a"]


def test_problems_of_the_desired_state_and_the_plan_are_reported_per_network(node: FakeHostNetlink):
    desired = state(
        net("a", network_id="x", host_device="eth9", vlan=5),
        net("b", network_id="x", host_device="eth9", vlan=5, kind="ClusterNetwork"),
        net("c", network_id="waytoolongnetid", host_device="eth0", vxlan=5),
    )
    outcome = reconcile(node, desired)
    reasons = sorted((p.network.name, p.reason) for p in outcome.problems)
    assert reasons == [
        ("a", REASON_HOST_DEVICE_MISSING),
        ("b", REASON_HOST_DEVICE_MISSING),
        ("c", "HostInterfaceNameTooLong"),
    ]
    assert outcome.should_retry


def test_a_listing_failure_aborts_the_pass(node: FakeHostNetlink):
    node.fail("list", "")
    with pytest.raises(NetlinkFailure):
        reconcile(node, state(net("a", host_device="eth0", vxlan=5)))


def test_unreadable_parent_addresses_count_as_none(node: FakeHostNetlink):
    node.fail("addresses", "eth0")
    outcome = reconcile(node, state(net("a", host_device="eth0", vxlan=5)))
    assert [p.reason for p in outcome.problems] == [REASON_HOST_DEVICE_WITHOUT_ADDRESS]


def test_delete_steps_come_first(node: FakeHostNetlink):
    node.create_vlan("old.5", parent="eth0", vlan_id=5)
    node.set_link_alias("old.5", OWNER_ALIAS)
    plan = plan_changes(state(net("new", host_device="eth0", vlan=5)), node.list_links(), {})
    assert isinstance(plan.steps[0], DeleteLink)
