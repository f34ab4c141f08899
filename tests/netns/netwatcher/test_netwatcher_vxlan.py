"""netwatcher against the API stand-in and the host kernel: VxLAN host interfaces end to end.

Each test gets a fresh API stand-in (``kubeapi``), a throwaway "node" namespace with veth parents
and an in-process ``Netwatcher`` managing that namespace; the real console script is exercised
in test_netwatcher_binary.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from common.io.kube import KubernetesApi
from common.model.resources import EVENTS
from netwatcher.plan import OWNER_ALIAS
from tests.kubeapi.testing import RunningKubeApi
from tests.netns.netwatcher.harness import (
    Node,
    connect,
    create_network,
    delete_network,
    info,
    install_crds,
    network,
    node_with_parents,
    patch_options,
    running_netwatcher,
    wait_until,
)
from tests.netns_helpers import requires_netns

pytestmark = [pytest.mark.netns, pytest.mark.e2e, requires_netns]


@pytest.fixture
def api(kubeapi: RunningKubeApi) -> Iterator[KubernetesApi]:
    client = connect(kubeapi)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def node() -> Iterator[Node]:
    with node_with_parents({"parent0": "10.77.0.1/24", "parent1": "10.78.0.1/24"}) as created:
        yield created


def vxlan_is(vni: int, parent: str, local: str, group: str):
    def check(link: dict[str, Any]) -> bool:
        data = info(link)
        return (
            link.get("linkinfo", {}).get("info_kind") == "vxlan"
            and data.get("id") == vni
            and data.get("link") == parent
            and data.get("local") == local
            and data.get("group") == group
            and data.get("port") == 4789
            and link.get("ifalias") == OWNER_ALIAS
        )

    return check


def test_vxlan_follows_create_update_and_delete(api: KubernetesApi, node: Node):
    install_crds(api)
    with running_netwatcher(api, node):
        create_network(api, network("DanmNet", "blue", host_device="parent0", vxlan=101))
        first = node.wait_link("vx_blue", vxlan_is(101, "parent0", "10.77.0.1", "239.0.0.101"))

        patch_options(api, "DanmNet", "blue", vxlan=300)
        second = node.wait_link("vx_blue", vxlan_is(300, "parent0", "10.77.0.1", "239.0.1.44"))
        assert second["ifindex"] != first["ifindex"]

        patch_options(api, "DanmNet", "blue", host_device="parent1")
        node.wait_link("vx_blue", vxlan_is(300, "parent1", "10.78.0.1", "239.0.1.44"))

        delete_network(api, "DanmNet", "blue")
        node.wait_gone("vx_blue")
    assert set(node.links()) == {"lo", "parent0", "parent0p", "parent1", "parent1p"}


def test_drift_is_repaired_within_the_resync_period(api: KubernetesApi, node: Node):
    install_crds(api, ["ClusterNetwork"])
    with running_netwatcher(api, node, resync_s=0.5):
        create_network(api, network("ClusterNetwork", "red", host_device="parent0", vxlan=7))
        first = node.wait_link("vx_red")

        node.ip("link", "delete", "vx_red")
        again = node.wait_link("vx_red", what="vx_red recreated after a manual delete")
        assert again["ifindex"] != first["ifindex"]

        node.ip("link", "set", "vx_red", "down")
        up = node.wait_link("vx_red", what="vx_red set up again")
        assert up["ifindex"] == again["ifindex"]

        node.ip("link", "set", "parent0", "down")
        wait_until(lambda: "UP" in node.links()["parent0"]["flags"], "parent0 brought up again")


def test_restart_adopts_existing_links_and_foreign_links_are_never_deleted(
    api: KubernetesApi, node: Node
):
    install_crds(api, ["DanmNet"])
    # NB: made by hand, exactly as netwatcher would make it but without the ownership mark.
    node.ip(
        "link", "add", "vx_hand", "type", "vxlan", "id", "55", "dev", "parent0", "local",
        "10.77.0.1", "group", "239.0.0.55", "dstport", "4789", "l2miss", "l3miss",
    )  # fmt: skip
    create_network(api, network("DanmNet", "green", host_device="parent0", vxlan=20))
    create_network(api, network("DanmNet", "hand", host_device="parent0", vxlan=55))
    with running_netwatcher(api, node):
        first = node.wait_link("vx_green")
        node.wait_link("vx_hand", what="the hand-made matching link used and brought up")
    with running_netwatcher(api, node) as restarted:
        wait_until(lambda: restarted.last_outcome is not None, "a pass after the restart")
        assert restarted.last_outcome is not None
        assert restarted.last_outcome.applied == []
        assert restarted.last_outcome.failures == []
        assert node.links()["vx_green"]["ifindex"] == first["ifindex"]

        delete_network(api, "DanmNet", "hand")
        delete_network(api, "DanmNet", "green")
        node.wait_gone("vx_green")
        assert "ifalias" not in node.links()["vx_hand"], "a foreign link is never marked"
    assert "vx_hand" in node.links(), "a foreign link is never deleted"


def test_networks_share_one_link_until_the_last_one_is_gone(api: KubernetesApi, node: Node):
    install_crds(api)
    with running_netwatcher(api, node) as watcher:
        create_network(
            api, network("DanmNet", "a", network_id="shared", host_device="parent0", vxlan=9)
        )
        create_network(
            api, network("TenantNetwork", "b", network_id="shared", host_device="parent0", vxlan=9)
        )
        first = node.wait_link("vx_shared")
        delete_network(api, "DanmNet", "a")

        def only_b_wants_it() -> bool:
            desired = watcher.last_desired
            return desired is not None and [u.name for u in desired.users["vx_shared"]] == ["b"]

        wait_until(only_b_wants_it, "a pass that saw the delete")
        assert node.links()["vx_shared"]["ifindex"] == first["ifindex"]
        delete_network(api, "TenantNetwork", "b")
        node.wait_gone("vx_shared")


def test_a_crd_installed_after_start_is_picked_up(api: KubernetesApi, node: Node):
    with running_netwatcher(api, node) as watcher:
        wait_until(lambda: watcher.readiness() is None, "informers synced on absent CRDs")
        assert not any(informer.served for informer in watcher.informers.values())
        install_crds(api, ["ClusterNetwork"])
        create_network(api, network("ClusterNetwork", "late", host_device="parent1", vxlan=4000))
        node.wait_link("vx_late", vxlan_is(4000, "parent1", "10.78.0.1", "239.0.15.160"))


def test_problems_are_events_on_the_network_and_do_not_stop_the_others(
    api: KubernetesApi, node: Node
):
    install_crds(api, ["DanmNet"])
    with running_netwatcher(api, node):
        create_network(
            api,
            network("DanmNet", "long", network_id="abcdefghijklm", host_device="parent0", vxlan=1),
        )
        create_network(api, network("DanmNet", "nodev", host_device="eth9", vxlan=2))
        create_network(api, network("DanmNet", "fine", host_device="parent0", vxlan=3))
        node.wait_link("vx_fine")

        def events() -> dict[str, dict[str, Any]]:
            items = api.list(EVENTS, "default")["items"]
            return {e["involvedObject"]["name"]: e for e in items}

        found = wait_until(lambda: {"long", "nodev"} <= set(events()) and events(), "two Events")
    long_event = found["long"]
    assert long_event["reason"] == "HostInterfaceNameTooLong"
    assert long_event["type"] == "Warning"
    assert "'vx_abcdefghijklm' is 16 bytes long" in long_event["message"]
    assert long_event["involvedObject"]["kind"] == "DanmNet"
    assert long_event["involvedObject"]["uid"]
    assert long_event["source"] == {"component": "netwatcher", "host": "node-a"}
    assert found["nodev"]["reason"] == "HostDeviceMissing"
    assert "eth9 is not present" in found["nodev"]["message"]
    assert not any(name.startswith("vx_abc") for name in node.links())
