"""netwatcher's 802.1Q host interfaces on a kernel that has them (inside the QEMU guest).

The host kernel has no 802.1Q links, so these tests are marked ``vm`` (tests/vm/policy.py).
The guest has no API server and Python is slow there, so the Kubernetes side is left to the
host-kernel tests (tests/netns/netwatcher); here the same passes the controller runs
(``desired_state`` over network objects, then ``reconcile`` with the real ``PyrouteNetlink``)
are driven directly, against a throwaway "node" namespace with veth parents.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from common.io.netlink import PyrouteNetlink
from netwatcher.desired import NetworkObject, desired_state
from netwatcher.plan import OWNER_ALIAS, REASON_HOST_DEVICE_MISSING
from netwatcher.reconcile import Outcome, reconcile
from tests.netns.netwatcher.harness import Node, info, is_up, node_with_parents
from tests.netns_helpers import kernel_supports, remove_leftovers, requires_netns

pytestmark = [pytest.mark.vm, requires_netns]


@pytest.fixture(scope="module", autouse=True)
def _guest_kernel() -> Iterator[None]:
    if not kernel_supports("vlan"):
        pytest.skip("this kernel lacks 802.1Q links (run in the QEMU guest)")
    yield
    remove_leftovers()


@pytest.fixture
def node() -> Iterator[Node]:
    with node_with_parents({"parent0": "10.77.0.1/24", "parent1": None}) as created:
        yield created


def net(name: str, *, network_id: str | None = None, created: str = "2024-01-01T00:00:00Z",
        **options: Any) -> NetworkObject:  # fmt: skip
    return NetworkObject(
        "DanmNet",
        {
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
            "spec": {"NetworkID": network_id or name, "Options": options},
        },
    )


def run(node: Node, *networks: NetworkObject) -> Outcome:
    with PyrouteNetlink() as netlink:
        return reconcile(netlink, desired_state(networks), netns=node.path)


def vlan(node: Node, name: str) -> tuple[str, int, str, bool, str | None]:
    link = node.links()[name]
    kind = link["linkinfo"]["info_kind"]
    return (kind, info(link)["id"], link["link"], is_up(link), link.get("ifalias"))


def test_vlan_is_created_recreated_on_change_repaired_and_deleted(node: Node):
    node.ip("link", "set", "parent1", "down")
    blue = net("blue", host_device="parent0", vlan=100)
    assert run(node, blue).applied == ["create blue.100"]
    assert vlan(node, "blue.100") == ("vlan", 100, "parent0", True, OWNER_ALIAS)

    moved = net("blue", host_device="parent1", vlan=100)
    outcome = run(node, moved)
    assert outcome.applied == ["delete blue.100", "set up parent1", "create blue.100"]
    assert vlan(node, "blue.100") == ("vlan", 100, "parent1", True, OWNER_ALIAS)

    # NB: a new id is a new name (<NetworkID>.<vlan>): the old link goes, the new one comes.
    renumbered = net("blue", host_device="parent1", vlan=200)
    assert sorted(run(node, renumbered).applied) == ["create blue.200", "delete blue.100"]

    node.ip("link", "set", "blue.200", "down")
    assert run(node, renumbered).applied == ["set up blue.200"]
    node.ip("link", "delete", "blue.200")
    assert run(node, renumbered).applied == ["create blue.200"]
    with PyrouteNetlink() as netlink:
        again = reconcile(netlink, desired_state([renumbered]), netns=node.path)
    assert again.applied == [], "an existing owned link is adopted, not recreated"

    assert run(node).applied == ["delete blue.200"]
    assert not [name for name in node.links() if name.startswith("blue")]


def test_shared_and_foreign_vlans(node: Node):
    node.ip("link", "add", "link", "parent0", "name", "hand.7", "type", "vlan", "id", "7")
    first = net("a", network_id="shared", host_device="parent0", vlan=30)
    second = net(
        "b", network_id="shared", host_device="parent0", vlan=30, created="2024-02-01T00:00:00Z"
    )
    hand = net("hand", host_device="parent0", vlan=7)
    outcome = run(node, first, second, hand)
    assert outcome.applied == ["create shared.30", "set up hand.7"]
    index = node.links()["shared.30"]["ifindex"]
    assert run(node, second).applied == []
    assert node.links()["shared.30"]["ifindex"] == index
    assert run(node).applied == ["delete shared.30"]
    assert "hand.7" in node.links(), "a link netwatcher did not create is never deleted"


def test_conflicting_vlan_id_and_missing_parent_are_reported(node: Node):
    older = net("older", host_device="parent0", vlan=40)
    newer = net("newer", host_device="parent0", vlan=40, created="2024-03-01T00:00:00Z")
    gone = net("gone", host_device="parent9", vlan=41)
    outcome = run(node, newer, older, gone)
    assert outcome.applied == ["create older.40"]
    reasons = sorted((p.network.name, p.reason) for p in outcome.problems)
    assert reasons == [("gone", REASON_HOST_DEVICE_MISSING), ("newer", "HostInterfaceConflict")]
    node.ip("link", "delete", "parent0")  # NB: the kernel removes the VLAN child with it.
    outcome = run(node, older)
    assert [p.reason for p in outcome.problems] == [REASON_HOST_DEVICE_MISSING]
    assert outcome.should_retry
