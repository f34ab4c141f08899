"""The control loop without root: API stand-in for the networks, the in-memory node for links."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from common.io.kube import KubernetesApi
from netwatcher.controller import Netwatcher, Settings
from tests.kubeapi.testing import RunningKubeApi
from tests.netns.netwatcher.harness import (
    connect,
    create_network,
    delete_network,
    install_crds,
    network,
    wait_until,
)
from tests.unit.netwatcher.fakes import FakeHostNetlink

pytestmark = pytest.mark.e2e


@pytest.fixture
def api(kubeapi: RunningKubeApi) -> Iterator[KubernetesApi]:
    client = connect(kubeapi)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def node() -> FakeHostNetlink:
    fake = FakeHostNetlink()
    fake.add_device("eth0")
    return fake


@contextlib.contextmanager
def watching(api: KubernetesApi, node: FakeHostNetlink, **settings: float) -> Iterator[Netwatcher]:
    options = {"resync_s": 30.0, "absent_retry_s": 0.2, "base_backoff_s": 0.01, **settings}
    watcher = Netwatcher(
        api,
        Settings(node_name="n", **options),  # type: ignore[arg-type]
        netlink_factory=lambda: contextlib.nullcontext(node),
    )
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stop()


def test_links_follow_the_networks_and_health_reflects_the_worker(
    api: KubernetesApi, node: FakeHostNetlink
):
    install_crds(api, ["DanmNet", "ClusterNetwork"])
    create_network(api, network("DanmNet", "a", host_device="eth0", vxlan=5))
    with watching(api, node) as watcher:
        wait_until(lambda: "vx_a" in node.links, "vx_a")
        assert watcher.liveness() is None
        assert watcher.readiness() is None
        create_network(api, network("ClusterNetwork", "b", host_device="eth0", vlan=9))
        wait_until(lambda: "b.9" in node.links, "b.9")
        delete_network(api, "DanmNet", "a")
        wait_until(lambda: "vx_a" not in node.links, "vx_a deleted")
    assert watcher.liveness() == "the reconcile worker is not running"


def test_nothing_is_deleted_before_every_informer_has_listed(
    api: KubernetesApi, node: FakeHostNetlink
):
    install_crds(api, ["DanmNet"])
    create_network(api, network("DanmNet", "a", host_device="eth0", vxlan=5))
    with watching(api, node) as watcher:
        wait_until(lambda: "vx_a" in node.links, "vx_a")
    node.calls.clear()
    with watching(api, node) as watcher:
        wait_until(lambda: watcher.passes > 0, "a pass")
    assert [c for c in node.calls if c[0] == "delete"] == []


def test_a_failed_pass_is_retried_with_backoff(api: KubernetesApi, node: FakeHostNetlink):
    install_crds(api, ["DanmNet"])
    node.fail("list", "")
    create_network(api, network("DanmNet", "a", host_device="eth0", vxlan=5))
    with watching(api, node) as watcher:
        wait_until(lambda: "vx_a" in node.links, "vx_a after a failed listing")
        assert watcher.passes >= 2


def test_a_node_problem_is_retried_until_it_is_fixed(api: KubernetesApi, node: FakeHostNetlink):
    install_crds(api, ["DanmNet"])
    create_network(api, network("DanmNet", "a", host_device="eth1", vxlan=5))
    with watching(api, node) as watcher:
        wait_until(lambda: watcher.passes >= 2, "retries while eth1 is missing")
        node.add_device("eth1")
        wait_until(lambda: "vx_a" in node.links, "vx_a once eth1 exists")
